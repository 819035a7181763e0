"""Where a webhook may point: a guard against server-side request forgery.

A URL must be https (http only when the operator allows it) and every address its host
resolves to must be public, or inside a range the operator allowed
(``SYNTHGEN_WEBHOOK_ALLOWED_CIDRS``). Checked at submit, and again at delivery against
the addresses the request will actually use, so a name that later resolves somewhere
private (DNS rebinding) is refused then: the sender connects to the address it checked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from core.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]


class WebhookRefused(InvalidRequest):
    """A webhook URL this service will not call (names the ``webhook`` field)."""


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookRefused(
            f"webhook: the host {host!r} does not resolve", field="webhook"
        ) from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _reason(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for name in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{name}"):
            return name.replace("_", "-")
    # Shared (CGNAT) space, documentation ranges and the like: not reachable publicly.
    return None if address.is_global else "non-public"


def check(
    url: str,
    *,
    allow_http: bool,
    allowed: Sequence[IPNetwork],
    resolver: Resolver = resolve,
) -> list[IPAddress]:
    """The addresses ``url`` may be called at; raises WebhookRefused saying why not."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and allow_http):
        raise WebhookRefused(
            "webhook: must be an https:// URL (plain http is allowed only when the operator "
            "sets SYNTHGEN_WEBHOOK_ALLOW_HTTP=true)",
            field="webhook",
        )
    host = parts.hostname
    if not host:
        raise WebhookRefused("webhook: the URL has no host", field="webhook")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(host, port)]
    if not addresses:
        raise WebhookRefused(f"webhook: the host {host!r} does not resolve", field="webhook")
    for address in addresses:
        reason = _reason(address)
        if reason is not None and not any(address in net for net in allowed):
            raise WebhookRefused(
                f"webhook: {host} resolves to {address}, a {reason} address; webhooks may "
                "only call public addresses (an operator can allow a range with "
                "SYNTHGEN_WEBHOOK_ALLOWED_CIDRS)",
                field="webhook",
            )
    return addresses
