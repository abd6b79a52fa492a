"""Regression tests from an adversarial review of the CLI (issue #18):
``keys passwd`` on a symlink, ownership kept when root rewrites the files
of a node that runs as its own user, Ctrl-D at a prompt, ``ringward
status`` inside a unit (in-process)."""

from __future__ import annotations

import builtins
import getpass
import os
import stat
from pathlib import Path

import pytest

from ringward.cli import keys_secrets, main
from ringward.crypto import Identity, Roster
from ringward.crypto.keydir import KeyDir

FAST = ("--kdf-cost", "interactive")
NODE_UID = 54321  # a user that owns a node's bundle, as in the systemd unit


@pytest.fixture(autouse=True)
def _no_ambient_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RINGWARD_PASSPHRASE", raising=False)
    monkeypatch.delenv("RINGWARD_NODE_PASSPHRASE", raising=False)


def _keys(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["keys", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, err


def _init(capsys: pytest.CaptureFixture[str], d: Path) -> None:
    code, err = _keys(
        capsys, "init", str(d), "--cluster", "demo", "--nodes", "3", "--no-passphrase"
    )
    assert code == 0, err


def _secret(path: Path, text: str) -> str:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def test_passwd_refuses_a_symlink_and_leaves_the_key_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    _init(capsys, d)
    real = d / "node1" / "identity.key"
    link = tmp_path / "node1.key"
    link.symlink_to(real)
    before = real.read_bytes()
    new = _secret(tmp_path / "new", "a new passphrase")
    code, err = _keys(capsys, "passwd", str(link), "--new-passphrase-file", new, *FAST)
    # Replacing the link would leave the real key unencrypted while the
    # operator believes it now has a passphrase.
    assert code != 0
    assert "[symlink]" in err and str(real) in err
    assert link.is_symlink() and real.read_bytes() == before


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_root_rewriting_a_node_bundle_keeps_its_owner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    _init(capsys, d)
    bundle = d / "node1"
    for p in (bundle, *bundle.iterdir()):
        os.chown(p, NODE_UID, NODE_UID)
    # passwd by root on the node's key
    new = _secret(tmp_path / "new", "node one")
    code, err = _keys(capsys, "passwd", str(bundle), "--new-passphrase-file", new, *FAST)
    assert code == 0, err
    # accept by root of a newer roster (revoke node3 in the admin dir only)
    code, err = _keys(capsys, "revoke", str(d / "admin"), "node3", "--yes")
    assert code == 0, err
    code, err = _keys(capsys, "accept", str(bundle), str(d / "admin" / "roster.bin"))
    assert code == 0, err
    assert KeyDir(bundle).load_roster().version == 2
    for p in bundle.iterdir():
        st = p.stat()
        assert (st.st_uid, st.st_gid) == (NODE_UID, NODE_UID), p
    key = bundle / "identity.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    Identity.load(key, "node one")


def _eof(prompt: str = "") -> str:
    raise EOFError


def test_ctrl_d_at_a_prompt_is_a_clean_no(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "k"
    _init(capsys, d)
    monkeypatch.setattr(keys_secrets, "interactive", lambda: True)
    monkeypatch.setattr(builtins, "input", _eof)
    monkeypatch.setattr(getpass, "getpass", _eof)
    code = main(["keys", "revoke", str(d), "node2"])
    out, err = capsys.readouterr()
    assert code == 1 and "not revoked" in out and "Traceback" not in err
    code, err = _keys(capsys, "passwd", str(d / "node1"))
    assert code != 0 and "[no_passphrase]" in err
    assert len(Roster.load(d / "admin" / "roster.bin").nodes) == 3


def test_status_inside_a_unit_asks_the_units_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # ExecReload=ringward status ... runs with the unit's STATE_DIRECTORY:
    # that node's socket, not a search of the directory above it.
    own = tmp_path / "node1"
    monkeypatch.setenv("STATE_DIRECTORY", str(own))
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    assert str(own / "control.sock") in err and "[no_control_socket]" in err
