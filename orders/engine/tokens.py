"""OAuth2 access tokens, fetched once and shared until they near their expiry.

With REDIS_URL the whole fleet shares them: a token is a Redis key that expires with it,
and one fetch at a time per connection is a Redis lock (`SET NX PX`) that the others
wait on, taking the token its holder stores. Without Redis each process keeps its own.
Either way one thread per process fetches, the others wait for it. Tokens live in memory
and in Redis only, never in the database.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

KEY_PREFIX = "statemanager:oauth2:"
# How long a fetch may hold the fleet's lock; a holder that dies frees it after this.
LOCK_SECONDS = 30.0
WAIT_STEP_SECONDS = 0.05
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Fetched:
    access_token: str
    expires_in: float | None  # seconds, as the token endpoint said; None: it did not say


def reuse_seconds(expires_in: float | None) -> float:
    """How long a token is reused: its lifetime less a margin of a tenth, at least 5 s
    for a token that lives 10 s or more (a shorter one keeps nine tenths of its life).
    A token endpoint that gives no `expires_in` gets an hour, as most issue.

    >>> reuse_seconds(3600), reuse_seconds(30), reuse_seconds(2)
    (3240.0, 25.0, 1.8)
    """
    lifetime = 3600.0 if expires_in is None else max(0.0, float(expires_in))
    margin = lifetime / 10 if lifetime < 10 else max(lifetime / 10, 5.0)
    return lifetime - margin


def cache_key(*parts: str) -> str:
    """A key for one credential: the connection's name with everything that makes its
    token (URL, client, scope, audience, secret), hashed so no credential is in Redis's
    key space."""
    return KEY_PREFIX + hashlib.sha256("\0".join(parts).encode()).hexdigest()


class LocalStore:
    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}

    def get(self, key: str) -> str | None:
        token, until = self._tokens.get(key, ("", 0.0))
        return token if token and time.monotonic() < until else None

    def put(self, key: str, token: str, seconds: float) -> None:
        self._tokens[key] = (token, time.monotonic() + seconds)

    def forget(self, key: str, token: str) -> None:
        if self._tokens.get(key, ("",))[0] == token:
            del self._tokens[key]

    def locked(self, key: str, wait_for: Callable[[], str | None]) -> _NoLock:
        return _NoLock()  # the process's own lock is all there is


class _NoLock:
    def __enter__(self) -> str | None:
        return None

    def __exit__(self, *exc) -> None:
        return None


class RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._release = self.client.register_script(RELEASE)

    def get(self, key: str) -> str | None:
        value = self.client.get(key)
        return value.decode() if value else None

    def put(self, key: str, token: str, seconds: float) -> None:
        if seconds > 0:
            self.client.set(key, token, px=max(1, int(seconds * 1000)))

    def forget(self, key: str, token: str) -> None:
        self._release(keys=[key], args=[token])

    def locked(self, key: str, wait_for: Callable[[], str | None]) -> _FleetLock:
        return _FleetLock(self, key + ":lock", wait_for)


class _FleetLock:
    """Held by one process of the fleet; another waits until it is free, or until the
    token its holder fetched is there (`__enter__` then gives that token)."""

    def __init__(self, store: RedisStore, key: str, wait_for: Callable[[], str | None]):
        self.store, self.key, self.wait_for = store, key, wait_for
        self.value = uuid.uuid4().hex

    def __enter__(self) -> str | None:
        deadline = time.monotonic() + LOCK_SECONDS
        client = self.store.client
        while not client.set(self.key, self.value, nx=True, px=int(LOCK_SECONDS * 1000)):
            token = self.wait_for()
            if token:
                self.value = ""
                return token
            if time.monotonic() > deadline:
                raise TimeoutError("another worker's token request took too long")
            time.sleep(WAIT_STEP_SECONDS)
        return None

    def __exit__(self, *exc) -> None:
        if self.value:
            self.store._release(keys=[self.key], args=[self.value])


_local_store = LocalStore()
_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


@lru_cache(maxsize=4)
def _redis_store(url: str) -> RedisStore:
    return RedisStore(url)


def store() -> LocalStore | RedisStore:
    url = getattr(settings, "REDIS_URL", "")
    return _redis_store(url) if url else _local_store


def _process_lock(key: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(key, threading.Lock())


def access_token(key: str, fetch: Callable[[], Fetched], *, stale: str | None = None) -> str:
    """The token cached under `key`, else one `fetch` gives (one fetch at a time per key,
    in the process and, with Redis, in the fleet). `stale` is a token the partner refused:
    it is dropped, and the next one is fetched (or taken from whoever fetched it first)."""
    tokens = store()
    if stale:
        tokens.forget(key, stale)

    def usable() -> str | None:
        token = tokens.get(key)
        return token if token and token != stale else None

    token = usable()
    if token:
        return token
    with _process_lock(key):
        token = usable()
        if token:
            return token
        with tokens.locked(key, usable) as taken:
            token = taken or usable()
            if token:
                return token
            asked = time.monotonic()  # the token's life is counted from the request
            fetched = fetch()
            seconds = reuse_seconds(fetched.expires_in) - (time.monotonic() - asked)
            tokens.put(key, fetched.access_token, seconds)
            return fetched.access_token
