"""Where the model server is: the base URL from config or $OLLAMA_HOST, the local-only policy, and
how a local name is dialled (`localhost` and `*.localhost` are this machine, never asked of DNS)."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from .errors import ConfigError

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
_OLLAMA_DEFAULT_PORT = "11434"


def ollama_host_url(value: str | None) -> str:
    """Read an OLLAMA_HOST value the way the `ollama` CLI does: host, host:port, or a URL.

    No scheme means http with port 11434; an explicit http/https scheme without a port means
    80/443; 0.0.0.0 (a bind address) is dialled as 127.0.0.1; a bad port falls back to the default.
    """
    s = (value or "").strip().strip("\"'")
    if not s:
        return DEFAULT_OLLAMA_URL
    default_port = _OLLAMA_DEFAULT_PORT
    scheme, sep, rest = s.partition("://")
    if not sep:
        scheme, rest = "http", s
    elif scheme == "http":
        default_port = "80"
    elif scheme == "https":
        default_port = "443"
    hostport, _, path = rest.partition("/")
    host, port = _split_host_port(hostport)
    if not host:
        host = "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        port = default_port
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    if ":" in host:
        host = f"[{host}]"
    url = f"{scheme}://{host}:{port}"
    return url + ("/" + path.rstrip("/") if path.strip("/") else "")


def _split_host_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):  # [ipv6]:port or [ipv6]
        host, _, tail = hostport[1:].partition("]")
        return host, tail[1:] if tail.startswith(":") else ""
    if hostport.count(":") == 1:
        host, _, port = hostport.partition(":")
        return host, port
    if hostport.count(":") > 1:  # a bare IPv6 address
        return hostport, ""
    return hostport, ""


def resolve_url(configured: str | None, env: dict[str, str] | None = None) -> str:
    """The backend URL: the configured one, else $OLLAMA_HOST, else the Ollama default."""
    if configured:
        return configured.rstrip("/")
    host = (os.environ if env is None else env).get("OLLAMA_HOST")
    return ollama_host_url(host)


def is_loopback_name(host: str) -> bool:
    """`localhost` and every name under it: this machine by definition (RFC 6761), as browsers treat them."""
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def is_loopback(url: str) -> bool:
    """True when the URL's host is this machine (127.0.0.0/8, ::1, localhost, *.localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if is_loopback_name(host):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_policy(url: str, allow_remote: bool) -> None:
    """Refuse a non-loopback URL unless the user opted in: code must not leave the machine by default."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"`backend.url` should be an http(s) URL such as {DEFAULT_OLLAMA_URL}, not {url!r}. Fix it in your setup() options."
        )
    if not allow_remote and not is_loopback(url):
        raise ConfigError(
            f"{url} is not on this machine, and ai_host keeps your code local by default. "
            "Set `backend.allow_remote = true` if you trust that server."
        )


# Where a loopback name is dialled, in this order (Ollama listens on 127.0.0.1 by default).
_LOOPBACK_ADDRESSES = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"))


class LoopbackResolver(AbstractResolver):
    """Resolves `localhost` and `*.localhost` to 127.0.0.1 and ::1 without asking anyone: the policy
    accepts them as this machine, so no resolver (`files dns`, a hosts file, a DNS server) may say
    otherwise. Every other name goes to aiohttp's default resolver."""

    def __init__(self, fallback: AbstractResolver | None = None):
        self._fallback = fallback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not is_loopback_name(host):
            if self._fallback is None:
                self._fallback = DefaultResolver()
            return await self._fallback.resolve(host, port, family)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=fam,
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for fam, address in _LOOPBACK_ADDRESSES
            if family in (socket.AF_UNSPEC, fam)
        ]

    async def close(self) -> None:
        if self._fallback is not None:
            await self._fallback.close()


def loopback_connector(**kwargs: Any) -> aiohttp.TCPConnector:
    """A connector for every session that talks to a model server (call it inside the event loop)."""
    return aiohttp.TCPConnector(resolver=LoopbackResolver(), **kwargs)
