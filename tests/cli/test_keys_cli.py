"""``ringward keys``: the provisioning CLI, in-process and as installed."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ringward.cli import main
from ringward.crypto import Identity, Roster

REPO = Path(__file__).resolve().parents[2]
VERBS = [
    "init",
    "add",
    "revoke",
    "rotate",
    "show",
    "verify",
    "export-node",
    "accept",
    "params",
    "passwd",
    "fingerprint",
]


@pytest.fixture(autouse=True)
def _no_ambient_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RINGWARD_PASSPHRASE", raising=False)
    monkeypatch.delenv("RINGWARD_NODE_PASSPHRASE", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["keys", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def fails(capsys: pytest.CaptureFixture[str], reason: str, *argv: str) -> str:
    """Run a command that must fail with one clear line naming ``reason``."""
    code, _, err = run(capsys, *argv)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"[{reason}]" in lines[0], err
    return lines[0]


def init(capsys: pytest.CaptureFixture[str], d: Path, nodes: int = 3, *extra: str) -> None:
    argv = ["init", str(d), "--cluster", "demo", "--nodes", str(nodes), *extra]
    if not any("passphrase" in a for a in extra):
        argv.append("--no-passphrase")
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "node1" in out


def show(capsys: pytest.CaptureFixture[str], d: Path) -> dict[str, object]:
    code, out, _ = run(capsys, "show", str(d), "--json")
    assert code == 0
    data: dict[str, object] = json.loads(out)
    return data


def test_init_then_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "keys"
    init(capsys, d, 5)
    # The admin part apart from one bundle per node.
    assert {p.name for p in d.iterdir()} == {"admin", *(f"node{i}" for i in range(1, 6))}
    assert {p.name for p in (d / "admin").iterdir()} == {
        "admin.key",
        "admin.pub",
        "roster.bin",
        "roster.state",
        "nodes",
    }
    for i in range(1, 6):
        bundle = d / f"node{i}"
        assert {p.name for p in bundle.iterdir()} == {
            "identity.key",
            "admin.pub",
            "roster.bin",
            "roster.state",
        }
        assert stat.S_IMODE(bundle.stat().st_mode) == 0o700
        assert (bundle / "identity.key").read_bytes() == (
            d / "admin" / "nodes" / f"node{i}.key"
        ).read_bytes()
    keys = [d / "admin" / "admin.key", *(d / "admin" / "nodes").iterdir()]
    for key in [*keys, *(d / f"node{i}" / "identity.key" for i in range(1, 6))]:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    code, out, err = run(capsys, "verify", str(d))
    assert (code, err) == (0, "")
    assert out.startswith("ok: cluster demo, roster version 1, 5 nodes, 5 bundles")
    data = show(capsys, d)
    assert data["cluster"] == "demo"
    assert data["version"] == 1
    nodes = data["nodes"]
    assert isinstance(nodes, list)
    assert [n["address"] for n in nodes] == [f"127.0.0.1:{7400 + i}" for i in range(5)]
    assert set(nodes[0]) == {"id", "name", "address", "signing_key", "encryption_key"}
    me = Identity.load(d / "node1" / "identity.key")
    assert nodes[0]["signing_key"] == me.signing_key.hex()
    assert nodes[0]["encryption_key"] == me.encryption_key.hex()


def test_init_into_the_repo_style_keys_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "keys").mkdir()
    for name in ("README.md", ".gitignore"):
        shutil.copy(REPO / "keys" / name, tmp_path / "keys" / name)
    monkeypatch.chdir(tmp_path)
    code, _, _ = run(capsys, "init", "--cluster", "demo", "--nodes", "2", "--no-passphrase")
    assert code == 0
    assert (tmp_path / "keys" / "admin" / "roster.bin").is_file()
    assert (tmp_path / "keys" / "node1" / "roster.bin").is_file()
    assert (tmp_path / "keys" / "README.md").is_file()
    assert run(capsys, "verify")[0] == 0
    assert run(capsys, "show")[0] == 0
    assert run(capsys, "revoke", "node2", "--yes")[0] == 0
    assert not (tmp_path / "keys" / "node2").exists()
    fails(capsys, "exists", "init", "--cluster", "again", "--nodes", "1", "--no-passphrase")


def test_init_with_addresses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "k"
    code, _, _ = run(
        capsys,
        "init",
        str(d),
        "--cluster",
        "prod",
        "--address",
        "10.0.0.1:7400",
        "--address",
        "[FD00:0::2]:7400",
        "--address",
        "Db3.Example:7400",
        "--no-passphrase",
    )
    assert code == 0
    nodes = show(capsys, d)["nodes"]
    assert [n["address"] for n in nodes] == [  # type: ignore[attr-defined]
        "10.0.0.1:7400",
        "[fd00::2]:7400",
        "db3.example:7400",
    ]
    d6 = tmp_path / "k6"
    init(capsys, d6, 2, "--host", "::1", "--no-passphrase")
    assert [n["address"] for n in show(capsys, d6)["nodes"]] == ["[::1]:7400", "[::1]:7401"]  # type: ignore[attr-defined]


def test_add_revoke_rotate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "k"
    init(capsys, d)
    before = show(capsys, d)["nodes"]
    assert (
        run(
            capsys, "add", str(d), "--name", "db4", "--address", "10.0.0.4:7400", "--no-passphrase"
        )[0]
        == 0
    )
    assert run(capsys, "revoke", str(d), "node2", "--yes")[0] == 0
    assert not (d / "admin" / "nodes" / "node2.key").exists()
    assert run(capsys, "rotate", str(d), "node3", "--no-passphrase")[0] == 0
    after = show(capsys, d)
    assert after["version"] == 4
    nodes = {n["name"]: n for n in after["nodes"]}  # type: ignore[attr-defined]
    assert set(nodes) == {"node1", "node3", "db4"}
    assert nodes["db4"]["id"] == 4
    old3 = before[2]  # type: ignore[index]
    assert nodes["node3"]["id"] == old3["id"]
    assert nodes["node3"]["address"] == old3["address"]
    assert nodes["node3"]["signing_key"] != old3["signing_key"]
    assert (
        Identity.load(d / "admin" / "nodes" / "node3.key").signing_key.hex()
        == nodes["node3"]["signing_key"]
    )
    assert not (d / "admin" / "nodes" / "node3.key.new").exists()
    assert run(capsys, "verify", str(d))[0] == 0
    assert Roster.load(d / "admin" / "roster.bin").version == 4


def test_export_node_and_accept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d, bundle = tmp_path / "k", tmp_path / "node1"
    init(capsys, d)
    assert run(capsys, "export-node", str(d), "node1", str(bundle))[0] == 0
    assert {p.name for p in bundle.iterdir()} == {
        "identity.key",
        "admin.pub",
        "roster.bin",
        "roster.state",
    }
    assert stat.S_IMODE((bundle / "identity.key").stat().st_mode) == 0o600
    assert (bundle / "identity.key").read_bytes() == (
        d / "admin" / "nodes" / "node1.key"
    ).read_bytes()
    code, out, _ = run(capsys, "verify", str(bundle))
    assert code == 0
    assert "version 1" in out
    old = tmp_path / "roster-v1.bin"
    shutil.copy(d / "admin" / "roster.bin", old)
    assert (
        run(
            capsys,
            "add",
            str(d),
            "--name",
            "node4",
            "--address",
            "127.0.0.1:7500",
            "--no-passphrase",
        )[0]
        == 0
    )
    assert run(capsys, "accept", str(bundle), str(d / "admin" / "roster.bin"))[0] == 0
    assert show(capsys, bundle)["version"] == 2
    fails(capsys, "rollback", "accept", str(bundle), str(old))
    # A roster replaced on the node's disk is refused too.
    shutil.copy(old, bundle / "roster.bin")
    code, _, err = run(capsys, "verify", str(bundle))
    assert code == 1
    assert "[rollback]" in err
    fails(capsys, "exists", "export-node", str(d), "node2", str(bundle))


def test_revoked_node_bundle_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d, bundle = tmp_path / "k", tmp_path / "b"
    init(capsys, d)
    run(capsys, "export-node", str(d), "node2", str(bundle))
    run(capsys, "revoke", str(d), "node2", "--yes")
    run(capsys, "accept", str(bundle), str(d / "admin" / "roster.bin"))
    code, _, err = run(capsys, "verify", str(bundle))
    assert code == 1
    assert "[unknown_node]" in err


def test_wrong_admin_roster_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b, bundle = tmp_path / "a", tmp_path / "b", tmp_path / "bundle"
    init(capsys, a)
    init(capsys, b)
    run(capsys, "export-node", str(a), "node1", str(bundle))
    fails(capsys, "wrong_admin", "accept", str(bundle), str(b / "admin" / "roster.bin"))
    shutil.copy(b / "admin" / "roster.bin", a / "admin" / "roster.bin")
    fails(capsys, "wrong_admin", "show", str(a))


# -- every error path of the issue -----------------------------------------


def test_missing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails(capsys, "missing_dir", "show", str(tmp_path / "absent"))
    fails(capsys, "missing_dir", "verify", str(tmp_path / "absent"))
    fails(capsys, "not_a_key_dir", "verify", str(tmp_path))
    fails(capsys, "not_a_key_dir", "show", str(tmp_path))
    d = tmp_path / "k"
    init(capsys, d)
    assert run(capsys, "export-node", str(d), "node1", str(tmp_path / "b"))[0] == 0
    fails(capsys, "missing_file", "accept", str(tmp_path / "b"), str(tmp_path / "nope.bin"))
    fails(capsys, "not_a_bundle", "accept", str(d), str(d / "admin" / "roster.bin"))
    (d / "admin" / "nodes" / "node2.key").unlink()
    line = fails(capsys, "missing_file", "verify", str(d))
    assert "node2.key" in line
    fails(capsys, "missing_file", "export-node", str(d), "node2", str(tmp_path / "out"))
    (d / "admin" / "admin.pub").unlink()
    fails(capsys, "missing_file", "show", str(d))
    (d / "admin" / "roster.bin").unlink()
    fails(capsys, "missing_file", "show", str(d))


def test_wrong_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "k"
    monkeypatch.setenv("RINGWARD_PASSPHRASE", "admin secret")
    monkeypatch.setenv("RINGWARD_NODE_PASSPHRASE", "node secret")
    init(capsys, d, 2, "--kdf-cost", "interactive")
    assert (d / "admin" / "admin.key").read_bytes()[:7] == b"RWKF\x01\x02\x01"  # encrypted
    assert run(capsys, "verify", str(d))[0] == 0
    monkeypatch.setenv("RINGWARD_PASSPHRASE", "guess")
    fails(capsys, "bad_passphrase", "add", str(d), "--name", "x", "--address", "h:1")
    code, _, err = run(capsys, "verify", str(d))
    assert code == 1
    assert "[bad_passphrase]" in err
    monkeypatch.delenv("RINGWARD_PASSPHRASE")
    fails(capsys, "passphrase_required", "revoke", str(d), "node1", "--yes")
    # Without passphrases verify still checks the public halves.
    monkeypatch.delenv("RINGWARD_NODE_PASSPHRASE")
    assert run(capsys, "verify", str(d))[0] == 0
    good = tmp_path / "pass"
    good.write_text("admin secret\n")
    good.chmod(0o600)  # a passphrase file open to others is refused
    assert run(capsys, "revoke", str(d), "node1", "--yes", "--passphrase-file", str(good))[0] == 0
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    fails(
        capsys,
        "empty_passphrase",
        "revoke",
        str(d),
        "node2",
        "--yes",
        "--passphrase-file",
        str(empty),
    )
    fails(
        capsys,
        "missing_file",
        "revoke",
        str(d),
        "node2",
        "--yes",
        "--passphrase-file",
        str(tmp_path / "x"),
    )


def test_tampered_roster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "k"
    init(capsys, d)
    good = (d / "admin" / "roster.bin").read_bytes()
    for position in (0, 4, 10, len(good) // 2, len(good) - 65, len(good) - 1):
        bad = bytearray(good)
        bad[position] ^= 0x04
        (d / "admin" / "roster.bin").write_bytes(bytes(bad))
        code, _, err = run(capsys, "verify", str(d))
        assert code == 1
        assert len(err.strip().splitlines()) == 1
        fails(capsys, err.rsplit("[", 1)[1].rstrip("]\n"), "show", str(d))
        fails(capsys, err.rsplit("[", 1)[1].rstrip("]\n"), "revoke", str(d), "node1", "--yes")


def test_unknown_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "k"
    init(capsys, d)
    line = fails(capsys, "unknown_node", "revoke", str(d), "node9")
    assert "node1, node2, node3" in line
    fails(capsys, "unknown_node", "rotate", str(d), "node9")
    fails(capsys, "unknown_node", "export-node", str(d), "node9", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_permissions_too_open(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "k"
    init(capsys, d)
    key = d / "admin" / "nodes" / "node1.key"
    os.chmod(key, 0o644)
    code, _, err = run(capsys, "verify", str(d))
    assert code == 1
    assert f"chmod 600 {key}" in err
    assert "[permissions_too_open]" in err
    line = fails(
        capsys, "permissions_too_open", "export-node", str(d), "node1", str(tmp_path / "o")
    )
    assert str(key) in line
    os.chmod(d / "admin" / "admin.key", 0o640)
    fails(capsys, "permissions_too_open", "add", str(d), "--name", "n", "--address", "h:1")


def test_duplicate_address(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "k"
    args = ["--address", "10.0.0.1:7400", "--address", "10.0.0.1:7400"]
    fails(capsys, "duplicate_address", "init", str(d), "--cluster", "c", *args)
    assert not d.exists()  # validated before anything was written
    init(capsys, d)
    fails(capsys, "duplicate_address", "add", str(d), "--name", "n4", "--address", "127.0.0.1:7401")
    fails(capsys, "duplicate_name", "add", str(d), "--name", "node1", "--address", "h:1")
    assert not (d / "admin" / "nodes" / "n4.key").exists()
    assert show(capsys, d)["version"] == 1


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["--address", "10.0.0.1"], "bad_address"),
        (["--address", "::1:7400"], "bad_address"),
        (["--nodes", "0"], "bad_count"),
        (["--nodes", "2", "--base-port", "65535"], "bad_address"),
    ],
)
def test_bad_init_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], reason: str
) -> None:
    fails(capsys, reason, "init", str(tmp_path / "k"), "--cluster", "c", *argv)


def test_bad_cluster_and_node_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fails(capsys, "bad_text", "init", str(tmp_path / "k"), "--cluster", "no spaces", "--nodes", "1")
    init(capsys, tmp_path / "k")
    fails(capsys, "bad_text", "add", str(tmp_path / "k"), "--name", "../x", "--address", "h:1")


@pytest.mark.parametrize("verb", VERBS)
def test_help_has_examples(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["keys", verb, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert "ringward keys " + verb in out


def test_keys_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["keys", "--help"])
    out = capsys.readouterr().out
    for verb in VERBS:
        assert verb in out


# -- through the installed console script ----------------------------------


def _console() -> list[str]:
    script = Path(sys.executable).parent / "ringward"
    if script.exists():
        return [str(script)]
    found = shutil.which("ringward")
    return [found] if found else [sys.executable, "-m", "ringward"]


def _sh(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RINGWARD_")}
    proc = subprocess.run(
        [*_console(), *argv], cwd=cwd, capture_output=True, text=True, check=False, env=env
    )
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


@pytest.mark.heavy
def test_console_script_newcomer_path(tmp_path: Path) -> None:
    # What the README tells a newcomer to type.
    first = _sh(
        "keys", "init", "--cluster", "demo", "--nodes", "3", "--no-passphrase", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    verified = _sh("keys", "verify", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("ok:")
    shown = _sh("keys", "show", "--json", cwd=tmp_path)
    assert json.loads(shown.stdout)["version"] == 1


@pytest.mark.heavy
def test_console_script_errors(tmp_path: Path) -> None:
    assert (
        _sh(
            "keys",
            "init",
            "k",
            "--cluster",
            "demo",
            "--nodes",
            "2",
            "--no-passphrase",
            cwd=tmp_path,
        ).returncode
        == 0
    )
    os.chmod(tmp_path / "k" / "admin" / "nodes" / "node2.key", 0o644)
    proc = _sh("keys", "export-node", "k", "node2", "out", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "chmod 600" in proc.stderr
    data = bytearray((tmp_path / "k" / "admin" / "roster.bin").read_bytes())
    data[-10] ^= 1
    (tmp_path / "k" / "admin" / "roster.bin").write_bytes(bytes(data))
    proc = _sh("keys", "verify", "k", cwd=tmp_path)
    assert proc.returncode == 1
    assert "[bad_signature]" in proc.stderr
    assert proc.stderr.count("\n") == 1
