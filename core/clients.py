"""Who a client is, for every per-client limit: its address as the trusted proxies report it.

Without ``TRUSTED_PROXIES`` (the default) a client is the address that connected to us,
``REMOTE_ADDR``: an ``X-Forwarded-For`` header is something any client can send and never
changes who it is. Behind proxies, the operator lists their addresses or networks; each proxy
appends the address it saw to ``X-Forwarded-For``, so the header is read from the right and
the first address that is not one of our proxies is the client.

Written here rather than taken from django-ipware: ipware trusts proxies by string prefix and
by default picks the left-most address, the one a client writes itself; the rule above is a
dozen lines over the standard ``ipaddress`` module.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(proxy.strip(), strict=False) for proxy in proxies if proxy.strip())


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request: HttpRequest | Request) -> str:
    """The client's address: ``REMOTE_ADDR``, or what our trusted proxies say they saw."""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    if not networks or not _is_trusted(remote, networks):
        return remote
    hops = [hop.strip() for hop in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    seen_by = remote
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            # Not an address: written by the client, not by a proxy of ours. The proxy that
            # passed it on saw the client.
            return seen_by
        if not _is_trusted(hop, networks):
            return hop
        seen_by = hop
    return seen_by


def client_in(request: HttpRequest | Request, networks: list[str]) -> bool:
    """Whether the client (``client_ip``, so behind trusted proxies too) is in one of ``networks``."""
    return _is_trusted(client_ip(request), _networks(tuple(networks)))
