"""``RedisStoreSettings``: the ``redis`` idempotency store's configuration, checked.

Settings (the ``[idempotency_settings.redis]`` table)::

    url = "redis://127.0.0.1:6379/0"   # redis://, rediss:// (TLS), unix://, redis+sentinel://
    prefix = "paycore:idem:"           # so several apps share one Redis
    socket_timeout = 2.0               # seconds per command; past it the store is unavailable (at most 3600)
    connect_timeout = 2.0              # seconds to open a connection (default: socket_timeout; at most 3600)
    abandoned_retention = 86400        # seconds an expired lease's record is kept (see the store)
    cluster = false                    # true: the URL names a node of a Redis Cluster
    transport = "auto"                 # "auto": asyncio client under asyncio, threads under trio;
                                       # "threads": redis-py's blocking client in worker threads always
    password = "..."                   # optional; kept out of reprs and logs (or put it in the URL)

A query option of a redis://, rediss:// or unix:// URL (``?socket_timeout=1``, ``?ssl_cert_reqs=required``)
goes to redis-py's connection, and wins over the setting of the same name; one that connection does not take
(``?ssl=true`` on a redis:// URL, a misspelt ``?sockettimeout=1``) is refused when the settings are read.

A Sentinel URL lists the sentinels and names the monitored service:
``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]``
(port 26379 by default), without query options. The password, if any, is the master's.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Mapping
from types import ModuleType
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio.cluster
import redis.asyncio.connection
import redis.connection
from attrs import field, frozen

from paycore.config import MAX_IDEMPOTENCY_TTL
from paycore.errors import ConfigurationError
from paycore.secrets import (  # redact_url: also hides a ?password= query parameter
    Secret,
    read_seconds,
    redact_url,
    shown_setting,
)
from paycore.wire import shown as short

__all__ = ["DEFAULT_PREFIX", "DEFAULT_URL", "TRANSPORTS", "RedisStoreSettings", "SentinelTarget", "redact_url"]

DEFAULT_URL: Final = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX: Final = "paycore:idem:"
SENTINEL_SCHEME: Final = "redis+sentinel"
_SENTINEL_PORT: Final = 26379
MAX_SOCKET_TIMEOUT: Final = 3600.0
"""The longest ``socket_timeout`` or ``connect_timeout``: an hour (a longer one overflows a socket's timer)."""
_SCHEMES: Final = ("redis", "rediss", "unix", SENTINEL_SCHEME)
_PORTS: Final = range(1, 65536)
_ENCODE_HINT: Final = "; a '/', '#', '?' or '@' in a user name or password must be percent-encoded (%2F, %23, %3F, %40)"
"""Said where a URL with credentials cannot be read: redis-py reads a raw '/' in a password as the path."""
_KNOWN: Final = (
    "url",
    "prefix",
    "socket_timeout",
    "connect_timeout",
    "abandoned_retention",
    "cluster",
    "password",
    "transport",
)
TRANSPORTS: Final = ("auto", "threads")


@frozen
class SentinelTarget:
    """What a ``redis+sentinel://`` URL names: the sentinels, the service and the database."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: Secret | None = None

    @classmethod
    def parse(cls, url: str) -> SentinelTarget:
        """Read ``redis+sentinel://[[user]:password@]host[:port][,...]/service[/db]``."""
        parts = urlsplit(url)
        shown = redact_url(url)
        if parts.scheme != SENTINEL_SCHEME:
            raise ConfigurationError(f"redis store: {shown!r} is not a {SENTINEL_SCHEME}:// URL")
        credentials, _, hosts = parts.netloc.rpartition("@")
        username = password = None
        if credentials:
            user, _, secret = credentials.partition(":")
            username = unquote(user) or None
            password = Secret(unquote(secret)) if secret else None
        sentinels = []
        for host in hosts.split(","):
            name, _, port = host.strip().rpartition(":") if ":" in host else (host.strip(), "", "")
            if not name:
                raise ConfigurationError(f"redis store: an empty sentinel host in {shown!r}")
            if port and not (port.isascii() and port.isdigit() and int(port) in _PORTS):
                said = f"{_ENCODE_HINT}" if "@" in url else ""  # a password's raw '/' puts part of it here
                raise ConfigurationError(
                    f"redis store: sentinel port {'' if said else f'{port!r} '}in {shown!r} is not a number from 1 "
                    f"to 65535{said}"
                )
            sentinels.append((name, int(port) if port else _SENTINEL_PORT))
        path = [piece for piece in parts.path.split("/") if piece]
        if not path or len(path) > 2:
            raise ConfigurationError(
                f"redis store: {shown!r} must name the monitored service: redis+sentinel://host:26379/SERVICE[/DB]"
            )
        if len(path) == 2 and not (path[1].isascii() and path[1].isdigit()):
            raise ConfigurationError(f"redis store: database {short(path[1])} in {shown!r} is not a number")
        db = int(path[1]) if len(path) == 2 else 0
        return cls(tuple(sentinels), unquote(path[0]), db, username, password)


def _check_url(url: str, scheme: str, cluster: bool) -> None:
    """Refuse a URL redis-py cannot use, naming it without its password.

    Accepted, such a URL failed every keyed call with a raw ``ValueError`` (a port out of range, a query value
    that is not a number), or used another database than the one written (``/notadb`` was database 0).
    """
    where = f"redis store: url {redact_url(url)!r}"
    if "#" in url:  # no Redis URL has a fragment: a password's raw '#' would end it short, and redis-py use the rest
        raise ConfigurationError(f"{where} cannot be used: it holds a raw '#'{_ENCODE_HINT}")
    if scheme == SENTINEL_SCHEME:  # redis-py reads no sentinel URL: SentinelTarget does
        SentinelTarget.parse(url)
        return
    options: dict[str, Any] = {}
    for parse in (redis.connection.parse_url, redis.asyncio.connection.parse_url):  # the blocking and asyncio clients
        try:
            options = dict(parse(url))
        except (ValueError, TypeError) as error:
            raise ConfigurationError(f"{where} cannot be used: {_reason(error, url)}") from None
    parts = urlsplit(url)
    if scheme == "unix":
        if not options.get("path"):
            raise ConfigurationError(f"{where} must name the socket: unix:///path/to/redis.sock")
        if (parts.netloc and "@" not in parts.netloc) or "@" in parts.path:  # a password's raw '/' cut it short
            raise ConfigurationError(f"{where} cannot be used: its credentials run into the socket path{_ENCODE_HINT}")
        return
    port = parts.port  # as written: redis-py 5.0 drops a port 0 from its options and connects to 6379
    if port is not None and port not in _PORTS:
        raise ConfigurationError(f"{where}: port {port} is not from 1 to 65535")
    path = unquote(parts.path).replace("/", "")  # as redis-py reads the database from the path
    if "db" in options:  # ?db= wins over the path
        database = options["db"]
    elif not path:
        database = 0
    elif path.isascii() and path.isdigit():
        database = int(path)
    else:
        raise ConfigurationError(f"{where}: database {short(path)} is not a number (like redis://host:6379/0)")
    if database < 0:
        raise ConfigurationError(f"{where}: database {database} is negative")
    if cluster and database != 0:
        raise ConfigurationError(f"{where}: a Redis Cluster has database 0 only, not {database}")


def _check_query(url: str, scheme: str, cluster: bool, transport: str) -> None:
    """Refuse a query option that a client the store may open does not take, naming it, the URL without its password.

    redis-py's ``parse_url`` passes a query name it does not know through as a keyword argument, and the
    connection refuses it only when the first one is made: accepted, ``?ssl=true`` on a redis:// URL or a
    misspelt ``?sockettimeout=1`` failed every keyed call with a raw ``TypeError``.
    """
    names = sorted(parse_qs(urlsplit(url).query))  # as parse_url reads them (an option without a value is dropped)
    if not names:
        return
    if scheme == SENTINEL_SCHEME:  # read by SentinelTarget, not redis-py: a query was ignored
        raise ConfigurationError(
            f"redis store: url {redact_url(url)!r} cannot be used: a {SENTINEL_SCHEME}:// URL takes no query option "
            f"({', '.join(short(name) for name in names)}); set the store's settings instead"
        )
    # Under trio, or with transport = "threads", the blocking client; under asyncio with "auto", the asyncio one.
    modules = [redis.connection] if transport == "threads" else [redis.connection, redis.asyncio.connection]
    for module in modules:
        taker, taken = _taken(module, scheme, cluster)
        if taken is None or not (refused := [name for name in names if name not in taken]):
            continue
        hint = ""
        if scheme != "rediss" and any(name == "ssl" or name.startswith("ssl_") for name in refused):
            hint = "; TLS needs a rediss:// URL"
        elif scheme == "rediss" and "ssl" in refused:
            hint = "; a rediss:// URL is TLS already"
        elif close := difflib.get_close_matches(refused[0], sorted(taken), 1, 0.85):
            hint = f"; did you mean {close[0]!r}?"
        raise ConfigurationError(
            f"redis store: url {redact_url(url)!r} cannot be used: redis-py's {taker} takes no option "
            f"{', '.join(short(name) for name in refused)}{hint}"
        )


def _taken(module: ModuleType, scheme: str, cluster: bool) -> tuple[str, frozenset[str] | None]:
    """What takes a URL's query options in the client of ``module`` (redis-py's blocking or asyncio connection
    module), as the clients module opens it, and the names it takes (``None``: any)."""
    asyncio_client = module is redis.asyncio.connection
    if cluster and asyncio_client:  # RedisCluster.from_url passes them to RedisCluster itself (rediss://: ssl=True)
        names, closed = _keywords(redis.asyncio.cluster.RedisCluster)
        return "asyncio RedisCluster", names if closed else None
    # The connection class parse_url selects by scheme (a cluster's nodes have a plain ConnectionPool each).
    connection = {"rediss": module.SSLConnection, "unix": module.UnixDomainSocketConnection}.get(
        scheme, module.Connection
    )
    pool = module.ConnectionPool if cluster else module.BlockingConnectionPool
    taker = f"{'asyncio ' if asyncio_client else ''}{connection.__name__}"
    names, closed = _keywords(connection)
    if not closed:
        return taker, None
    # The pool takes its own options before the connection does: those redis-py reads from a URL (numbers such
    # as max_connections); a URL cannot give the others (a class, a factory).
    read = frozenset(getattr(module, "URL_QUERY_ARGUMENT_PARSERS", {})) & _keywords(pool)[0]
    return taker, names | read


@functools.cache
def _keywords(kind: type) -> tuple[frozenset[str], bool]:
    """The keyword arguments ``kind(...)`` names: its ``__init__``'s, and its base classes' while each passes
    ``**kwargs`` on; and whether that ends (``False``: some ``**kwargs`` may take any name). Read from the
    signatures, as each redis-py release has them."""
    names: set[str] = set()
    for klass in kind.__mro__:
        init = vars(klass).get("__init__")
        if init is None or klass is object:
            continue
        try:
            parameters = list(inspect.signature(init).parameters.values())
        except (TypeError, ValueError):
            return frozenset(names), False
        if parameters and parameters[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            parameters = parameters[1:]  # self
        named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        names.update(parameter.name for parameter in parameters if parameter.kind in named)
        if not any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
            return frozenset(names), True
    return frozenset(names), False


def _reason(error: Exception, url: str) -> str:
    """Why redis-py refused ``url``, without the URL's credentials. In its own words, but for a URL whose user
    or password holds a raw ``/``, ``#`` or ``?``: redis-py then takes part of the password for the port, and
    quotes it."""
    credentials = url.split("://", 1)[-1].rpartition("@")[0]
    if any(character in credentials for character in "/#?"):
        return f"redis-py cannot read it ({type(error).__name__}){_ENCODE_HINT}"
    reason = redact_url(str(error))[:200]
    for secret in (credentials, credentials.partition(":")[2]):  # urllib's errors quote the host part
        if secret:
            reason = reason.replace(secret, "***")
    return reason or type(error).__name__


def _seconds(raw: Mapping[str, Any], name: str, default: float, most: float, in_words: str) -> float:
    """The setting ``name`` as seconds above 0 and at most ``most``: beyond what a socket or Redis
    takes, a value would be accepted here and fail every keyed call (an ``OverflowError``)."""
    return read_seconds(raw.get(name, default), what=f"redis store: {name}", most=most, in_words=in_words)


def _flag(raw: Mapping[str, Any], name: str) -> bool:
    value = raw.get(name, False)
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.lower() in ("true", "1", "yes")
    if not isinstance(value, bool):
        raise ConfigurationError(f"redis store: {name} must be true or false, not {shown_setting(value)}")
    return value


@frozen
class RedisStoreSettings:
    """The checked settings of a :class:`~paycore_redis.RedisIdempotencyStore`."""

    url: str = DEFAULT_URL
    prefix: str = DEFAULT_PREFIX
    socket_timeout: float = 2.0
    connect_timeout: float = 2.0
    abandoned_retention: float = 86_400.0
    """Seconds a record stays after its holder's lease expired without completing.

    While it stays, a retry takes the key over knowing it was abandoned
    (``taken_over=True``) and a different request under the key is refused.
    """
    cluster: bool = False
    transport: str = "auto"
    """``"auto"`` (redis-py's asyncio client under asyncio, worker threads under trio) or ``"threads"``."""
    password: Secret | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"RedisStoreSettings(url={redact_url(self.url)!r}, prefix={self.prefix!r}, "
            f"socket_timeout={self.socket_timeout}, cluster={self.cluster})"
        )

    @property
    def sentinel(self) -> SentinelTarget | None:
        """The Sentinel target when the URL is ``redis+sentinel://``, else ``None``."""
        return SentinelTarget.parse(self.url) if self.url.startswith(f"{SENTINEL_SCHEME}://") else None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> RedisStoreSettings:
        """Check a settings table; refuse unknown names and wrong values, naming them."""
        unknown = sorted(set(raw) - set(_KNOWN))
        if unknown:
            raise ConfigurationError(f"redis store: unknown setting(s) {unknown}; known: {sorted(_KNOWN)}")
        url = raw.get("url", DEFAULT_URL)
        if not isinstance(url, str) or "://" not in url:  # never quoted: without a scheme a password cannot be found
            given = "a URL without a scheme" if isinstance(url, str) else f"a {type(url).__name__}"
            raise ConfigurationError(f"redis store: url must be a redis:// URL, not {given}")
        scheme = url.split("://", 1)[0].lower()
        if scheme not in _SCHEMES:
            raise ConfigurationError(
                f"redis store: URL scheme {scheme!r} in {redact_url(url)!r} is not one of {list(_SCHEMES)}"
            )
        prefix = raw.get("prefix", DEFAULT_PREFIX)
        if not isinstance(prefix, str):
            raise ConfigurationError(f"redis store: prefix must be a string, not {shown_setting(prefix)}")
        socket_timeout = _seconds(raw, "socket_timeout", 2.0, MAX_SOCKET_TIMEOUT, "an hour")
        cluster = _flag(raw, "cluster")
        transport = raw.get("transport", "auto")
        if transport not in TRANSPORTS:
            raise ConfigurationError(
                f"redis store: transport must be one of {list(TRANSPORTS)}, not {shown_setting(transport)}"
            )
        settings = cls(
            url=url,
            prefix=prefix,
            socket_timeout=socket_timeout,
            connect_timeout=_seconds(raw, "connect_timeout", socket_timeout, MAX_SOCKET_TIMEOUT, "an hour"),
            abandoned_retention=_seconds(raw, "abandoned_retention", 86_400.0, MAX_IDEMPOTENCY_TTL, "ten years"),
            cluster=cluster,
            transport=transport,
            password=_password(raw.get("password")),
        )
        if cluster and scheme in ("unix", SENTINEL_SCHEME):
            raise ConfigurationError(
                f"redis store: cluster = true needs a redis:// or rediss:// node URL, not {scheme}://"
            )
        _check_url(url, scheme, cluster)
        _check_query(url, scheme, cluster, transport)
        return settings


def _password(value: object) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value)
    raise ConfigurationError("redis store: password must be a string")
