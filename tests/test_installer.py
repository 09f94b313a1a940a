"""``streamhost install`` / ``uninstall`` refusals that need no pip run (real pip runs are in test_authoring_e2e)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from streamhost.cli.installer import explain_failure, host_dependencies

STREAMHOST = str(Path(sys.executable).with_name("streamhost"))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([STREAMHOST, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("name", "message"), [
    ("streamhost", "removes plugins, not the host"),
    ("StreamHost", "removes plugins, not the host"),
    ("streamhost==0.1.0", "removes plugins, not the host"),
    # A dependency of mcp on Windows only: not installed here, so a broken refusal cannot break this venv.
    ("pywin32", "streamhost needs pywin32 to run"),
])
def test_uninstall_refuses_the_host_and_what_it_needs(name, message):
    done = run_cli("uninstall", "streamhost-not-installed-here", name)

    assert done.returncode == 2
    assert message in done.stderr
    assert "not installed" not in done.stdout + done.stderr  # refused before pip ran


def test_the_host_dependencies_are_followed_through_other_packages():
    needed = host_dependencies()

    assert {"mcp", "pluggy", "rich"} <= needed  # direct
    assert {"pydantic", "anyio"} <= needed  # through mcp
    assert "pytest" not in needed  # only in the test extra
    assert "streamhost" not in needed


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


@pytest.mark.parametrize(("output", "expected"), [
    ("    a 1.0 depends on streamhost>=0.3\n    b 2.1 depends on streamhost<0.1; python_version >= '3'\n"
     "    The user requested (constraint) streamhost==0.1.0\n",
     "a 1.0 needs streamhost>=0.3, this host is 0.1.0; b 2.1 needs streamhost<0.1, this host is 0.1.0: install"),
    ("The conflict is caused by:\n    streamhost-x 1.0 depends on platformdirs<4\n"
     "    streamhost 0.1.0 depends on platformdirs>=4\n",
     "streamhost-x 1.0 needs platformdirs<4, streamhost 0.1.0 needs platformdirs>=4: the plugin cannot share"),
    ("The conflict is caused by:\n    streamhost-x 1.0 depends on pydantic<2\n"
     "    mcp 2.3.0 depends on pydantic<3.0.0,>=2.11.0\n",
     "streamhost-x 1.0 needs pydantic<2, mcp 2.3.0 needs pydantic<3.0.0,>=2.11.0: the plugin cannot share the "
     "environment of streamhost 0.1.0"),
])
def test_a_conflict_with_the_host_or_its_dependencies_names_every_party(output, expected):
    assert explain_failure(output, "0.1.0").startswith(expected)


def test_an_environment_without_pip_gets_told_what_to_do(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    real = subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-m", "pip", "install", "x"],
                          capture_output=True, text=True)

    message = explain_failure(real.stdout + real.stderr, "0.1.0")

    assert real.returncode != 0
    assert message.startswith("pip is not installed in streamhost's environment")
    assert "-m ensurepip" in message


def test_install_says_which_name_the_new_plugin_shares_and_who_serves_it(tmp_path, home):
    """A real ``streamhost install`` of a plugin that registers ``openai``, into a throwaway environment.

    The environment sees this checkout's venv (a .pth file), so nothing is downloaded but the build backend,
    and the shared venv is left as it is.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    Path(purelib, "streamhost-host.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n", encoding="utf-8")
    plugin = Path(__file__).parent / "plugins" / "early_openai"

    done = subprocess.run([python, "-m", "streamhost.cli", "install", str(plugin)], env=home.env,
                          capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "+ plugin streamhost-a-test-openai 1.0: provider twin" in done.stdout
    assert ("! provider 'openai' is registered by streamhost-openai and streamhost-a-test-openai: streamhost-openai "
            "serves it (bundled plugins win over third-party ones); to choose, set [plugins] prefer = "
            '{ openai = "streamhost-a-test-openai" } in the config') in done.stdout
    assert list(Path(purelib).glob("streamhost_a_test_openai*"))  # installed there, not in the shared venv
