"""Provider prompt (prefix) caching, priced the way hosted APIs bill it: does it pay for this prompt and traffic?

Hosted APIs cache the longest static prefix of a prompt (system prompt, few-shot examples, a fixed document)
between requests. Anthropic's published scheme, the default here: writing the prefix costs 1.25× the input
price for a 5-minute cache (2× for 1 hour), reading it costs 0.1×, every read refreshes the entry's TTL, and a
prefix shorter than a minimum (1024 tokens on most models) is never cached. OpenAI caches automatically with
no write premium (write multiplier 1.0) and a model-dependent read discount: set the multipliers to match.

Whether that saves money depends on the traffic, not on the "up to 90% off" headline: a request arriving after
the entry expired pays the write premium again, so sparse traffic with a 5-minute TTL can cost MORE than no
caching. The simulator replays request times through one cache entry and prices every request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

FIVE_MINUTES = 300
ONE_HOUR = 3600


@dataclass(frozen=True)
class PromptLayout:
    """Tokens of one request, in prompt order. Retrieved context changes per query, so it is not part of the
    cacheable prefix unless `static_context` says it is the same text every time (a fixed manual, say)."""

    system_tokens: int
    fewshot_tokens: int = 0
    context_tokens: int = 0
    question_tokens: int = 0
    output_tokens: int = 0
    static_context: bool = False

    def __post_init__(self) -> None:
        for name in ("system_tokens", "fewshot_tokens", "context_tokens", "question_tokens", "output_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")

    @property
    def prefix_tokens(self) -> int:
        """The static prefix a provider can cache."""
        return self.system_tokens + self.fewshot_tokens + (self.context_tokens if self.static_context else 0)

    @property
    def input_tokens(self) -> int:
        return self.system_tokens + self.fewshot_tokens + self.context_tokens + self.question_tokens

    @property
    def dynamic_tokens(self) -> int:
        return self.input_tokens - self.prefix_tokens


@dataclass(frozen=True)
class ProviderPricing:
    """Prices in currency per million tokens and the cache multipliers applied to the input price."""

    input_per_million: float
    output_per_million: float
    cached_read_multiplier: float = 0.1
    cache_write_multiplier_5m: float = 1.25
    cache_write_multiplier_1h: float = 2.0
    min_cacheable_tokens: int = 1024

    def write_multiplier(self, ttl_seconds: float) -> float:
        """The 5-minute write price for TTLs up to 5 minutes, the 1-hour price for longer ones."""
        return self.cache_write_multiplier_5m if ttl_seconds <= FIVE_MINUTES else self.cache_write_multiplier_1h


@dataclass(frozen=True)
class PromptCacheResult:
    requests: int
    writes: int  # requests that found no live entry and (re)wrote the prefix
    reads: int  # requests that read the cached prefix
    cached_prefix_tokens: int  # 0 when the prefix is too short to cache
    ttl_seconds: float
    cost_without_cache: float
    cost_with_cache: float
    span_seconds: float  # first to last request
    note: str = ""

    @property
    def savings(self) -> float:
        return self.cost_without_cache - self.cost_with_cache

    @property
    def savings_pct(self) -> float | None:
        return 100 * self.savings / self.cost_without_cache if self.cost_without_cache else None

    @property
    def read_rate(self) -> float:
        return self.reads / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "savings": self.savings, "savings_pct": self.savings_pct,
                "read_rate": self.read_rate}


def steady_timestamps(requests_per_hour: float, *, hours: float = 24.0, start: float = 0.0) -> list[float]:
    """Evenly spaced request times: `requests_per_hour` for `hours` (at least one request)."""
    if requests_per_hour <= 0 or hours <= 0:
        raise ValueError("requests_per_hour and hours must be positive")
    count = max(1, round(requests_per_hour * hours))
    interval = 3600.0 / requests_per_hour
    return [start + i * interval for i in range(count)]


def simulate(layout: PromptLayout, pricing: ProviderPricing, timestamps: Sequence[float],
             ttl_seconds: float = FIVE_MINUTES) -> PromptCacheResult:
    """Price every request with and without prefix caching. One cache entry holds the prefix: a request at
    time t reads it when t is before the entry's expiry (and pushes the expiry to t + TTL), else writes it."""
    if not timestamps:
        raise ValueError("no requests to simulate")
    if ttl_seconds <= 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
    times = sorted(float(t) for t in timestamps)
    per_token_in = pricing.input_per_million / 1e6
    per_token_out = pricing.output_per_million / 1e6
    plain = layout.input_tokens * per_token_in + layout.output_tokens * per_token_out
    cost_without = plain * len(times)
    span = times[-1] - times[0]
    prefix = layout.prefix_tokens
    if prefix == 0 or prefix < pricing.min_cacheable_tokens:
        note = (f"the static prefix ({prefix} tokens) is shorter than the provider's minimum "
                f"({pricing.min_cacheable_tokens}): it is never cached")
        return PromptCacheResult(len(times), 0, 0, 0, ttl_seconds, cost_without, cost_without, span, note)

    writes = reads = 0
    expiry = -math.inf
    for now in times:
        if now < expiry:
            reads += 1
        else:
            writes += 1
        expiry = now + ttl_seconds  # written or read: the entry lives another TTL from now
    rest = layout.dynamic_tokens * per_token_in + layout.output_tokens * per_token_out
    cost_with = (len(times) * rest
                 + writes * prefix * per_token_in * pricing.write_multiplier(ttl_seconds)
                 + reads * prefix * per_token_in * pricing.cached_read_multiplier)
    note = ""
    if cost_with > cost_without:
        note = ("caching costs more than it saves: requests arrive too far apart for the TTL, so most pay the "
                "write premium")
    return PromptCacheResult(len(times), writes, reads, prefix, ttl_seconds, cost_without, cost_with, span, note)
