"""Files ringward writes or reads next to secrets (issue 14, finding 6):
the ring sequence file, node bundles and passphrase sources."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from ringward.cli import main
from ringward.errors import ConfigError
from ringward.runtime.ringseq import RING_SEQ_MAX, load_ring_seq, store_ring_seq

# -- helpers ------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_ambient_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RINGWARD_PASSPHRASE", raising=False)
    monkeypatch.delenv("RINGWARD_NODE_PASSPHRASE", raising=False)


def keys(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["keys", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def keys_fail(capsys: pytest.CaptureFixture[str], reason: str, *argv: str) -> str:
    """Run a keys command that must fail with one clear line naming ``reason``."""
    code, _, err = keys(capsys, *argv)
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"[{reason}]" in lines[0], err
    return lines[0]


def init(capsys: pytest.CaptureFixture[str], d: Path, *extra: str) -> None:
    argv = ["init", str(d), "--cluster", "demo", "--nodes", "2", "--no-passphrase", *extra]
    code, _, err = keys(capsys, *argv)
    assert code == 0, err


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- 1. the ring sequence file --------------------------------------------


def test_store_ring_seq_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "ring.seq"
    (tmp_path / "ring.seq.tmp").symlink_to(victim)
    store_ring_seq(target, 7)
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink()
    assert stat.S_ISREG(target.lstat().st_mode)
    assert mode(target) == 0o600
    assert load_ring_seq(target) == 7


def test_store_ring_seq_never_writes_through_a_planted_hard_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "ring.seq"
    os.link(victim, tmp_path / "ring.seq.tmp")
    store_ring_seq(target, 8)
    assert victim.read_text() == "precious\n"
    assert load_ring_seq(target) == 8
    store_ring_seq(target, 9)  # and again over an existing file
    assert load_ring_seq(target) == 9
    assert victim.read_text() == "precious\n"


def test_store_ring_seq_leaves_no_temp_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "ring.seq"
    store_ring_seq(target, 3)

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ringward.runtime.ringseq.os.replace", broken_replace)
    with pytest.raises(ConfigError) as err:
        store_ring_seq(target, 4)
    assert err.value.reason == "bad_ring_seq_file"
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ring.seq"]
    assert load_ring_seq(target) == 3


def test_store_ring_seq_fsyncs_file_and_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[bool] = []  # True: a directory
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr("ringward.runtime.ringseq.os.fsync", spy)
    store_ring_seq(tmp_path / "ring.seq", 5)
    assert False in synced and True in synced


def test_store_ring_seq_refuses_values_outside_u64(tmp_path: Path) -> None:
    target = tmp_path / "ring.seq"
    for bad in (-1, RING_SEQ_MAX + 1):
        with pytest.raises(ConfigError) as err:
            store_ring_seq(target, bad)
        assert err.value.reason == "bad_ring_seq_file"
    assert not target.exists()
    store_ring_seq(target, RING_SEQ_MAX)
    assert load_ring_seq(target) == RING_SEQ_MAX


@pytest.mark.parametrize(
    "content",
    [
        b"18446744073709551616\n",  # 2**64
        b"99999999999999999999\n",
        b"-1\n",
        b"+5\n",
        b"",
        b"\n",
        b"1 2\n",
        b"0x10\n",
        b"1_000\n",
        "\u0661\u0662\n".encode(),  # Arabic-Indic digits: isdigit() but not ASCII
        b"7" * 64 + b"\n",
    ],
)
def test_load_ring_seq_refuses_anything_but_a_u64(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "ring.seq"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_ring_seq(path)
    assert err.value.reason == "bad_ring_seq_file"


def test_load_ring_seq_reads_a_bounded_amount(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ring.seq"
    path.write_bytes(b"1" * (1 << 20))
    with pytest.raises(ConfigError) as err:
        load_ring_seq(path)
    assert err.value.reason == "bad_ring_seq_file"
    path.write_bytes(f"{RING_SEQ_MAX}\n".encode())
    assert load_ring_seq(path) == RING_SEQ_MAX


def test_load_ring_seq_refuses_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.write_text("5\n")
    link = tmp_path / "ring.seq"
    link.symlink_to(real)
    with pytest.raises(ConfigError) as err:
        load_ring_seq(link)
    assert err.value.reason == "bad_ring_seq_file"
    assert "symlink" in err.value.message


def test_load_ring_seq_does_not_hang_on_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "ring.seq"
    os.mkfifo(fifo)
    outcome: list[BaseException | int] = []

    def load() -> None:
        try:
            outcome.append(load_ring_seq(fifo))
        except BaseException as exc:  # reported to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # unblock the reader before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
        pytest.fail("load_ring_seq blocked on a FIFO")
    assert len(outcome) == 1
    assert isinstance(outcome[0], ConfigError)
    assert outcome[0].reason == "bad_ring_seq_file"


# -- 2. export-node into an existing directory ----------------------------


def test_export_node_makes_an_existing_open_directory_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "keys"
    init(capsys, d)
    out = tmp_path / "bundle"
    out.mkdir()
    out.chmod(0o777)
    code, _, err = keys(capsys, "export-node", str(d), "node1", str(out))
    assert code == 0, err
    assert mode(out) == 0o700
    assert mode(out / "identity.key") == 0o600
    assert keys(capsys, "verify", str(out))[0] == 0


def test_export_node_new_directory_is_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "keys"
    init(capsys, d)
    out = tmp_path / "new" / "bundle"
    assert keys(capsys, "export-node", str(d), "node1", str(out))[0] == 0
    assert mode(out) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to hand the directory to another user")
def test_export_node_refuses_a_directory_owned_by_someone_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "keys"
    init(capsys, d)
    out = tmp_path / "bundle"
    out.mkdir(mode=0o755)
    os.chown(out, 65534, 65534)
    line = keys_fail(capsys, "not_owner", "export-node", str(d), "node1", str(out))
    assert str(out) in line
    assert not (out / "identity.key").exists()
    assert mode(out) == 0o755


# -- 3. an empty passphrase variable ---------------------------------------


@pytest.mark.parametrize("env", ["RINGWARD_PASSPHRASE", "RINGWARD_NODE_PASSPHRASE"])
def test_empty_passphrase_variable_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    monkeypatch.setenv(env, "")
    d = tmp_path / "keys"
    line = keys_fail(
        capsys, "empty_passphrase", "init", str(d), "--cluster", "demo", "--nodes", "2"
    )
    assert env in line
    assert not (d / "admin" / "admin.key").exists()
    assert not (d / "admin").exists()


# -- 4. passphrase files ---------------------------------------------------


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o620, 0o602])
@pytest.mark.parametrize("option", ["--passphrase-file", "--node-passphrase-file"])
def test_passphrase_file_open_to_others_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, file_mode: int
) -> None:
    secret = tmp_path / "pass"
    secret.write_text("a secret\n")
    secret.chmod(file_mode)
    d = tmp_path / "keys"
    line = keys_fail(
        capsys,
        "permissions_too_open",
        "init",
        str(d),
        "--cluster",
        "demo",
        "--nodes",
        "2",
        option,
        str(secret),
    )
    assert str(secret) in line
    assert not (d / "admin" / "admin.key").exists()


def test_private_passphrase_file_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pass"
    secret.write_text("a secret\n")
    secret.chmod(0o600)
    d = tmp_path / "keys"
    init(capsys, d, "--passphrase-file", str(secret), "--kdf-cost", "interactive")
    assert (d / "admin" / "admin.key").read_bytes()[:7] == b"RWKF\x01\x02\x01"  # encrypted


def test_passphrase_file_is_read_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pass"
    secret.write_bytes(b"a secret\n" + b"x" * 8192)
    secret.chmod(0o600)
    keys_fail(
        capsys,
        "file_too_large",
        "init",
        str(tmp_path / "keys"),
        "--cluster",
        "demo",
        "--nodes",
        "2",
        "--passphrase-file",
        str(secret),
    )
