"""API keys (kept only as SHA-256 digests) and the per-key rate limit.

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


class RateLimiter:
    """A moving-window limit per caller, on the `limits` library (in memory, or Redis shared by replicas)."""

    def __init__(self, spec: str, storage_uri: str) -> None:
        from limits import parse_many, storage, strategies

        if storage_uri.startswith(("redis://", "rediss://", "redis+")):
            require("redis", "redis", f"serve.rate_limit_storage = {storage_uri!r}")

        try:
            self._items = parse_many(spec)
        except ValueError as exc:
            raise ConfigError(f"serve.rate_limit = {spec!r} is not a rate ({exc}) — write e.g. '120/minute' or "
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
                stats = self._limiter.get_window_stats(item, caller)
                return max(1.0, math.ceil(stats.reset_time - time.time()))
        return None


def rate_limiter(config: ServeConfig) -> RateLimiter | None:
    return RateLimiter(config.rate_limit, config.rate_limit_storage) if config.rate_limit.strip() else None
