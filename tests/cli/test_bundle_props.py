"""A node bundle directory with any of its files missing, replaced or
mutated (the fuzz_bundle invariant as properties): what `ringward node`
reads gives a roster and an identity of it, or one RingwardError; `keys
verify` never raises and finds nothing wrong in a bundle the node accepts.

And the regression fuzz_bundle found: load_node_keys checked only the
signing key of a bundle's identity (an X25519 key the roster does not list
was accepted) and, in an admin directory, nothing at all (nodes/node2.key
holding node3's identity ran as node3)."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringward.cli.node_cmd import load_node_keys
from ringward.crypto import vectors
from ringward.crypto.identity import Identity, clamp_x25519
from ringward.crypto.keydir import ADMIN_KEY, IDENTITY_KEY, KeyDir
from ringward.errors import ConfigError

import _keyfiles
import fuzz_bundle

SEEDS = fuzz_bundle.seeds()


@st.composite
def bundles(draw: st.DrawFn) -> dict[str, bytes]:
    files = fuzz_bundle.unpack(draw(st.sampled_from(SEEDS)))
    for name in draw(st.lists(st.sampled_from(fuzz_bundle.FILES), max_size=3)):
        body = files.get(name, b"")
        action = draw(st.sampled_from(["drop", "replace", "patch", "truncate"]))
        if action == "drop":
            files.pop(name, None)
        elif action == "replace":
            files[name] = draw(st.binary(max_size=64))
        elif action == "truncate":
            files[name] = body[: draw(st.integers(0, len(body)))]
        elif body:
            at = draw(st.integers(0, len(body) - 1))
            files[name] = body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1 :]
    return files


def _write(directory: Path, files: dict[str, bytes]) -> str:
    directory.mkdir(mode=0o700, exist_ok=True)
    for name, body in files.items():
        (directory / name).parent.mkdir(mode=0o700, exist_ok=True)
        _keyfiles.write_file(directory / name, body)
    return str(directory)


def test_every_seed_but_the_admin_directory_is_accepted(tmp_path: Path) -> None:
    # The seeds reach the deepest checks only if the node accepts them.
    accepted = 0
    for i, seed in enumerate(SEEDS):
        fuzz_bundle.TestOneInput(seed)
        files = fuzz_bundle.unpack(seed)
        if ADMIN_KEY in files or fuzz_bundle.PASSPHRASE_FILE in files:
            continue
        load_node_keys(_write(tmp_path / str(i), files), None, None)
        accepted += 1
    assert accepted == 4


def test_regression_inputs_replay() -> None:
    regressions = sorted((Path(fuzz_bundle.__file__).parent / "regressions/bundle").iterdir())
    assert regressions
    for path in regressions:
        fuzz_bundle.TestOneInput(path.read_bytes())


def _plain_key(identity: Identity) -> bytes:
    """The key file Identity.save writes (unencrypted)."""
    path = _keyfiles.scratch_dir() / "regression.key"
    path.unlink(missing_ok=True)
    identity.save(path)
    return path.read_bytes()


def test_bundle_identity_with_an_x25519_key_the_roster_does_not_list_is_refused(
    tmp_path: Path,
) -> None:
    node1 = vectors.example_identity(1)
    other_box = clamp_x25519(bytes(range(32)))
    spliced = Identity.from_private_bytes(node1.private_bytes()[:32] + other_box)
    files = fuzz_bundle.unpack(SEEDS[0]) | {IDENTITY_KEY: _plain_key(spliced)}
    with pytest.raises(ConfigError) as err:
        load_node_keys(_write(tmp_path / "bundle", files), None, None)
    assert err.value.reason == "key_mismatch"
    assert "identity.key" in err.value.message


def test_admin_directory_key_file_of_another_node_is_refused(tmp_path: Path) -> None:
    files = fuzz_bundle.unpack(SEEDS[0])
    roster = {name: files[name] for name in ("admin.pub", "roster.bin", "roster.state")}
    keys = {
        "nodes/node1.key": _plain_key(vectors.example_identity(1)),
        "nodes/node2.key": _plain_key(vectors.example_identity(3)),  # node3's identity
    }
    directory = _write(tmp_path / "admin", roster | keys)
    assert not KeyDir(directory).is_bundle
    assert load_node_keys(directory, "node1", None)[1].public == vectors.example_identity(1).public
    with pytest.raises(ConfigError) as err:
        load_node_keys(directory, "node2", None)
    assert err.value.reason == "key_mismatch"
    assert "node2.key" in err.value.message


@settings(max_examples=200, deadline=None)
@given(bundles())
def test_mutated_bundles_keep_the_fuzz_invariant(files: dict[str, bytes]) -> None:
    fuzz_bundle.TestOneInput(fuzz_bundle.pack(files))
