"""Key file loading under any bytes and any passphrase (the fuzz_keyfile
invariant as properties), and the regression it found: a passphrase taken
from an environment variable that is not UTF-8 crashed every loader with
UnicodeEncodeError instead of a KeyFileError."""

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto_helpers import FAST_KDF
from ringward.cli import main
from ringward.crypto import keyfile
from ringward.crypto.identity import AdminKey
from ringward.crypto.keyfile import KeyKind
from ringward.errors import KeyFileError

import _keyfiles
import fuzz_keyfile

# Any code point, lone surrogates included: what a str passphrase may hold
# (os.environ hands non-UTF-8 bytes over as surrogates \udc80-\udcff).
PASSPHRASES = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)


def _encrypted_admin(passphrase: bytes) -> bytes:
    admin = AdminKey.from_private_bytes(b"\x07" * 32)
    return keyfile.encode_key_file(
        KeyKind.ADMIN, admin.public_key, admin.private_bytes(), passphrase, FAST_KDF
    )


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), PASSPHRASES)
def test_any_file_any_passphrase_gives_a_record_or_key_file_error(
    data: bytes, passphrase: str
) -> None:
    with _keyfiles.cheap_kdf() as kdf:
        try:
            keyfile.decode_key_file(data, "fuzz", passphrase)
        except KeyFileError as exc:
            assert _keyfiles.REASON.fullmatch(exc.reason)
    assert kdf.calls <= 1


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(fuzz_keyfile.seeds()), st.data())
def test_mutated_key_files_keep_the_fuzz_invariant(seed: bytes, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(seed) - 1))
    patch = data.draw(st.binary(min_size=1, max_size=8))
    fuzz_keyfile.TestOneInput(seed[:at] + patch + seed[at + len(patch) :])


def test_regression_inputs_replay() -> None:
    regressions = sorted((Path(fuzz_keyfile.__file__).parent / "regressions/keyfile").iterdir())
    assert regressions
    for path in regressions:
        fuzz_keyfile.TestOneInput(path.read_bytes())


def test_env_passphrase_that_is_not_utf8_is_its_bytes() -> None:
    # The bytes an operator put in the variable, as os.environ decodes them.
    data = _encrypted_admin(b"\xff\xfesecret")
    as_env = b"\xff\xfesecret".decode("utf-8", "surrogateescape")
    record = keyfile.decode_key_file(data, "admin.key", as_env)
    assert record.secret == b"\x07" * 32
    with pytest.raises(KeyFileError) as err:
        keyfile.decode_key_file(data, "admin.key", "\udcff\udcfeother")
    assert err.value.reason == "bad_passphrase"


def test_lone_surrogate_passphrase_is_a_key_file_error() -> None:
    with pytest.raises(KeyFileError) as err:
        keyfile.decode_key_file(_encrypted_admin(b"pw"), "admin.key", "\ud800")
    assert err.value.reason == "bad_passphrase_encoding"
    with pytest.raises(KeyFileError) as err:
        keyfile.encode_key_file(KeyKind.ADMIN, b"\x01" * 32, b"\x02" * 32, "\ud800", FAST_KDF)
    assert err.value.reason == "bad_passphrase_encoding"


def test_cli_with_a_non_utf8_passphrase_variable_fails_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RINGWARD_NODE_PASSPHRASE", raising=False)
    monkeypatch.setenv("RINGWARD_PASSPHRASE", "right")
    keys = tmp_path / "keys"
    assert (
        main(
            [
                "keys",
                "init",
                str(keys),
                "--cluster",
                "c",
                "--nodes",
                "1",
                "--kdf-cost",
                "interactive",
                "--no-passphrase",
            ]
        )
        == 0
    )
    capsys.readouterr()
    monkeypatch.setenv("RINGWARD_PASSPHRASE", b"\xff".decode("utf-8", "surrogateescape"))
    assert main(["keys", "verify", str(keys)]) != 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "[bad_passphrase]" in err
