"""``ringward keys``: provision admin key, node identities and the roster.

A thin layer over :class:`ringward.crypto.KeyDir`: argument parsing,
printing, and the cluster directory of ``keys init`` (``keys_layout``:
``admin/`` apart from one bundle per node). Passphrases come from a file,
an environment variable or the terminal (``keys_secrets``), never from a
command-line argument. The verbs ``params``, ``passwd`` and
``fingerprint`` live in ``keys_more``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from ringward.cli import keys_layout, keys_more, keys_secrets
from ringward.cli.keys_secrets import (
    ADMIN_PASSPHRASE_ENV,
    NODE_PASSPHRASE_ENV,
    Need,
    add_secret_args,
    read_passphrase,
    secrets_for,
)
from ringward.crypto.address import canonical_address
from ringward.crypto.identity import AdminKey, Identity
from ringward.crypto.keydir import (
    ADMIN_KEY,
    IDENTITY_KEY,
    NODES_DIR,
    ROSTER_FILE,
    KeyDir,
    Secrets,
)
from ringward.crypto.roster import Roster, RosterManifest
from ringward.errors import ConfigError, KeyFileError
from ringward.wire import limits

__all__ = ["ADMIN_PASSPHRASE_ENV", "DEFAULT_DIR", "NODE_PASSPHRASE_ENV", "register"]

# Kept for callers of the old names (ringward node).
_read_passphrase = read_passphrase

DEFAULT_DIR: Final = "keys"

_KEYS_EPILOG: Final = """\
workflow:
  ringward keys init keys/ --cluster demo --nodes 3     # keys/admin/ + keys/node1..3/ bundles
  ringward keys verify keys/                            # check everything
  ringward node --keys keys/node1/                      # a node runs from its bundle
  ringward keys add keys/ --name node4 --address 10.0.0.4:7400
  ringward keys revoke keys/ node2                      # then distribute keys/admin/roster.bin
  ringward keys params keys/ --token-timeout-ms 2000    # cluster-wide protocol parameters

Passphrases: asked on a terminal; else RINGWARD_PASSPHRASE (admin key) and
RINGWARD_NODE_PASSPHRASE (node keys), or --passphrase-file /
--node-passphrase-file; --no-passphrase writes keys unencrypted. See docs/keys.md.
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
    keys_more.register(verbs, verb=_verb, dir_arg=_dir_arg, os_errors=_os_errors)


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


def _dir_arg(p: argparse.ArgumentParser, what: str = "cluster or admin directory") -> None:
    p.add_argument(
        "dir", metavar="DIR", nargs="?", default=DEFAULT_DIR, help=f"{what} (default: keys/)"
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


def _admin_secrets(args: argparse.Namespace, kd: KeyDir, *, node: Need) -> Secrets:
    """The secrets of a verb that signs with the admin key of ``kd``. A
    missing or exposed admin key file is reported before anyone is asked
    for a passphrase."""
    AdminKey.load_public(kd.file(ADMIN_KEY))
    return secrets_for(args, admin=Need.OPEN, node=node, admin_key=kd.file(ADMIN_KEY))


def _sync(args: argparse.Namespace, roster: Roster, new_nodes: tuple[str, ...] = ()) -> None:
    """In a cluster directory, bring its bundles up to date and say so."""
    if keys_layout.is_cluster_dir(args.dir):
        for line in keys_layout.sync_bundles(args.dir, roster, new_nodes):
            print(f"  {line}")


def _distribute_hint(kd: KeyDir) -> None:
    print(f"next: copy {kd.file('roster.bin')} to every node elsewhere and run")
    print("      `ringward keys accept BUNDLE roster.bin` there")


# -- verbs ---------------------------------------------------------------


def _init(verbs: Any) -> None:
    p = _verb(
        verbs,
        "init",
        "create an admin key, node identities, a signed roster and one bundle per node",
        "  ringward keys init --cluster demo --nodes 5            # keys/, 127.0.0.1:7400-7404\n"
        "  ringward keys init prod/ --cluster prod \\\n"
        "      --address 10.0.0.1:7400 --address [fd00::2]:7400 --address db3.example:7400\n"
        "  ringward keys init --cluster demo --nodes 3 --no-passphrase --token-timeout-ms 500",
    )
    _dir_arg(p, "cluster directory to create or fill")
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
    add_secret_args(p, admin=True, node=True, kdf=True, new_keys=True)
    keys_more.add_param_args(p)
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
    cluster = Path(args.dir)
    nodes = _node_addresses(args)
    params = keys_more.params_from_args(args, None)
    for name in (keys_layout.ADMIN_SUBDIR, *(n for n, _ in nodes)):
        there = cluster / name
        if there.exists() and (not there.is_dir() or any(there.iterdir())):
            raise KeyFileError("exists", f"{there} exists and is not empty; init a new directory")
    held = (ADMIN_KEY, ROSTER_FILE, IDENTITY_KEY, NODES_DIR)
    if keys_layout.is_cluster_dir(cluster) or any((cluster / f).exists() for f in held):
        raise KeyFileError("exists", f"{cluster} already holds keys (an admin directory or bundle)")
    # Names, addresses and parameters are checked (with throw-away keys)
    # before anyone is asked for a passphrase.
    RosterManifest.initial(
        args.cluster,
        AdminKey.generate().public_key,
        [(n, a, Identity.generate().public) for n, a in nodes],
        params,
    )
    secrets = secrets_for(args, admin=Need.NEW, node=Need.NEW)
    kd = KeyDir(cluster / keys_layout.ADMIN_SUBDIR)
    roster = kd.init(args.cluster, nodes, secrets, params)
    keys_layout.sync_bundles(cluster, roster, [n for n, _ in nodes])
    admin_note = "encrypted" if secrets.admin else "NOT encrypted"
    node_note = "encrypted" if secrets.node else "NOT encrypted"
    print(f"created cluster {roster.cluster!r} in {cluster}/ (roster version {roster.version})")
    print(f"  admin       {kd.path}/  admin key {admin_note}; keep this directory offline")
    print(
        f"  bundles     {cluster}/NAME/  node keys {node_note}; one per node, run nodes from them"
    )
    _print_table(roster)
    first = roster.nodes[0].name
    print(f"next: ringward keys verify {cluster}")
    print(f"      ringward node --keys {cluster / first}   (or copy {cluster / first}/ to {first})")
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
    add_secret_args(p, admin=True, node=True, kdf=True, new_keys=True)
    p.set_defaults(func=run_add)


@_os_errors
def run_add(args: argparse.Namespace) -> int:
    kd = keys_layout.admin_dir(args.dir)
    if keys_layout.is_cluster_dir(args.dir):
        keys_layout.check_bundle_name(args.name)
    address = canonical_address(args.address)
    # A bad name or address is reported before anyone is asked anything.
    kd.load_roster().manifest.with_node(args.name, address, Identity.generate().public)
    roster = kd.add(args.name, address, _admin_secrets(args, kd, node=Need.NEW))
    entry = roster.node_by_name(args.name)
    print(f"added {entry.name} (id {entry.id}, {entry.address}); roster version {roster.version}")
    _sync(args, roster, (entry.name,))
    if not keys_layout.is_cluster_dir(args.dir):
        print(f"next: export it (ringward keys export-node {args.dir} {entry.name} OUT_DIR)")
    _distribute_hint(kd)
    return 0


def _revoke(verbs: Any) -> None:
    p = _verb(
        verbs,
        "revoke",
        "remove a node from the roster and delete its key (new roster version)",
        "  ringward keys revoke keys/ node2\n  ringward keys revoke keys/ node2 --yes    # scripts",
    )
    _dir_arg(p)
    p.add_argument("name", metavar="NAME", help="node to revoke")
    p.add_argument(
        "--yes", action="store_true", help="do not ask for confirmation (needed without a terminal)"
    )
    add_secret_args(p, admin=True, node=False, kdf=False, new_keys=False)
    p.set_defaults(func=run_revoke)


def _confirm_revoke(args: argparse.Namespace, roster: Roster) -> bool:
    entry = roster.node_by_name(args.name)  # an unknown name fails before asking
    if args.yes:
        return True
    if not keys_secrets.interactive():
        raise ConfigError(
            "confirmation_required",
            f"revoking {args.name} deletes its key and cannot be undone; "
            "no terminal to ask: pass --yes",
        )
    try:
        answer = input(
            f"revoke {entry.name} (id {entry.id}, {entry.address})? Its key is deleted and "
            f"roster version {roster.version + 1} leaves it out. [y/N] "
        )
    except EOFError:  # Ctrl-D: no answer is no
        print()
        return False
    return answer.strip().lower() in {"y", "yes"}


@_os_errors
def run_revoke(args: argparse.Namespace) -> int:
    kd = keys_layout.admin_dir(args.dir)
    if not _confirm_revoke(args, kd.load_roster()):
        print("not revoked")
        return 1
    roster = kd.revoke(args.name, _admin_secrets(args, kd, node=Need.NONE))
    print(f"revoked {args.name}; roster version {roster.version}")
    _sync(args, roster)
    _distribute_hint(kd)
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
    add_secret_args(p, admin=True, node=True, kdf=True, new_keys=True)
    p.set_defaults(func=run_rotate)


@_os_errors
def run_rotate(args: argparse.Namespace) -> int:
    kd = keys_layout.admin_dir(args.dir)
    kd.load_roster().node_by_name(args.name)  # an unknown name fails before asking
    roster = kd.rotate(args.name, _admin_secrets(args, kd, node=Need.NEW))
    print(f"rotated {args.name}; roster version {roster.version}")
    _sync(args, roster)
    if not keys_layout.is_cluster_dir(args.dir):
        print(f"next: export it again (ringward keys export-node {args.dir} {args.name} OUT_DIR)")
    _distribute_hint(kd)
    return 0


def _show(verbs: Any) -> None:
    p = _verb(
        verbs,
        "show",
        "print the roster and the cluster's protocol parameters",
        "  ringward keys show keys/\n  ringward keys show keys/node1/ --json | jq .params",
    )
    _dir_arg(p, "cluster or admin directory, or a node bundle")
    p.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    p.set_defaults(func=run_show)


@_os_errors
def run_show(args: argparse.Namespace) -> int:
    roster = keys_layout.admin_dir(args.dir).load_roster()
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
        print(
            json.dumps(
                {
                    "cluster": roster.cluster,
                    "version": roster.version,
                    "params": keys_more.params_dict(roster.params),
                    "nodes": nodes,
                }
            )
        )
    else:
        _print_table(roster)
        keys_more.print_params(roster.params)
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
        "  ringward keys verify keys/            # admin/ and every bundle next to it\n"
        "  RINGWARD_PASSPHRASE=... ringward keys verify keys/   # also opens encrypted keys",
    )
    _dir_arg(p, "cluster or admin directory, or a node bundle")
    add_secret_args(p, admin=True, node=True, kdf=False, new_keys=False)
    p.set_defaults(func=run_verify)


@_os_errors
def run_verify(args: argparse.Namespace) -> int:
    secrets = secrets_for(args, admin=Need.NONE, node=Need.NONE)
    dirs = [keys_layout.admin_dir(args.dir)]
    if keys_layout.is_cluster_dir(args.dir):
        dirs += [KeyDir(b) for b in keys_layout.bundle_dirs(args.dir)]
    problems: list[str] = []
    roster: Roster | None = None
    for kd in dirs:
        found, more = kd.verify(secrets)
        roster = roster or found
        problems += more
        if found is not None and roster is not None and found.digest != roster.digest:
            problems.append(
                f"{kd.path}: holds roster version {found.version}, not the admin's "
                f"{roster.version} (run `ringward keys accept`) [stale_roster]"
            )
    for problem in problems:
        print(f"ringward keys verify: {problem}", file=sys.stderr)
    if problems or roster is None:
        return 1
    bundles = f", {len(dirs) - 1} bundles" if len(dirs) > 1 else ""
    print(
        f"ok: cluster {roster.cluster}, roster version {roster.version}, "
        f"{len(roster.nodes)} nodes{bundles}; signature and key files consistent"
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
    out = keys_layout.admin_dir(args.dir).export_node(args.name, args.out)
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
