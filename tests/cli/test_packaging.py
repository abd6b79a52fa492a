"""Packaging (issue 18): metadata, LICENSE and CHANGELOG, rich as the demo's
extra only (the library and ``ringward node`` run without it), and the API
reference that pdoc builds from the docstrings without a warning."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from ringward.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _project() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as f:
        project: dict[str, object] = tomllib.load(f)["project"]
    return project


def test_metadata() -> None:
    project = _project()
    dependencies = project["dependencies"]
    assert isinstance(dependencies, list)
    assert not any(d.startswith("rich") for d in dependencies)
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    assert any(d.startswith("rich") for d in extras["demo"])
    assert any(d.startswith("rich") for d in extras["dev"])  # the tests run the demo
    assert any(d.startswith("pdoc") for d in extras["docs"])
    classifiers = project["classifiers"]
    assert isinstance(classifiers, list)
    for wanted in (
        "License :: OSI Approved :: Apache Software License",
        "Development Status :: 3 - Alpha",
        "Operating System :: POSIX :: Linux",
        "Framework :: AsyncIO",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    ):
        assert wanted in classifiers
    urls = project["urls"]
    assert isinstance(urls, dict)
    assert {"Homepage", "Source", "Issues", "Changelog", "Documentation"} <= set(urls)


def test_license_and_changelog() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "9. Accepting Warranty or Additional Liability." in text
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in changelog
    assert "## [Unreleased]" in changelog
    assert "## [0.1.0]" in changelog


def test_demo_view_without_rich_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from ringward.cli.demo_view import LiveView

    for name in ("rich", "rich.console", "rich.live"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    with pytest.raises(ConfigError) as err:
        LiveView(3)
    assert err.value.reason == "missing_extra"
    assert "ringward[demo]" in err.value.message


# A process in which `import rich` fails, as where the demo extra is not
# installed: it provisions a one-node cluster and runs `ringward node` on it.
_WITHOUT_RICH = textwrap.dedent(
    """
    import sys

    class NoRich:
        def find_spec(self, name, path=None, target=None):
            if name == "rich" or name.startswith("rich."):
                raise ImportError(f"{name} is blocked (no demo extra)")
            return None

    sys.meta_path.insert(0, NoRich())
    import ringward
    from ringward.cli import main

    assert ringward.Node is not None
    keys, port = sys.argv[1], sys.argv[2]
    code = main(["keys", "init", keys, "--cluster", "solo", "--address", f"127.0.0.1:{port}",
                 "--no-passphrase", "--token-timeout-ms", "500", "--consensus-timeout-ms", "1000"])
    assert code == 0
    print("---", flush=True)
    code = main(["node", "--keys", f"{keys}/node1", "--exit-on-eof"])
    assert not any(m == "rich" or m.startswith("rich.") for m in sys.modules)
    sys.exit(code)
    """
)


@pytest.mark.heavy
@pytest.mark.xdist_group("loopback")
def test_library_and_node_run_without_rich(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_RICH, str(tmp_path / "keys"), str(port)],
        input="hello without rich\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    node_out = done.stdout.split("---\n", 1)[1]
    lines = [json.loads(x) for x in node_out.splitlines()]
    delivered = [x["data"] for x in lines if x["event"] == "deliver"]
    assert delivered == ["hello without rich"]


@pytest.mark.heavy
def test_api_reference_builds_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip(
        "pdoc", reason="pdoc is not installed (the docs extra): the API reference is not checked"
    )
    done = subprocess.run(
        [sys.executable, str(REPO / "docs" / "apidocs.py"), str(tmp_path / "api")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "api" / "index.html").is_file()
    assert (tmp_path / "api" / "ringward" / "crypto.html").is_file()
