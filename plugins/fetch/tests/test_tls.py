"""HTTPS through the guard: the socket goes to the checked IP, TLS still speaks and verifies the host name."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamhost_fetch import HttpFetcher

pytest.importorskip("cryptography")


def _certificate(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A test CA and a leaf certificate for ``name`` signed by it: (ca.pem, leaf.pem, leaf.key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "streamhost test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp / "ca.pem", tmp / "leaf.pem", tmp / "leaf.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture
def https_site(tmp_path: Path) -> Iterator[tuple[Any, Path, list[str | None]]]:
    """An HTTPS site on 127.0.0.1 whose certificate names ``secure.example``; also the CA and the SNI names seen."""
    from fetch_test_site import WebSite

    ca, cert, key = _certificate(tmp_path, "secure.example")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    seen: list[str | None] = []
    server.sni_callback = lambda _sock, name, _ctx: seen.append(name)  # type: ignore[assignment,misc,return-value]
    with WebSite(ssl_context=server) as web:
        web.add("/article", "<html><body><article><h1>Over TLS</h1><p>" + "Sealed words. " * 40
                + "</p></article></body></html>")
        yield web, ca, seen


def _fetcher(ca: Path) -> HttpFetcher:
    async def resolve(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    client = ssl.create_default_context(cafile=str(ca))
    fetcher = HttpFetcher(resolver=resolve, ssl_context=client)
    fetcher.configure({"allow_hosts": ["127.0.0.1"]})
    return fetcher


@pytest.mark.anyio
async def test_tls_uses_the_host_name_for_sni_and_verification(https_site: Any, run_fetch: Any) -> None:
    site, ca, seen = https_site
    outcome = await run_fetch(_fetcher(ca), f"https://secure.example:{site.port}/article", model_initiated=False)
    assert "# Over TLS" in outcome.unwrap().document.content
    assert seen == ["secure.example"]  # SNI named the host, though the socket went to 127.0.0.1
    assert site.requests[0].headers["host"] == f"secure.example:{site.port}"


@pytest.mark.anyio
async def test_a_certificate_for_another_name_is_refused(https_site: Any, run_fetch: Any) -> None:
    site, ca, _ = https_site
    outcome = await run_fetch(_fetcher(ca), f"https://impostor.example:{site.port}/article", model_initiated=False)
    assert outcome.document is None and "certificate" in str(outcome.error).lower()
    assert site.requests == []

