"""Where ``ringward keys`` gets passphrases from.

In order: a passphrase file (``--passphrase-file`` for the admin key,
``--node-passphrase-file`` for node keys), then an environment variable
(``RINGWARD_PASSPHRASE``, ``RINGWARD_NODE_PASSPHRASE``), then the terminal.
Never a command-line argument: any local user can read the process list.

A verb that writes new keys (``init``, ``add``, ``rotate``, ``passwd``)
asks twice on a terminal when no passphrase is given. Without a terminal
it refuses (ConfigError ``passphrase_source_required``) unless
``--no-passphrase`` says that keys without a passphrase are wanted: an
unattended script must say so, so a forgotten variable cannot silently
leave keys unencrypted. A verb that opens an existing key asks once, on a
terminal, and only when the key is encrypted.

An empty passphrase is refused from every source (ConfigError
``empty_passphrase``): it is a mistake (an unexpanded secret, Enter pressed
twice), never a wish for no encryption.
"""

from __future__ import annotations

import argparse
import enum
import getpass
import sys
from pathlib import Path
from typing import Final

from ringward.crypto import keyfile
from ringward.crypto.keydir import Secrets
from ringward.crypto.keyfile import KDF_INTERACTIVE, KDF_MODERATE, KDF_SENSITIVE, Passphrase
from ringward.errors import ConfigError, KeyFileError
from ringward.runtime import bundle

__all__ = [
    "ADMIN_PASSPHRASE_ENV",
    "KDF_LEVELS",
    "NODE_PASSPHRASE_ENV",
    "Need",
    "add_secret_args",
    "ask_if_encrypted",
    "interactive",
    "is_encrypted",
    "prompt_existing",
    "prompt_new",
    "read_passphrase",
    "secrets_for",
]

# Names of environment variables, not secrets.
ADMIN_PASSPHRASE_ENV: Final = "RINGWARD_PASSPHRASE"  # noqa: S105
NODE_PASSPHRASE_ENV: Final = "RINGWARD_NODE_PASSPHRASE"  # noqa: S105
KDF_LEVELS: Final = {
    "interactive": KDF_INTERACTIVE,
    "moderate": KDF_MODERATE,
    "sensitive": KDF_SENSITIVE,
}
# A passphrase file larger than this is not a passphrase file (a wrong path).
_PASSPHRASE_FILE_BYTES_MAX: Final = 4096


class Need(enum.Enum):
    """What a verb does with a key, which decides whether to ask for it."""

    NONE = "none"  # the verb does not touch this key
    OPEN = "open"  # opens an existing key: asked once, on a terminal, if encrypted
    NEW = "new"  # writes new keys: asked twice, or --no-passphrase


def interactive() -> bool:
    """Whether a person can be asked: stdin is a terminal (getpass itself
    reads from /dev/tty). A function, so tests can stand in for a terminal."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # stdin closed
        return False


def add_secret_args(
    p: argparse.ArgumentParser, *, admin: bool, node: bool, kdf: bool, new_keys: bool
) -> None:
    """The passphrase options of a verb (``new_keys``: it writes keys, so
    it takes ``--no-passphrase``)."""
    if admin:
        p.add_argument(
            "--passphrase-file",
            metavar="FILE",
            help=f"mode 0600, first line: the admin key passphrase (or set {ADMIN_PASSPHRASE_ENV})",
        )
    if node:
        p.add_argument(
            "--node-passphrase-file",
            metavar="FILE",
            help=f"mode 0600, first line: the node key passphrase (or set {NODE_PASSPHRASE_ENV})",
        )
    if new_keys:
        p.add_argument(
            "--no-passphrase",
            action="store_true",
            help="write keys for which no passphrase is given unencrypted, without asking "
            "(unattended provisioning; without a terminal one of these is required)",
        )
    if kdf:
        p.add_argument(
            "--kdf-cost",
            choices=sorted(KDF_LEVELS),
            default="moderate",
            help="Argon2id cost for keys encrypted by this command (default: moderate, 256 MiB)",
        )


def read_passphrase(file: str | None, env: str) -> Passphrase | None:
    """The passphrase from ``file`` (its first line) or else from the
    environment variable ``env``; None when neither is given
    (:func:`ringward.runtime.bundle.read_passphrase`, which ``Node.from_dir``
    uses too: one rule for both)."""
    return bundle.read_passphrase(file, env)


def _ask(prompt: str) -> str:
    try:
        return getpass.getpass(prompt)
    except EOFError:  # Ctrl-D at the prompt
        raise ConfigError("no_passphrase", "no passphrase given (end of input)") from None


def prompt_new(what: str) -> Passphrase:
    """Ask for a new passphrase twice on the terminal."""
    first = _ask(f"new passphrase for {what}: ")
    if not first:
        raise ConfigError(
            "empty_passphrase",
            "an empty passphrase is not allowed (pass --no-passphrase to write keys unencrypted)",
        )
    if _ask(f"same passphrase again for {what}: ") != first:
        raise ConfigError("passphrase_mismatch", "the two passphrases differ; nothing was written")
    return first


def prompt_existing(path: Path) -> Passphrase:
    """Ask once for the passphrase of the existing key file ``path``."""
    value = _ask(f"passphrase for {path}: ")
    if not value:
        raise ConfigError("empty_passphrase", "an empty passphrase is not allowed")
    return value


def ask_if_encrypted(path: Path, given: Passphrase | None) -> Passphrase | None:
    """``given``, or else, on a terminal, the passphrase of the key file
    ``path`` when it is encrypted (``ringward node`` started by hand)."""
    if given is None and interactive() and is_encrypted(path):
        return prompt_existing(path)
    return given


def is_encrypted(path: Path) -> bool:
    """Whether the key file ``path`` is encrypted (False when it cannot be
    read: opening it later reports why)."""
    try:
        data = keyfile.read_private(path)
        return keyfile.decode_key_file(data, str(path), need_secret=False).encrypted
    except KeyFileError:
        return False


def _resolve(
    given: Passphrase | None,
    need: Need,
    *,
    what: str,
    env: str,
    option: str,
    key_path: Path | None,
    no_passphrase: bool,
) -> Passphrase | None:
    if given is not None or need is Need.NONE:
        return given
    if need is Need.OPEN:
        # Not encrypted, or nobody to ask: opening it says what is missing.
        if key_path is not None and interactive() and is_encrypted(key_path):
            return prompt_existing(key_path)
        return None
    if no_passphrase:
        return None
    if interactive():
        return prompt_new(what)
    raise ConfigError(
        "passphrase_source_required",
        f"no terminal to ask for a passphrase for {what}: set {env}, pass {option} FILE, "
        "or pass --no-passphrase to write unencrypted keys",
    )


def secrets_for(
    args: argparse.Namespace,
    *,
    admin: Need,
    node: Need,
    admin_key: Path | None = None,
) -> Secrets:
    """The passphrases a verb needs. Files and variables are all read
    first, so a bad source is reported before anyone is asked anything;
    ``admin_key`` is the admin key file a verb opens (Need.OPEN)."""
    admin_given = read_passphrase(getattr(args, "passphrase_file", None), ADMIN_PASSPHRASE_ENV)
    node_given = read_passphrase(getattr(args, "node_passphrase_file", None), NODE_PASSPHRASE_ENV)
    no_passphrase = bool(getattr(args, "no_passphrase", False))
    return Secrets(
        admin=_resolve(
            admin_given,
            admin,
            what="the admin key",
            env=ADMIN_PASSPHRASE_ENV,
            option="--passphrase-file",
            key_path=admin_key,
            no_passphrase=no_passphrase,
        ),
        node=_resolve(
            node_given,
            node,
            what="the node keys",
            env=NODE_PASSPHRASE_ENV,
            option="--node-passphrase-file",
            key_path=None,
            no_passphrase=no_passphrase,
        ),
        kdf=KDF_LEVELS[getattr(args, "kdf_cost", "moderate")],
    )
