"""``ringward keys`` for operators (issue 18): protocol parameters, passphrase
prompts, ``passwd``, ``fingerprint``, the cluster directory with its bundles,
revoke confirmation, and the hints of ``ringward node``."""

from __future__ import annotations

import builtins
import getpass
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringward.cli import keys_secrets, main
from ringward.cli.node_cmd import load_node_keys
from ringward.crypto import Identity, Roster
from ringward.crypto.keyfile import fingerprint
from ringward.errors import ConfigError, KeyFileError

ENCRYPTED_ADMIN = b"RWKF\x01\x02\x01"
ENCRYPTED_NODE = b"RWKF\x01\x01\x01"
PLAIN_NODE = b"RWKF\x01\x01\x00"
FAST = ("--kdf-cost", "interactive")


@pytest.fixture(autouse=True)
def _no_ambient_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RINGWARD_PASSPHRASE", raising=False)
    monkeypatch.delenv("RINGWARD_NODE_PASSPHRASE", raising=False)


class Terminal:
    """Stands in for a person at a terminal: answers getpass and input()
    from a script, and records the prompts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: list[str] = []
        self.prompts: list[str] = []
        monkeypatch.setattr(keys_secrets, "interactive", lambda: True)
        monkeypatch.setattr(getpass, "getpass", self._answer)
        monkeypatch.setattr(builtins, "input", self._answer)

    def _answer(self, prompt: str = "") -> str:
        self.prompts.append(prompt)
        assert self.answers, f"unexpected prompt {prompt!r}"
        return self.answers.pop(0)

    def script(self, *answers: str) -> None:
        self.answers = list(answers)


@pytest.fixture
def tty(monkeypatch: pytest.MonkeyPatch) -> Iterator[Terminal]:
    terminal = Terminal(monkeypatch)
    yield terminal
    assert not terminal.answers, f"answers left: {terminal.answers}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["keys", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def fails(capsys: pytest.CaptureFixture[str], reason: str, *argv: str) -> str:
    code, _, err = run(capsys, *argv)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"[{reason}]" in lines[0], err
    return lines[0]


def init(capsys: pytest.CaptureFixture[str], d: Path, *extra: str, nodes: int = 3) -> str:
    argv = ["init", str(d), "--cluster", "demo", "--nodes", str(nodes), *extra]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return out


def secret_file(path: Path, text: str) -> str:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


# -- protocol parameters ----------------------------------------------------


def test_init_sets_params_and_show_prints_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    init(
        capsys,
        d,
        "--no-passphrase",
        "--token-timeout-ms",
        "2000",
        "--consensus-timeout-ms",
        "2400",
        "--payload-bytes-max",
        "1048576",
    )
    params = Roster.load(d / "node1" / "roster.bin").params
    assert (params.token_timeout_ms, params.consensus_timeout_ms) == (2000, 2400)
    assert params.payload_bytes_max == 1 << 20
    code, out, _ = run(capsys, "show", str(d))
    assert code == 0
    assert "token_timeout_ms" in out
    assert "2000  (default 1000)" in out
    code, out, _ = run(capsys, "show", str(d / "node2"), "--json")
    shown = json.loads(out)
    assert shown["params"]["payload_bytes_max"] == 1 << 20
    assert shown["params"]["window_size"] == 50


def test_params_verb_signs_a_new_version_and_updates_bundles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    init(capsys, d, "--no-passphrase")
    code, out, _ = run(capsys, "params", str(d))  # no option: print only
    assert code == 0
    assert "roster version 1" in out
    assert Roster.load(d / "admin" / "roster.bin").version == 1
    code, out, _ = run(capsys, "params", str(d), "--window-size", "80", "--max-messages", "20")
    assert code == 0, out
    assert "window_size: 50 -> 80" in out
    for where in ("admin", "node1", "node2", "node3"):
        roster = Roster.load(d / where / "roster.bin")
        assert roster.version == 2
        assert (roster.params.window_size, roster.params.max_messages) == (80, 20)
    assert run(capsys, "verify", str(d))[0] == 0
    fails(capsys, "unchanged", "params", str(d), "--window-size", "80")
    fails(capsys, "bad_params", "params", str(d), "--token-timeout-ms", "1")
    fails(capsys, "bad_params", "params", str(d), "--max-messages", "81")
    fails(capsys, "not_admin", "params", str(d / "node1"), "--window-size", "60")
    assert Roster.load(d / "admin" / "roster.bin").version == 2


def test_params_needs_the_admin_passphrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "k"
    monkeypatch.setenv("RINGWARD_PASSPHRASE", "admin secret")
    init(capsys, d, "--no-passphrase", *FAST)
    monkeypatch.delenv("RINGWARD_PASSPHRASE")
    fails(capsys, "passphrase_required", "params", str(d), "--window-size", "60")
    good = secret_file(tmp_path / "pass", "admin secret")
    code, _, err = run(capsys, "params", str(d), "--window-size", "60", "--passphrase-file", good)
    assert code == 0, err


def test_bad_params_at_init_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    fails(
        capsys,
        "bad_params",
        "init",
        str(d),
        "--cluster",
        "c",
        "--nodes",
        "2",
        "--join-timeout-ms",
        "5000",
    )
    assert not d.exists()


# -- passphrases: terminal, --no-passphrase, no terminal ---------------------


def test_init_asks_twice_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tty: Terminal
) -> None:
    d = tmp_path / "k"
    tty.script("admin pw", "admin pw", "node pw", "node pw")
    out = init(capsys, d, *FAST, nodes=1)
    assert "admin key encrypted" in out
    assert len(tty.prompts) == 4
    assert "admin key" in tty.prompts[0]
    assert (d / "admin" / "admin.key").read_bytes()[:7] == ENCRYPTED_ADMIN
    assert (d / "node1" / "identity.key").read_bytes()[:7] == ENCRYPTED_NODE
    Identity.load(d / "node1" / "identity.key", "node pw")


def test_prompt_refuses_empty_and_mismatched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tty: Terminal
) -> None:
    d = tmp_path / "k"
    tty.script("")
    line = fails(capsys, "empty_passphrase", "init", str(d), "--cluster", "c", "--nodes", "1")
    assert "--no-passphrase" in line
    tty.script("one", "two")
    fails(capsys, "passphrase_mismatch", "init", str(d), "--cluster", "c", "--nodes", "1")
    assert not (d / "admin").exists()


def test_add_and_rotate_ask_for_both_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tty: Terminal
) -> None:
    d = tmp_path / "k"
    tty.script("adm", "adm")
    init(capsys, d, *FAST, "--node-passphrase-file", secret_file(tmp_path / "n", "node"), nodes=1)
    # The admin key is encrypted: asked once; the new node key: twice.
    tty.script("adm", "new node", "new node")
    code, _, err = run(capsys, "add", str(d), "--name", "node4", "--address", "h:1", *FAST)
    assert code == 0, err
    assert "admin.key" in tty.prompts[-3]
    Identity.load(d / "node4" / "identity.key", "new node")
    # A wrong admin passphrase fails before the new key is made.
    tty.script("wrong")
    fails(capsys, "bad_passphrase", "rotate", str(d), "node1", "--no-passphrase")
    tty.script("adm")
    assert run(capsys, "rotate", str(d), "node1", "--no-passphrase")[0] == 0
    assert (d / "node1" / "identity.key").read_bytes()[:7] == PLAIN_NODE


def test_without_a_terminal_a_passphrase_source_is_required(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    line = fails(
        capsys, "passphrase_source_required", "init", str(d), "--cluster", "c", "--nodes", "1"
    )
    assert "RINGWARD_PASSPHRASE" in line
    assert "--no-passphrase" in line
    assert not d.exists()
    # A given admin passphrase does not cover the node keys.
    admin = secret_file(tmp_path / "a", "admin")
    fails(
        capsys,
        "passphrase_source_required",
        "init",
        str(d),
        "--cluster",
        "c",
        "--nodes",
        "1",
        "--passphrase-file",
        admin,
    )
    # --no-passphrase: the keys without a given passphrase are written plain.
    init(capsys, d, "--passphrase-file", admin, "--no-passphrase", *FAST)
    assert (d / "admin" / "admin.key").read_bytes()[:7] == ENCRYPTED_ADMIN
    assert (d / "node1" / "identity.key").read_bytes()[:7] == PLAIN_NODE
    fails(capsys, "passphrase_source_required", "add", str(d), "--name", "n4", "--address", "h:1")


# -- passwd ------------------------------------------------------------------


def test_passwd_adds_changes_and_removes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tty: Terminal
) -> None:
    d = tmp_path / "k"
    init(capsys, d, "--no-passphrase")
    key = d / "node1" / "identity.key"
    before = Identity.load(key)
    tty.script("first", "first")
    code, out, _ = run(capsys, "passwd", str(d / "node1"), *FAST)  # a bundle: its identity.key
    assert code == 0
    assert "passphrase added" in out
    assert key.read_bytes()[:7] == ENCRYPTED_NODE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    tty.script("wrong")
    fails(capsys, "bad_passphrase", "passwd", str(key), "--no-passphrase")
    tty.script("first", "second", "second")
    assert run(capsys, "passwd", str(key), *FAST)[0] == 0
    assert Identity.load(key, "second").public == before.public
    tty.script("second")
    code, out, _ = run(capsys, "passwd", str(key), "--no-passphrase")
    assert code == 0
    assert "removed" in out
    assert Identity.load(key).private_bytes() == before.private_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    fails(capsys, "not_encrypted", "passwd", str(key), "--no-passphrase")
    assert sorted(p.name for p in key.parent.iterdir()) == [
        "admin.pub",
        "identity.key",
        "roster.bin",
        "roster.state",
    ]  # no temporary file left


def test_passwd_unattended_and_admin_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "k"
    init(capsys, d, "--no-passphrase")
    fails(capsys, "passphrase_source_required", "passwd", str(d))
    new = secret_file(tmp_path / "new", "admin two")
    code, out, err = run(capsys, "passwd", str(d), "--new-passphrase-file", new, *FAST)
    assert code == 0, err
    assert "admin key" in out
    assert (d / "admin" / "admin.key").read_bytes()[:7] == ENCRYPTED_ADMIN
    fails(capsys, "passphrase_required", "passwd", str(d), "--no-passphrase")
    monkeypatch.setenv("RINGWARD_PASSPHRASE", "admin two")
    assert run(capsys, "passwd", str(d), "--no-passphrase")[0] == 0
    open_to_all = tmp_path / "open"
    open_to_all.write_text("x\n")
    open_to_all.chmod(0o644)
    fails(
        capsys,
        "permissions_too_open",
        "passwd",
        str(d),
        "--new-passphrase-file",
        str(open_to_all),
    )
    empty = secret_file(tmp_path / "empty", "")
    fails(capsys, "empty_passphrase", "passwd", str(d), "--new-passphrase-file", empty)


# -- fingerprint ---------------------------------------------------------------


def test_fingerprints_agree_between_admin_bundle_and_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    init(capsys, d, "--no-passphrase")
    code, out, _ = run(capsys, "fingerprint", str(d), "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == {"admin", "node1", "node2", "node3"}
    me = Identity.load(d / "node2" / "identity.key")
    assert rows["node2"]["fingerprint"] == fingerprint(me.signing_key + me.encryption_key)
    assert rows["admin"]["fingerprint"].startswith("SHA256:")
    code, out, _ = run(capsys, "fingerprint", str(d / "node2"))
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("node2"))
    assert rows["node2"]["fingerprint"] in line
    assert "(this bundle)" in line
    for path in (d / "admin" / "admin.key", d / "node1" / "admin.pub"):
        code, out, _ = run(capsys, "fingerprint", str(path))
        assert code == 0
        assert out.split() == ["admin", rows["admin"]["fingerprint"]]


# -- the cluster directory ---------------------------------------------------


def test_cluster_directory_keeps_bundles_in_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    init(capsys, d, "--no-passphrase")
    (d / "node3" / "ring.seq").write_text("7\n")  # a node ran from its bundle
    old_key = (d / "node3" / "identity.key").read_bytes()
    assert (
        run(capsys, "add", str(d), "--name", "node4", "--address", "h:1", "--no-passphrase")[0] == 0
    )
    assert run(capsys, "rotate", str(d), "node3", "--no-passphrase")[0] == 0
    assert run(capsys, "revoke", str(d), "node2", "--yes")[0] == 0
    assert sorted(p.name for p in d.iterdir()) == ["admin", "node1", "node3", "node4"]
    new_key = (d / "node3" / "identity.key").read_bytes()
    assert new_key != old_key
    assert new_key == (d / "admin" / "nodes" / "node3.key").read_bytes()
    assert stat.S_IMODE((d / "node3" / "identity.key").stat().st_mode) == 0o600
    assert (d / "node3" / "ring.seq").read_text() == "7\n"
    for name in ("node1", "node3", "node4"):
        assert Roster.load(d / name / "roster.bin").version == 4
    code, out, err = run(capsys, "verify", str(d))
    assert (code, err) == (0, "")
    assert "3 bundles" in out
    fails(capsys, "reserved_name", "add", str(d), "--name", "admin", "--address", "h:2")


def test_verify_reports_a_stale_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "k"
    init(capsys, d, "--no-passphrase")
    old = (d / "node1" / "roster.bin").read_bytes(), (d / "node1" / "roster.state").read_bytes()
    assert run(capsys, "params", str(d), "--window-size", "60")[0] == 0
    (d / "node1" / "roster.bin").write_bytes(old[0])
    (d / "node1" / "roster.state").write_bytes(old[1])
    code, _, err = run(capsys, "verify", str(d))
    assert code == 1
    assert "[stale_roster]" in err


def test_init_refuses_a_filled_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    (d / "node2").mkdir(parents=True)
    (d / "node2" / "notes.txt").write_text("mine")
    fails(capsys, "exists", "init", str(d), "--cluster", "c", "--nodes", "3", "--no-passphrase")
    assert not (d / "admin").exists()


# -- revoke asks ---------------------------------------------------------------


def test_revoke_asks_on_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tty: Terminal
) -> None:
    d = tmp_path / "k"
    init(capsys, d, "--no-passphrase")
    tty.script("n")
    code, out, _ = run(capsys, "revoke", str(d), "node2")
    assert code == 1
    assert "not revoked" in out
    assert "node2" in tty.prompts[-1]
    assert (d / "node2").exists()
    tty.script("y")
    assert run(capsys, "revoke", str(d), "node2")[0] == 0
    assert not (d / "node2").exists()
    assert run(capsys, "revoke", str(d), "node3", "--yes")[0] == 0  # no question


def test_revoke_without_terminal_needs_yes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    init(capsys, d, "--no-passphrase")
    line = fails(capsys, "confirmation_required", "revoke", str(d), "node2")
    assert "--yes" in line
    assert Roster.load(d / "admin" / "roster.bin").version == 1


# -- ringward node: finding its keys, and its hints ---------------------------


def test_node_finds_its_bundle_in_a_cluster_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    init(capsys, d, "--no-passphrase")
    roster, identity = load_node_keys(str(d / "node2"), None, None)
    assert roster.node_by_signing_key(identity.signing_key) == roster.node_by_name("node2")
    _, same = load_node_keys(str(d), "node2", None)
    assert same.public == identity.public
    with pytest.raises(ConfigError) as err:
        load_node_keys(str(d), None, None)
    assert err.value.reason == "name_required"
    assert str(d / "NODE") in err.value.message


def test_node_with_a_bundle_missing_its_key_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    init(capsys, d, "--no-passphrase")
    (d / "node1" / "identity.key").unlink()
    with pytest.raises(KeyFileError) as err:
        load_node_keys(str(d / "node1"), None, None)
    assert err.value.reason == "missing_file"
    assert "identity.key" in err.value.message
    assert "admin directory" not in err.value.message
    with pytest.raises(ConfigError) as cerr:
        load_node_keys(str(d / "admin"), None, None)
    assert cerr.value.reason == "name_required"


def test_node_accepts_the_option_its_hint_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "k"
    monkeypatch.setenv("RINGWARD_NODE_PASSPHRASE", "node pw")
    init(capsys, d, "--no-passphrase", *FAST)
    monkeypatch.delenv("RINGWARD_NODE_PASSPHRASE")
    with pytest.raises(KeyFileError) as err:
        load_node_keys(str(d / "node1"), None, None)
    assert err.value.reason == "passphrase_required"
    assert "--node-passphrase-file" in err.value.message
    from ringward.cli import build_parser

    args = build_parser().parse_args(
        ["node", "--keys", str(d / "node1"), "--node-passphrase-file", "pw"]
    )
    assert args.passphrase_file == "pw"
    good = secret_file(tmp_path / "pw", "node pw")
    _, identity = load_node_keys(str(d / "node1"), None, good)
    assert identity.public == Identity.load(d / "node1" / "identity.key", "node pw").public


def test_a_bundle_copied_away_is_not_written_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    init(capsys, d, "--no-passphrase")
    for name in ("node1", "node2", "node3"):
        for f in (d / name).iterdir():
            f.unlink()
        (d / name).rmdir()  # copied to its machine, then removed here
    assert run(capsys, "rotate", str(d), "node2", "--no-passphrase")[0] == 0
    assert run(capsys, "params", str(d), "--window-size", "60")[0] == 0
    assert sorted(p.name for p in d.iterdir()) == ["admin"]
    assert run(capsys, "verify", str(d))[0] == 0


def test_init_refuses_a_bundle_or_an_old_admin_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "k"
    init(capsys, d, "--no-passphrase")
    for there in (d / "node1", d / "admin"):
        line = fails(
            capsys,
            "exists",
            "init",
            str(there),
            "--cluster",
            "c",
            "--nodes",
            "1",
            "--no-passphrase",
        )
        assert "already holds keys" in line
    assert not (d / "node1" / "admin").exists()
