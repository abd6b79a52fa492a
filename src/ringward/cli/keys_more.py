"""``ringward keys params``, ``passwd`` and ``fingerprint``.

``params`` changes the protocol parameters every node must agree on; they
live in the signed roster, so a change is a new roster version signed by
the admin key (``keys init`` takes the same options). ``passwd`` adds,
changes or removes the passphrase of one private key file, like
``ssh-keygen -p``. ``fingerprint`` prints the SHA-256 fingerprints of the
admin key and the node keys, to compare out of band.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ringward.cli import keys_layout, keys_secrets
from ringward.cli.keys_secrets import (
    ADMIN_PASSPHRASE_ENV,
    KDF_LEVELS,
    NODE_PASSPHRASE_ENV,
    Need,
    add_secret_args,
    ask_if_encrypted,
    prompt_new,
    read_passphrase,
    secrets_for,
)
from ringward.crypto import keyfile
from ringward.crypto.keydir import (
    ADMIN_KEY,
    ADMIN_PUB,
    IDENTITY_KEY,
    KeyDir,
    change_passphrase,
    read_admin_pub,
)
from ringward.crypto.keyfile import KeyKind, Passphrase
from ringward.crypto.roster import PARAM_BOUNDS, ProtocolParams, Roster
from ringward.errors import ConfigError, KeyFileError

__all__ = ["add_param_args", "params_dict", "params_from_args", "print_params", "register"]

_Verb = Callable[[Any, str, str, str], argparse.ArgumentParser]
_Wrap = Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]
_FIELDS = tuple(f.name for f in dataclasses.fields(ProtocolParams))
_DEFAULTS = ProtocolParams()


def register(
    verbs: Any,
    *,
    verb: _Verb,
    dir_arg: Callable[..., None],
    os_errors: _Wrap,
) -> None:
    """Add the three verbs (``keys_cmd`` passes its shared helpers)."""
    p = verb(
        verbs,
        "params",
        "print or change the cluster's protocol parameters (new roster version)",
        "  ringward keys params keys/                                  # print them\n"
        "  ringward keys params keys/ --token-timeout-ms 3000 --consensus-timeout-ms 3600\n"
        "  ringward keys params keys/ --payload-bytes-max 1048576      # 1 MiB messages",
    )
    dir_arg(p)
    add_param_args(p)
    add_secret_args(p, admin=True, node=False, kdf=False, new_keys=False)
    p.set_defaults(func=os_errors(run_params))

    p = verb(
        verbs,
        "passwd",
        "add, change or remove the passphrase of a private key file",
        "  ringward keys passwd keys/admin/admin.key          # asks for the old and new one\n"
        "  ringward keys passwd keys/node1/                   # a bundle: its identity.key\n"
        "  ringward keys passwd keys/node1/ --no-passphrase   # remove it (unattended start)",
    )
    p.add_argument(
        "path",
        metavar="PATH",
        help="a key file, a node bundle (its identity.key), or a cluster or admin "
        "directory (its admin key)",
    )
    p.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help=f"mode 0600, first line: the current passphrase (or set {ADMIN_PASSPHRASE_ENV} "
        f"for an admin key, {NODE_PASSPHRASE_ENV} for a node key)",
    )
    p.add_argument(
        "--new-passphrase-file", metavar="FILE", help="mode 0600, first line: the new passphrase"
    )
    p.add_argument(
        "--no-passphrase", action="store_true", help="remove the passphrase (store the key plain)"
    )
    p.add_argument(
        "--kdf-cost",
        choices=sorted(KDF_LEVELS),
        default="moderate",
        help="Argon2id cost of the new passphrase (default: moderate, 256 MiB)",
    )
    p.set_defaults(func=os_errors(run_passwd), dir=".")

    p = verb(
        verbs,
        "fingerprint",
        "print the SHA-256 fingerprints of the admin key and the node keys",
        "  ringward keys fingerprint keys/            # admin and every node of the roster\n"
        "  ringward keys fingerprint /etc/ringward/   # on a node: compare with the admin's\n"
        "  ringward keys fingerprint keys/admin/admin.pub",
    )
    p.add_argument(
        "dir",
        metavar="PATH",
        nargs="?",
        default="keys",
        help="a cluster or admin directory, a bundle, a key file or admin.pub (default: keys/)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    p.set_defaults(func=os_errors(run_fingerprint))


# -- params ----------------------------------------------------------------


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_param_args(p: argparse.ArgumentParser) -> None:
    """One option per protocol parameter (``--token-timeout-ms`` ...)."""
    group = p.add_argument_group(
        "protocol parameters (signed into the roster, the same on every node)"
    )
    for name in _FIELDS:
        low, high = PARAM_BOUNDS[name]
        group.add_argument(
            _option(name),
            dest=name,
            type=int,
            metavar="N",
            help=f"{low}..{high} (default {getattr(_DEFAULTS, name)})",
        )


def params_from_args(
    args: argparse.Namespace, base: ProtocolParams | None
) -> ProtocolParams | None:
    """``base`` (or the defaults) with the parameters given on the command
    line; None when none is given and there is no base. Out-of-range
    values raise RosterError ``bad_params``."""
    given = {n: getattr(args, n) for n in _FIELDS if getattr(args, n, None) is not None}
    if not given:
        return base
    return dataclasses.replace(base or ProtocolParams(), **given)


def params_dict(params: ProtocolParams) -> dict[str, int]:
    """The parameters as a JSON-ready mapping, in roster order."""
    return {name: getattr(params, name) for name in _FIELDS}


def print_params(params: ProtocolParams) -> None:
    """The parameters, one per line, marking those that differ from the defaults."""
    print("protocol parameters:")
    for name in _FIELDS:
        value = getattr(params, name)
        note = (
            ""
            if value == getattr(_DEFAULTS, name)
            else "  (default " + str(getattr(_DEFAULTS, name)) + ")"
        )
        print(f"  {name:<30} {value}{note}")


def run_params(args: argparse.Namespace) -> int:
    kd = keys_layout.admin_dir(args.dir)
    roster = kd.load_roster()
    params = params_from_args(args, roster.params)
    assert params is not None  # the base is given
    if params == roster.params:
        if any(getattr(args, n) is not None for n in _FIELDS):
            raise ConfigError("unchanged", "the roster already has these parameters")
        print(f"cluster {roster.cluster}  roster version {roster.version}")
        print_params(roster.params)
        return 0
    if kd.is_bundle:
        raise ConfigError(
            "not_admin", f"{kd.path} is a node bundle: change parameters as the admin"
        )
    secrets = secrets_for(args, admin=Need.OPEN, node=Need.NONE, admin_key=kd.file(ADMIN_KEY))
    new = kd.set_params(params, secrets)
    for name in _FIELDS:
        old, value = getattr(roster.params, name), getattr(new.params, name)
        if old != value:
            print(f"  {name}: {old} -> {value}")
    print(f"signed roster version {new.version} of cluster {new.cluster}")
    if keys_layout.is_cluster_dir(args.dir):
        for line in keys_layout.sync_bundles(args.dir, new):
            print(f"  {line}")
    print(f"next: accept {kd.file('roster.bin')} on every node, promptly: a node runs with")
    print('      the parameters of the roster it uses (docs/keys.md, "Protocol parameters")')
    return 0


# -- passwd ----------------------------------------------------------------


def _key_file(path: Path) -> Path:
    if not path.is_dir():
        return path
    kd = keys_layout.admin_dir(path)
    if kd.is_bundle:
        return kd.file(IDENTITY_KEY)
    if kd.file(ADMIN_KEY).exists():
        return kd.file(ADMIN_KEY)
    raise KeyFileError(
        "not_a_key_dir", f"{path}: no admin.key or identity.key here; name the key file"
    )


def _old_passphrase(args: argparse.Namespace, path: Path, kind: KeyKind) -> Passphrase | None:
    env = ADMIN_PASSPHRASE_ENV if kind is KeyKind.ADMIN else NODE_PASSPHRASE_ENV
    return ask_if_encrypted(path, read_passphrase(args.passphrase_file, env))


def _new_passphrase(args: argparse.Namespace, path: Path) -> Passphrase | None:
    if args.no_passphrase:
        if args.new_passphrase_file is not None:
            raise ConfigError(
                "conflicting_options",
                "--no-passphrase and --new-passphrase-file exclude each other",
            )
        return None
    if args.new_passphrase_file is not None:
        return read_passphrase(args.new_passphrase_file, "")
    if keys_secrets.interactive():
        return prompt_new(str(path))
    raise ConfigError(
        "passphrase_source_required",
        "no terminal to ask for the new passphrase: pass --new-passphrase-file FILE, "
        "or --no-passphrase to remove it",
    )


def run_passwd(args: argparse.Namespace) -> int:
    path = _key_file(Path(args.path))
    if path.is_symlink():
        # The new file would replace the link, and the key it points to
        # would keep its old passphrase (or none).
        raise KeyFileError(
            "symlink",
            f"{path} is a symbolic link: pass the key file itself ({path.resolve()})",
        )
    head = keyfile.decode_key_file(keyfile.read_private(path), str(path), need_secret=False)
    old = _old_passphrase(args, path, head.kind)
    new = _new_passphrase(args, path)
    change_passphrase(path, old, new, KDF_LEVELS[args.kdf_cost])
    what = "admin key" if head.kind is KeyKind.ADMIN else "node key"
    if new is None:
        print(f"{path}: passphrase removed; the {what} is stored unencrypted (mode 0600)")
    else:
        done = "changed" if head.encrypted else "added"
        print(f"{path}: passphrase {done} ({what}, Argon2id {args.kdf_cost})")
    return 0


# -- fingerprint -----------------------------------------------------------


def _file_fingerprint(path: Path) -> dict[str, str]:
    if path.name == ADMIN_PUB:
        return {"name": "admin", "fingerprint": keyfile.fingerprint(read_admin_pub(path))}
    head = keyfile.decode_key_file(keyfile.read_private(path), str(path), need_secret=False)
    name = "admin" if head.kind is KeyKind.ADMIN else path.stem
    return {"name": name, "fingerprint": keyfile.fingerprint(head.public)}


def _roster_fingerprints(kd: KeyDir, roster: Roster) -> list[dict[str, str]]:
    mine: bytes | None = None
    if kd.is_bundle:
        mine = keyfile.decode_key_file(
            keyfile.read_private(kd.file(IDENTITY_KEY)),
            str(kd.file(IDENTITY_KEY)),
            need_secret=False,
        ).public
    rows = [{"name": "admin", "fingerprint": keyfile.fingerprint(roster.admin_key)}]
    for n in roster.nodes:
        public = n.signing_key + n.encryption_key
        row = {
            "name": n.name,
            "fingerprint": keyfile.fingerprint(public),
            "id": str(n.id),
            "address": n.address,
        }
        if public == mine:
            row["this_bundle"] = "yes"
        rows.append(row)
    return rows


def run_fingerprint(args: argparse.Namespace) -> int:
    path = Path(args.dir)
    if path.is_dir():
        kd = keys_layout.admin_dir(path)
        rows = _roster_fingerprints(kd, kd.load_roster())
    else:
        rows = [_file_fingerprint(path)]
    if args.json:
        print(json.dumps(rows))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        extra = f"  id {r['id']}  {r['address']}" if "id" in r else ""
        mark = "  (this bundle)" if "this_bundle" in r else ""
        print(f"{r['name']:<{width}}  {r['fingerprint']}{extra}{mark}")
    return 0
