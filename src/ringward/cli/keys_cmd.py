"""``ringward keys``: provision admin key, node identities and the roster.

A thin layer over :class:`ringward.crypto.KeyDir`: argument parsing,
passphrase sources and printing. Passphrases come from an environment
variable or a file, never from a command-line argument (which any local
user can read in the process list).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from ringward.crypto import keyfile
from ringward.crypto.address import canonical_address
from ringward.crypto.keydir import ADMIN_KEY, NODES_DIR, KeyDir, Secrets
from ringward.crypto.keyfile import KDF_INTERACTIVE, KDF_MODERATE, KDF_SENSITIVE, Passphrase
from ringward.crypto.roster import Roster
from ringward.errors import ConfigError, KeyFileError
from ringward.wire import limits

DEFAULT_DIR: Final = "keys"
# Names of environment variables, not secrets.
ADMIN_PASSPHRASE_ENV: Final = "RINGWARD_PASSPHRASE"  # noqa: S105
NODE_PASSPHRASE_ENV: Final = "RINGWARD_NODE_PASSPHRASE"  # noqa: S105
_KDF_LEVELS: Final = {
    "interactive": KDF_INTERACTIVE,
    "moderate": KDF_MODERATE,
    "sensitive": KDF_SENSITIVE,
}
_PASSPHRASE_FILE_BYTES_MAX: Final = 4096

_KEYS_EPILOG: Final = """\
workflow:
  ringward keys init keys/ --cluster demo --nodes 3     # admin key, 3 nodes, roster v1
  ringward keys verify keys/                            # check everything
  ringward keys export-node keys/ node1 node1-bundle/   # copy only this to node1's machine
  ringward keys add keys/ --name node4 --address 10.0.0.4:7400
  ringward keys revoke keys/ node2                      # then distribute keys/roster.bin

Passphrases: RINGWARD_PASSPHRASE (admin key) and RINGWARD_NODE_PASSPHRASE
(node keys), or --passphrase-file / --node-passphrase-file. See docs/keys.md.
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "keys",
        help="provision admin key, node identities and the signed roster",
        description=(
            "Provision a ringward cluster: an admin key, one identity per node, and\n"
            "the roster the admin key signs. Every change makes a new roster version."
        ),
        epilog=_KEYS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = p.add_subparsers(dest="keys_command", metavar="VERB", required=True)
    for build in (_init, _add, _revoke, _rotate, _show, _verify, _export, _accept):
        build(verbs)


# -- shared options ------------------------------------------------------


def _verb(verbs: Any, name: str, help_text: str, examples: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _dir_arg(p: argparse.ArgumentParser, what: str = "key directory") -> None:
    p.add_argument(
        "dir", metavar="DIR", nargs="?", default=DEFAULT_DIR, help=f"{what} (default: keys/)"
    )


def _secret_args(p: argparse.ArgumentParser, *, admin: bool, node: bool, kdf: bool) -> None:
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
    if kdf:
        p.add_argument(
            "--kdf-cost",
            choices=sorted(_KDF_LEVELS),
            default="moderate",
            help="Argon2id cost for keys encrypted by this command (default: moderate, 256 MiB)",
        )


def _read_passphrase(file: str | None, env: str) -> Passphrase | None:
    """The passphrase from ``file`` (its first line) or else from the
    environment variable ``env``; None when neither is given.

    A passphrase file is held to the rule of private key files: a regular
    file that neither group nor others can access (KeyFileError
    ``permissions_too_open`` otherwise), of at most 4096 bytes. An empty
    passphrase, from either source, is refused (ConfigError
    ``empty_passphrase``) rather than taken as "no passphrase": a variable
    that is set but empty is a mistake (an unexpanded secret, a typo), and
    silently writing keys unencrypted would hide it. Unset the variable to
    write keys unencrypted.
    """
    if file is not None:
        path = Path(file)
        keyfile.check_private_mode(path)
        data = keyfile.read_bounded(path, _PASSPHRASE_FILE_BYTES_MAX)
        line = data.split(b"\n", 1)[0].removesuffix(b"\r")
        if not line:
            raise ConfigError("empty_passphrase", f"{file}: the first line is empty")
        return line
    value = os.environ.get(env)
    if value is None:
        return None
    if not value:
        raise ConfigError(
            "empty_passphrase",
            f"{env} is set but empty; give a passphrase, or unset {env} to write keys unencrypted",
        )
    return value


def _secrets(args: argparse.Namespace) -> Secrets:
    return Secrets(
        admin=_read_passphrase(getattr(args, "passphrase_file", None), ADMIN_PASSPHRASE_ENV),
        node=_read_passphrase(getattr(args, "node_passphrase_file", None), NODE_PASSPHRASE_ENV),
        kdf=_KDF_LEVELS[getattr(args, "kdf_cost", "moderate")],
    )


def _os_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn an unexpected OSError into a one-line KeyFileError: a file
    system problem is the operator's to fix, not a traceback."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except OSError as exc:
            where = exc.filename or args.dir
            raise KeyFileError("io_error", f"{where}: {exc.strerror or exc}") from None

    return wrapper


# -- verbs ---------------------------------------------------------------


def _init(verbs: Any) -> None:
    p = _verb(
        verbs,
        "init",
        "create an admin key, node identities and a signed roster",
        "  ringward keys init --cluster demo --nodes 5            # keys/, 127.0.0.1:7400-7404\n"
        "  ringward keys init prod/ --cluster prod \\\n"
        "      --address 10.0.0.1:7400 --address [fd00::2]:7400 --address db3.example:7400\n"
        "  RINGWARD_PASSPHRASE=... ringward keys init --cluster demo --nodes 3  # encrypted",
    )
    _dir_arg(p, "directory to create or fill")
    p.add_argument("--cluster", required=True, metavar="NAME", help="cluster name")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--nodes", type=int, metavar="N", help="N nodes on one host")
    how.add_argument(
        "--address",
        action="append",
        metavar="HOST:PORT",
        help="one node per address (repeat; IPv6 as [::1]:7400)",
    )
    p.add_argument("--host", default="127.0.0.1", help="host for --nodes (default 127.0.0.1)")
    p.add_argument(
        "--base-port",
        type=int,
        default=7400,
        metavar="PORT",
        help="first port for --nodes (default 7400)",
    )
    _secret_args(p, admin=True, node=True, kdf=True)
    p.set_defaults(func=run_init)


def _node_addresses(args: argparse.Namespace) -> list[tuple[str, str]]:
    if args.address:
        addresses = [canonical_address(a) for a in args.address]
    else:
        if not 1 <= args.nodes <= limits.NODES_MAX:
            raise ConfigError("bad_count", f"--nodes must be 1..{limits.NODES_MAX}")
        host = args.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        addresses = [canonical_address(f"{host}:{args.base_port + i}") for i in range(args.nodes)]
    return [(f"node{i}", a) for i, a in enumerate(addresses, 1)]


@_os_errors
def run_init(args: argparse.Namespace) -> int:
    secrets = _secrets(args)
    kd = KeyDir(args.dir)
    roster = kd.init(args.cluster, _node_addresses(args), secrets)
    admin_note = "encrypted" if secrets.admin else f"NOT encrypted (set {ADMIN_PASSPHRASE_ENV})"
    print(f"created cluster {roster.cluster!r} in {kd.path}/ (roster version {roster.version})")
    print(f"  admin key   {kd.file(ADMIN_KEY)}  {admin_note}; keep it offline")
    print(f"  node keys   {kd.path / NODES_DIR}/  {len(roster.nodes)} identities")
    _print_table(roster)
    print(f"next: ringward keys verify {kd.path}")
    print(f"      ringward keys export-node {kd.path} {roster.nodes[0].name} OUT_DIR")
    return 0


def _add(verbs: Any) -> None:
    p = _verb(
        verbs,
        "add",
        "add a node with a fresh identity (new roster version)",
        "  ringward keys add keys/ --name node6 --address 10.0.0.6:7400",
    )
    _dir_arg(p)
    p.add_argument("--name", required=True, help="node name (letters, digits, - and _)")
    p.add_argument("--address", required=True, metavar="HOST:PORT", help="node address")
    _secret_args(p, admin=True, node=True, kdf=True)
    p.set_defaults(func=run_add)


@_os_errors
def run_add(args: argparse.Namespace) -> int:
    roster = KeyDir(args.dir).add(args.name, canonical_address(args.address), _secrets(args))
    entry = roster.node_by_name(args.name)
    print(f"added {entry.name} (id {entry.id}, {entry.address}); roster version {roster.version}")
    print(f"next: export it (ringward keys export-node {args.dir} {entry.name} OUT_DIR)")
    print("      and distribute the new roster.bin to every other node")
    return 0


def _revoke(verbs: Any) -> None:
    p = _verb(
        verbs,
        "revoke",
        "remove a node from the roster and delete its key (new roster version)",
        "  ringward keys revoke keys/ node2",
    )
    _dir_arg(p)
    p.add_argument("name", metavar="NAME", help="node to revoke")
    _secret_args(p, admin=True, node=False, kdf=False)
    p.set_defaults(func=run_revoke)


@_os_errors
def run_revoke(args: argparse.Namespace) -> int:
    roster = KeyDir(args.dir).revoke(args.name, _secrets(args))
    print(f"revoked {args.name}; roster version {roster.version}")
    print("next: distribute the new roster.bin to every remaining node")
    return 0


def _rotate(verbs: Any) -> None:
    p = _verb(
        verbs,
        "rotate",
        "give a node a fresh identity, same id and address (new roster version)",
        "  ringward keys rotate keys/ node3",
    )
    _dir_arg(p)
    p.add_argument("name", metavar="NAME", help="node whose keys to replace")
    _secret_args(p, admin=True, node=True, kdf=True)
    p.set_defaults(func=run_rotate)


@_os_errors
def run_rotate(args: argparse.Namespace) -> int:
    roster = KeyDir(args.dir).rotate(args.name, _secrets(args))
    print(f"rotated {args.name}; roster version {roster.version}")
    print(f"next: export it again (ringward keys export-node {args.dir} {args.name} OUT_DIR)")
    print("      and distribute the new roster.bin to every other node")
    return 0


def _show(verbs: Any) -> None:
    p = _verb(
        verbs,
        "show",
        "print the roster",
        "  ringward keys show keys/\n  ringward keys show node1-bundle/ --json | jq .nodes",
    )
    _dir_arg(p, "key directory or node bundle")
    p.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    p.set_defaults(func=run_show)


@_os_errors
def run_show(args: argparse.Namespace) -> int:
    roster = KeyDir(args.dir).load_roster()
    if args.json:
        nodes = [
            {
                "id": n.id,
                "name": n.name,
                "address": n.address,
                "signing_key": n.signing_key.hex(),
                "encryption_key": n.encryption_key.hex(),
            }
            for n in roster.nodes
        ]
        print(json.dumps({"cluster": roster.cluster, "version": roster.version, "nodes": nodes}))
    else:
        _print_table(roster)
    return 0


def _print_table(roster: Roster) -> None:
    print(
        f"cluster {roster.cluster}  version {roster.version}  "
        f"cluster id {roster.cluster_id.hex()}  admin key {roster.admin_key.hex()[:16]}"
    )
    width = max(len("address"), *(len(n.address) for n in roster.nodes))
    names = max(len("name"), *(len(n.name) for n in roster.nodes))
    print(f"{'id':>5}  {'name':<{names}}  {'address':<{width}}  signing key       encryption key")
    for n in roster.nodes:
        print(
            f"{n.id:>5}  {n.name:<{names}}  {n.address:<{width}}  "
            f"{n.signing_key.hex()[:16]}  {n.encryption_key.hex()[:16]}"
        )


def _verify(verbs: Any) -> None:
    p = _verb(
        verbs,
        "verify",
        "check that the roster and every key file are consistent and correctly signed",
        "  ringward keys verify keys/\n"
        "  RINGWARD_PASSPHRASE=... ringward keys verify keys/   # also opens encrypted keys",
    )
    _dir_arg(p, "key directory or node bundle")
    _secret_args(p, admin=True, node=True, kdf=False)
    p.set_defaults(func=run_verify)


@_os_errors
def run_verify(args: argparse.Namespace) -> int:
    roster, problems = KeyDir(args.dir).verify(_secrets(args))
    for problem in problems:
        print(f"ringward keys verify: {problem}", file=sys.stderr)
    if problems or roster is None:
        return 1
    print(
        f"ok: cluster {roster.cluster}, roster version {roster.version}, "
        f"{len(roster.nodes)} nodes; signature and key files consistent"
    )
    return 0


def _export(verbs: Any) -> None:
    p = _verb(
        verbs,
        "export-node",
        "write the bundle one node needs: its identity, the roster, the admin public key",
        "  ringward keys export-node keys/ node1 node1-bundle/\n"
        "  scp -r node1-bundle/ node1.example:/etc/ringward/",
    )
    _dir_arg(p)
    p.add_argument("name", metavar="NAME", help="node to export")
    p.add_argument("out", metavar="OUT", help="new (or empty) directory for the bundle")
    p.set_defaults(func=run_export)


@_os_errors
def run_export(args: argparse.Namespace) -> int:
    out = KeyDir(args.dir).export_node(args.name, args.out)
    print(f"wrote the bundle of {args.name} to {out}/ (identity.key, admin.pub, roster.bin)")
    print("copy only this directory to the node's machine, then delete the local copy")
    return 0


def _accept(verbs: Any) -> None:
    p = _verb(
        verbs,
        "accept",
        "install a newer signed roster into a node bundle (older versions are refused)",
        "  ringward keys accept /etc/ringward/ /tmp/roster.bin",
    )
    _dir_arg(p, "node bundle")
    p.add_argument("roster", metavar="ROSTER", help="the new roster.bin from the admin")
    p.set_defaults(func=run_accept)


@_os_errors
def run_accept(args: argparse.Namespace) -> int:
    kd = KeyDir(args.dir)
    roster = kd.accept(args.roster)
    print(f"accepted roster version {roster.version} of cluster {roster.cluster}")
    _, problems = kd.verify()
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    return 0
