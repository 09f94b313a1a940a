"""``streamhost install`` / ``uninstall`` refusals that need no pip run (real pip runs are in test_authoring_e2e)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streamhost.installer import explain_failure

STREAMHOST = str(Path(sys.executable).with_name("streamhost"))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STREAMHOST, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name", ["streamhost", "StreamHost", "streamhost==0.1.0"])
def test_uninstall_refuses_the_host_itself(name):
    done = run_cli("uninstall", "streamhost-not-installed-here", name)

    assert done.returncode == 2
    assert "removes plugins, not the host" in done.stderr
    assert "Successfully uninstalled" not in done.stdout + done.stderr  # refused before pip ran


@pytest.mark.parametrize("requirement", ["streamhost", "streamhost==0.2", "Streamhost[test]>=1"])
def test_install_refuses_to_change_the_host(requirement):
    done = run_cli("install", requirement)

    assert done.returncode == 2
    assert "streamhost install is for plugins" in done.stderr


def test_install_without_a_package_says_what_to_give():
    done = run_cli("install")

    assert done.returncode == 2
    assert "name at least one plugin" in done.stderr


def test_a_conflict_over_another_package_is_not_mistaken_for_the_host():
    output = "    streamhost-x 1.0 depends on streamhost-openai>=9\nERROR: ResolutionImpossible"

    message = explain_failure(output, "0.1.0")

    assert "this host is" not in message
    assert message.startswith("pip failed:") and "ResolutionImpossible" in message


def test_every_plugin_needing_another_host_is_named():
    output = ("    a 1.0 depends on streamhost>=0.3\n    b 2.1 depends on streamhost<0.1; python_version >= '3'\n"
              "    The user requested (constraint) streamhost==0.1.0\n")

    message = explain_failure(output, "0.1.0")

    assert message.startswith("a 1.0 needs streamhost>=0.3, this host is 0.1.0; b 2.1 needs streamhost<0.1, this host")


def test_an_environment_without_pip_gets_told_what_to_do(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    real = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-m", "pip", "install", "x"],
                          capture_output=True, text=True)

    message = explain_failure(real.stdout + real.stderr, "0.1.0")

    assert real.returncode != 0
    assert message.startswith("pip is not installed in streamhost's environment")
    assert "-m ensurepip" in message
