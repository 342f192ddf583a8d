"""Whether an address is this machine's: the dev stack, its emulators and the tests talk to
nothing else, and refuse plain HTTP to anything else.

>>> is_loopback_host("127.0.0.1"), is_loopback_host("::1%lo"), is_loopback_host("LocalHost")
(True, True, True)
>>> is_loopback_host("10.0.0.1"), is_loopback_host("example.com"), is_loopback_host("")
(False, False, False)
"""

from __future__ import annotations

import ipaddress

_LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a URL's host, or a socket address's) is this machine: 127.0.0.0/8,
    ::1 (with a zone too) or localhost."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
