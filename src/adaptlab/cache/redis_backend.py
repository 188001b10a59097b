"""The shared cache backend: a Redis server, so several adaptlab servers serve one cache.

Layout under the prefix (default "adaptlab:cache:"):
  e:<key>        hash: context, question, answer (JSON), created_at, expires_at, tokens, embedding (float32
                 bytes), sources (JSON); Redis expires it at expires_at, so a dead entry simply disappears.
  ctx:<context>  set of keys of one context (the semantic index loads its vectors from here)
  src:<hash>     set of keys built from one document version (invalidation)
  path:<path>    set of keys built from any version of one document (`adaptlab cache clear --source`)
  version        counter bumped on every add/delete, so other processes know to reload their vectors
Index sets may keep keys of entries Redis has expired; readers skip those and prune them.
Any connection failure raises CacheUnavailable: the cache is then bypassed, answers are still served.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import numpy as np

from adaptlab.cache.entry import CacheEntry, CacheStats, CacheUnavailable, SourceRef
from adaptlab.errors import ConfigError

_FIELDS = ("context", "question", "answer", "created_at", "expires_at", "prompt_tokens", "completion_tokens",
           "embedding", "sources")


class RedisCacheBackend:
    name = "redis"

    def __init__(self, url: str, prefix: str = "adaptlab:cache:", *, timeout_s: float = 2.0) -> None:
        import redis

        self.location = url
        self._prefix = prefix
        self._errors = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        try:
            # Connects lazily: a server that is down now may be up by the next call (see AnswerCache's retry).
            self._redis = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        except ValueError as exc:
            raise ConfigError(f"cache.redis_url {url!r} is not a Redis URL ({exc}) — use e.g. "
                              f"redis://127.0.0.1:6379/0.") from exc

    # -------------------------------------------------------------------------------------------- reads

    def get(self, key: str, now: float) -> CacheEntry | None:
        values = self._call(lambda r: r.hmget(self._entry_key(key), _FIELDS))
        return self._entry(key, values, now)

    def get_many(self, keys: Iterable[str], now: float) -> list[CacheEntry]:
        keys = list(keys)

        def fetch(r):
            pipe = r.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(self._entry_key(key), _FIELDS)
            return pipe.execute()

        rows = self._call(fetch) if keys else []
        return [e for e in (self._entry(k, v, now) for k, v in zip(keys, rows)) if e is not None]

    def vectors(self, context: str, now: float) -> tuple[list[str], np.ndarray]:
        keys = sorted(k.decode() for k in self._call(lambda r: r.smembers(self._p("ctx:" + context))))

        def fetch(r):
            pipe = r.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(self._entry_key(key), ("embedding", "expires_at"))
            return pipe.execute()

        rows = self._call(fetch) if keys else []
        live, vectors, gone = [], [], []
        for key, (embedding, expires) in zip(keys, rows):
            if embedding is None:
                gone.append(key)  # expired by Redis: prune the index set
            elif embedding and (not expires or float(expires) > now):  # b"": an exact-only entry
                live.append(key)
                vectors.append(np.frombuffer(embedding, dtype=np.float32))
        if gone:
            self._call(lambda r: r.srem(self._p("ctx:" + context), *gone))
        if not vectors:
            return [], np.zeros((0, 0), dtype=np.float32)
        return live, np.stack(vectors)

    def version(self) -> int:
        return int(self._call(lambda r: r.get(self._p("version"))) or 0)

    def stats(self, now: float) -> CacheStats:
        def count(r):
            entries, contexts, with_sources = 0, set(), 0
            for raw in r.scan_iter(match=self._p("e:*"), count=1000):
                context, sources = r.hmget(raw, ("context", "sources"))
                if context is None:
                    continue
                entries += 1
                contexts.add(context)
                with_sources += bool(sources and json.loads(sources))
            return entries, len(contexts), with_sources

        entries, contexts, with_sources = self._call(count)
        return CacheStats(self.name, self.location, entries, contexts, with_sources)

    # ------------------------------------------------------------------------------------------- writes

    def put(self, entry: CacheEntry) -> None:
        mapping = {
            "context": entry.context, "question": entry.question,
            "answer": json.dumps(entry.answer, ensure_ascii=False), "created_at": repr(entry.created_at),
            "expires_at": "" if entry.expires_at is None else repr(entry.expires_at),
            "prompt_tokens": entry.prompt_tokens, "completion_tokens": entry.completion_tokens,
            "sources": json.dumps([[s.doc_hash, s.path] for s in entry.sources]),
            "embedding": b"" if entry.embedding is None else np.asarray(entry.embedding, np.float32).tobytes(),
        }

        def write(r):
            key = self._entry_key(entry.key)
            previous = json.loads(r.hget(key, "sources") or "[]")  # a replaced entry leaves its old source sets
            pipe = r.pipeline(transaction=True)  # MULTI/EXEC: the entry and its index sets land together
            for doc_hash, path in previous:
                pipe.srem(self._p("src:" + doc_hash), entry.key)
                pipe.srem(self._p("path:" + path), entry.key)
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            if entry.expires_at is not None:
                pipe.expireat(key, max(1, math.ceil(entry.expires_at)))
            pipe.sadd(self._p("ctx:" + entry.context), entry.key)
            for source in entry.sources:
                pipe.sadd(self._p("src:" + source.doc_hash), entry.key)
                pipe.sadd(self._p("path:" + source.path), entry.key)
            pipe.incr(self._p("version"))
            pipe.execute()

        self._call(write)

    def delete_for_sources(self, doc_hashes: Iterable[str]) -> list[str]:
        sets = [self._p("src:" + h) for h in dict.fromkeys(doc_hashes)]
        return self._delete_members(sets) if sets else []

    def delete_for_path(self, path: str) -> list[str]:
        prefix = path.rstrip("/")

        def matching(r) -> list[str]:
            names = [self._p("path:" + prefix)]
            for pattern in (prefix + "/*", prefix + "#*"):
                names.extend(n.decode() for n in r.scan_iter(match=self._p("path:" + _glob_escape(pattern))))
            return names

        return self._delete_members(self._call(matching))

    def clear(self) -> list[str]:
        def write(r):
            deleted = []
            for raw in r.scan_iter(match=self._p("*"), count=1000):
                name = raw.decode()
                if name.startswith(self._p("e:")):
                    deleted.append(name[len(self._p("e:")):])
                r.delete(raw)
            r.incr(self._p("version"))
            return deleted

        return self._call(write)

    def close(self) -> None:
        try:
            self._redis.close()
        except self._errors:
            pass

    # ------------------------------------------------------------------------------------------ helpers

    def _delete_members(self, set_names: list[str]) -> list[str]:
        def write(r):
            keys = sorted({m.decode() for m in r.sunion(set_names)}) if set_names else []
            pipe = r.pipeline(transaction=True)
            for key in keys:
                pipe.delete(self._entry_key(key))
            for name in set_names:
                pipe.delete(name)
            pipe.incr(self._p("version"))
            pipe.execute()
            return keys

        return self._call(write)

    def _entry(self, key: str, values: list, now: float) -> CacheEntry | None:
        if values is None or values[0] is None:
            return None
        context, question, answer, created, expires, prompt, completion, embedding, sources = values
        expires_at = float(expires) if expires else None
        if expires_at is not None and expires_at <= now:
            return None
        return CacheEntry(
            key=key, context=context.decode(), question=question.decode(), answer=json.loads(answer),
            created_at=float(created), expires_at=expires_at, prompt_tokens=int(prompt or 0),
            completion_tokens=int(completion or 0),
            embedding=np.frombuffer(embedding, dtype=np.float32) if embedding else None,
            sources=tuple(SourceRef(h, p) for h, p in json.loads(sources or "[]")),
        )

    def _call(self, work):
        try:
            return work(self._redis)
        except self._errors as exc:
            raise CacheUnavailable(f"Redis at {self.location} is unreachable: {exc}") from exc

    def _p(self, name: str) -> str:
        return self._prefix + name

    def _entry_key(self, key: str) -> str:
        return self._prefix + "e:" + key


def _glob_escape(text: str) -> str:
    """Escape Redis glob metacharacters except the trailing '*' the caller adds."""
    body, star = (text[:-1], "*") if text.endswith("*") else (text, "")
    return "".join("\\" + c if c in "*?[]\\" else c for c in body) + star
