"""Private Dovecot and Postfix instances on free loopback ports for the end-to-end tests."""

from .dovecot import Dovecot, default_addresses
from .postfix import Postfix
from .process import ServerStartError, binary, log_tail, system_user

__all__ = [
    "Dovecot",
    "Postfix",
    "ServerStartError",
    "binary",
    "default_addresses",
    "log_tail",
    "system_user",
]
