"""Prometheus metrics of one server (its own registry, so several apps in one process never share counters).

Label values come only from the server's own names (routes, served model ids, fixed statuses): a client cannot
create new series and grow memory by sending odd model names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

# The *_created series (a timestamp per label set) double the output and no dashboard here uses them.
disable_created_metrics()

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("adaptlab_requests", "HTTP requests answered, by route, model and status.",
                                ["route", "model", "status"], registry=self.registry)
        self.latency = Histogram("adaptlab_request_seconds", "Time to answer a request (whole response), by "
                                 "route, model and cache status.", ["route", "model", "cache"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.first_token = Histogram("adaptlab_first_token_seconds", "Time from a streamed chat request to its "
                                     "first piece of answer text (time to first token), by model.", ["model"],
                                     buckets=LATENCY_BUCKETS, registry=self.registry)
        self.cache_lookups = Counter("adaptlab_cache_lookups", "Answers of cached strategies by cache result "
                                     "(hit, miss, none = cache bypassed).", ["model", "result"],
                                     registry=self.registry)
        self.cache_hit_ratio = Gauge("adaptlab_cache_hit_ratio", "Share of cached-strategy answers served from "
                                     "the cache since the server started.", ["model"], registry=self.registry)
        self.tokens = Counter("adaptlab_tokens", "Tokens processed by the generator, by type (prompt, "
                              "completion); cache hits add none.", ["model", "type"], registry=self.registry)
        self.cost = Counter("adaptlab_cost_usd", "Priced cost of the answers (serve.cost_usd_per_hour and "
                            "serve.cost_api_model).", ["model"], registry=self.registry)
        self.rejected = Counter("adaptlab_rejected", "Requests refused before any work, by reason.", ["reason"],
                                registry=self.registry)
        self.queue_depth = Gauge("adaptlab_queue_depth", "Requests waiting or running, by work lane.", ["lane"],
                                 registry=self.registry)
        self._lock = threading.Lock()
        self._hits: dict[str, list[int]] = {}  # model -> [hits, answers]

    def watch_lane(self, lane: str, depth: Callable[[], int]) -> None:
        self.queue_depth.labels(lane).set_function(depth)

    def cache_result(self, model: str, result: str) -> None:
        self.cache_lookups.labels(model, result).inc()
        with self._lock:
            counts = self._hits.setdefault(model, [0, 0])
            counts[0] += result == "hit"
            counts[1] += 1
            ratio = counts[0] / counts[1]
        self.cache_hit_ratio.labels(model).set(ratio)

    def render(self) -> bytes:
        return generate_latest(self.registry)
