"""ringward: Byzantine-tolerant, secure group messaging over a Totem ring."""

from ringward.errors import (
    ConfigError,
    CryptoError,
    KeyFileError,
    RingwardError,
    RosterError,
    StateError,
    WireError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "CryptoError",
    "KeyFileError",
    "RingwardError",
    "RosterError",
    "StateError",
    "WireError",
    "__version__",
]
