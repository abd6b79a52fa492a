"""Node addresses (``host:port``) and their one canonical spelling.

The roster stores every address in canonical form so that two spellings of
one address (``[0:0::1]:7400`` and ``[::1]:7400``, ``Node1.example:7400`` and
``node1.example:7400``) cannot both appear and defeat the duplicate check:

* IPv4: dotted quad as :mod:`ipaddress` prints it (leading zeros refused).
* IPv6: in brackets, compressed lower-case form: ``[fd00::1]:7400``. Zone
  ids (``%eth0``) are refused: they name an interface of one machine and mean
  nothing to the others.
* Host names: ASCII letters, digits and hyphens in dot-separated labels
  (RFC 1123), lower-cased, at most 253 characters, last label not numeric
  (so a mistyped IPv4 address is not taken for a name).
* Port: decimal 1..65535 without leading zeros.

Two different canonical strings may still reach one machine (a name and its
IP address); the duplicate check cannot see that, and says so in docs/keys.md.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from ringward.errors import ConfigError

__all__ = ["ADDRESS_CHARS_MAX", "canonical_address", "split_address"]

# 253 characters of host name, or 39 of IPv6 plus brackets, and ":65535".
ADDRESS_CHARS_MAX: Final = 253 + 6

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PORT = re.compile(r"[1-9][0-9]{0,4}")


def _bad(text: str, why: str) -> ConfigError:
    return ConfigError("bad_address", f"address {text!r}: {why}")


def _port(text: str, port: str) -> int:
    if _PORT.fullmatch(port) is None or not 1 <= int(port) <= 65535:
        raise _bad(text, "port must be a number 1..65535")
    return int(port)


def _host(text: str, host: str) -> str:
    if not host:
        raise _bad(text, "missing host")
    if ":" in host:
        raise _bad(text, "write an IPv6 address in brackets, e.g. [::1]:7400")
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    name = host.lower()
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _bad(text, "not an IPv4 address or a valid host name")
    if labels[-1].isdigit():
        raise _bad(text, "not a valid IPv4 address")
    return name


def split_address(text: str) -> tuple[str, int]:
    """Parse ``host:port`` into (canonical host, port); the host of an IPv6
    address comes back without brackets. ConfigError ``bad_address``."""
    if not isinstance(text, str) or not text.isascii() or len(text) > ADDRESS_CHARS_MAX:
        raise _bad(str(text)[:80], "not a short ASCII host:port")
    if text.startswith("["):
        inner, sep, port = text[1:].partition("]:")
        if not sep:
            raise _bad(text, "expected [IPv6]:port")
        if "%" in inner:
            raise _bad(text, "IPv6 zone ids are not allowed")
        try:
            host = ipaddress.IPv6Address(inner).compressed
        except ValueError:
            raise _bad(text, "not a valid IPv6 address") from None
        return host, _port(text, port)
    host, sep, port = text.rpartition(":")
    if not sep:
        raise _bad(text, "expected host:port")
    return _host(text, host), _port(text, port)


def canonical_address(text: str) -> str:
    """The canonical ``host:port`` spelling of ``text`` (see module doc)."""
    host, port = split_address(text)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
