"""Who may call: API keys (kept only as SHA-256 digests), the per-caller rate limit, and the limit on failed
authentications per client address.

SHA-256 rather than a password hash: API keys are long random strings, so a slow hash adds nothing against
guessing and would cost milliseconds on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import secrets
import time
from dataclasses import dataclass

from adaptlab.config import ServeConfig
from adaptlab.errors import ConfigError
from adaptlab.extras import require
from adaptlab.serve.api_errors import ApiError
from adaptlab.serve.metrics import ServerMetrics

KEY_PREFIX = "al-"
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh random API key and its digest (for serve.api_key_hashes)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_key(key)


@dataclass(frozen=True)
class KeyRing:
    digests: frozenset[str]

    @property
    def enabled(self) -> bool:
        return bool(self.digests)

    def identify(self, authorization: str | None) -> str | None:
        """The digest of the presented key when it is accepted, else None. Accepts `Bearer <key>`."""
        if not authorization:
            return None
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return None
        digest = hash_key(key.strip())
        # Compare against every digest in constant time so timing does not reveal near-matches.
        accepted = False
        for known in self.digests:
            accepted |= hmac.compare_digest(digest, known)
        return digest if accepted else None


def load_keys(config: ServeConfig) -> KeyRing:
    digests = set()
    for position, digest in enumerate(config.api_key_hashes):
        normalised = digest.strip().lower()
        if not _HEX_DIGEST.match(normalised):
            raise ConfigError(f"serve.api_key_hashes[{position}] = {digest!r} is not a SHA-256 hex digest (64 hex "
                              f"characters) — store digests, never keys: `adaptlab api-key` prints both.")
        digests.add(normalised)
    raw = os.environ.get(config.api_keys_env, "") if config.api_keys_env else ""
    digests.update(hash_key(key.strip()) for key in raw.split(",") if key.strip())
    return KeyRing(frozenset(digests))


def load_admin_keys(config: ServeConfig) -> KeyRing:
    """The admin keys of the /admin routes, from $<serve.admin_keys_env> only (comma-separated): a key that can
    change what the server serves never sits in the config file. None configured: the routes do not exist."""
    raw = os.environ.get(config.admin_keys_env, "") if config.admin_keys_env else ""
    return KeyRing(frozenset(hash_key(key.strip()) for key in raw.split(",") if key.strip()))


class RateLimiter:
    """A moving-window limit per caller, on the `limits` library (in memory, or Redis shared by replicas)."""

    def __init__(self, spec: str, storage_uri: str, *, setting: str = "serve.rate_limit") -> None:
        from limits import parse_many, storage, strategies

        if storage_uri.startswith(("redis://", "rediss://", "redis+")):
            require("redis", "redis", f"serve.rate_limit_storage = {storage_uri!r}")

        try:
            self._items = parse_many(spec)
        except ValueError as exc:
            raise ConfigError(f"{setting} = {spec!r} is not a rate ({exc}) — write e.g. '120/minute' or "
                              f"'10/second;500/hour'.") from None
        try:
            self._storage = storage.storage_from_string(storage_uri)
        except Exception as exc:  # limits raises ConfigurationError / ValueError for unknown schemes
            raise ConfigError(f"serve.rate_limit_storage = {storage_uri!r}: {exc} — use memory:// or a "
                              f"redis://host:port/db URL.") from None
        self._limiter = strategies.MovingWindowRateLimiter(self._storage)
        self.spec = spec

    def check(self, caller: str) -> float | None:
        """None when the caller may go on (and the hit is counted), else seconds until it may retry."""
        for item in self._items:
            if not self._limiter.hit(item, caller):
                return self._wait(item, caller)
        return None

    def exhausted(self, caller: str) -> float | None:
        """Seconds until the caller may retry when its limit is used up, else None (nothing is counted)."""
        for item in self._items:
            if not self._limiter.test(item, caller):
                return self._wait(item, caller)
        return None

    def count(self, caller: str) -> None:
        """Count one event for the caller (whether or not it is over the limit)."""
        for item in self._items:
            self._limiter.hit(item, caller)

    def _wait(self, item, caller: str) -> float:
        stats = self._limiter.get_window_stats(item, caller)
        return max(1.0, math.ceil(stats.reset_time - time.time()))


def rate_limiter(config: ServeConfig) -> RateLimiter | None:
    return RateLimiter(config.rate_limit, config.rate_limit_storage) if config.rate_limit.strip() else None


class LimitedKeys:
    """A key ring whose failed authentications are limited per client address (serve.auth_failure_limit): while
    an address is over the limit every request from it is refused, a right key too, so guessing gains nothing.
    The client keys and the admin keys each have one, counted apart (`kind`: "" or "admin")."""

    def __init__(self, keys: KeyRing, settings: ServeConfig, metrics: ServerMetrics, *, kind: str,
                 invalid_key: str) -> None:
        self.keys = keys
        spec = settings.auth_failure_limit.strip()
        # Only where a key can be wrong; a name space of its own in the shared storage.
        self.failures = (RateLimiter(spec, settings.rate_limit_storage, setting="serve.auth_failure_limit")
                         if spec and keys.enabled else None)
        self._label = f"{kind}_auth" if kind else "auth"  # metric reason, and the failure counter's name space
        self._what = f"{kind} " if kind else ""
        self._invalid_key = invalid_key  # the 401's message: which key to send
        self._metrics = metrics

    def identify(self, authorization: str | None, address: str) -> str:
        """The presented key's digest, or an ApiError: 429 while the address is over the failure limit, else 401
        for a missing or wrong key (which counts as a failure)."""
        failed_from = f"{self._label.replace('_', '-')}-failures:{address}"
        if self.failures is not None:
            # Checked before the key, so that a right guess is refused too while the address is blocked.
            blocked = self.failures.exhausted(failed_from)
            if blocked is not None:
                self._metrics.rejected.labels(f"{self._label}_failures").inc()
                raise ApiError(429, f"Too many failed {self._what}authentications from this client address "
                               f"({self.failures.spec}, serve.auth_failure_limit) — retry after {blocked:.0f} s "
                               f"with a valid {self._what}key.", code="too_many_auth_failures",
                               headers={"Retry-After": f"{blocked:.0f}"})
        digest = self.keys.identify(authorization)
        if digest is None:
            if self.failures is not None:
                self.failures.count(failed_from)
            self._metrics.rejected.labels(self._label).inc()
            raise ApiError(401, self._invalid_key, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        return digest


class Gatekeeper:
    """Admits or refuses one request before its body is read: too many failed authentications from its address
    (429), a missing or wrong key (401), the caller's rate limit (429). The caller is the key's digest, or the
    client address when no keys are configured (the proxy's client only from serve.trusted_proxies)."""

    def __init__(self, settings: ServeConfig, metrics: ServerMetrics) -> None:
        self.keys = load_keys(settings)
        self.limiter = rate_limiter(settings)
        self._auth = LimitedKeys(
            self.keys, settings, metrics, kind="",
            invalid_key="Missing or invalid API key — send 'Authorization: Bearer <key>' with a key whose SHA-256 "
                        "is in serve.api_key_hashes (or in $" + settings.api_keys_env + ").")
        self._metrics = metrics

    def admit(self, authorization: str | None, address: str) -> str:
        """The caller's id, or an ApiError."""
        caller = address
        if self.keys.enabled:
            caller = "key:" + self._auth.identify(authorization, address)[:16]
        if self.limiter is not None:
            retry_after = self.limiter.check(caller)
            if retry_after is not None:
                self._metrics.rejected.labels("rate_limit").inc()
                who = "this API key" if self.keys.enabled else "this client address"
                raise ApiError(429, f"Rate limit {self.limiter.spec} reached for {who} — retry after "
                               f"{retry_after:.0f} s.", code="rate_limit_exceeded",
                               headers={"Retry-After": f"{retry_after:.0f}"})
        return caller
