"""Network names: is a host this machine itself?"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine itself (``localhost``, ``127.0.0.0/8``, ``::1``).

    >>> is_loopback("localhost"), is_loopback("127.0.0.1"), is_loopback("10.0.0.5")
    (True, True, False)
    """
    if not host:
        return False
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def address_host(address: str) -> str | None:
    """The host of a ``scheme://host:port`` address.

    >>> address_host("tcp://10.0.0.5:8786"), address_host("tcp://[::1]:8786")
    ('10.0.0.5', '::1')
    """
    return urlsplit(address).hostname
