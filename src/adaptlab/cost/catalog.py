"""The price catalog: dated, sourced list prices (src/adaptlab/cost/prices.toml) merged with adaptlab.toml overrides.

Every entry carries the date its figure was read (`as_of`) and where (`source`), because prices go stale:
`stale()` lists the entries older than a threshold, and `adaptlab prices` warns about them. Users correct or add
prices in adaptlab.toml as `[prices.SECTION."KEY"]` tables with the same fields as the shipped file.
"""

from __future__ import annotations

import datetime
import difflib
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from adaptlab.errors import ConfigError

DEFAULT_MAX_AGE_DAYS = 180
SECTIONS = ("api_models", "gpus", "embedding_apis", "vector_db", "redis_hosting")
HOSTING_SECTIONS = ("vector_db", "redis_hosting")
PACKAGED_FILE = "prices.toml"
USER_SOURCE = "adaptlab.toml"


class PriceError(ConfigError):
    """A price is missing or invalid (in the shipped catalog or an adaptlab.toml [prices] override)."""


@dataclass(frozen=True)
class PriceEntry:
    key: str
    provider: str
    as_of: datetime.date | None
    source: str
    note: str


@dataclass(frozen=True)
class ApiModelPrice(PriceEntry):
    input_per_mtok: float
    output_per_mtok: float
    cached_read_per_mtok: float
    cache_write_per_mtok: float
    min_cacheable_tokens: int


@dataclass(frozen=True)
class GpuPrice(PriceEntry):
    gpu: str
    usd_per_hour: float
    peak_tflops: float
    memory_gb: float
    source_peak: str = ""


@dataclass(frozen=True)
class EmbeddingPrice(PriceEntry):
    usd_per_mtok: float
    dimension: int


@dataclass(frozen=True)
class HostingTier(PriceEntry):
    usd_per_month: float
    usd_per_gb_month: float
    capacity_gb: float

    def monthly_cost(self, gb: float) -> float:
        """The tier's price for a month holding `gb` of data: fixed monthly price plus usage-based storage."""
        return self.usd_per_month + self.usd_per_gb_month * gb


# --------------------------------------------------------------------------- field specifications


@dataclass(frozen=True)
class _Field:
    name: str
    kind: str  # text | url | date | price (>= 0) | positive (> 0) | count (int >= 0) | size (int > 0)
    user_required: bool = True  # a new adaptlab.toml entry must give it
    shipped_required: bool = True  # every entry of prices.toml must give it
    default: Callable[[dict[str, Any]], Any] | None = None  # for fields a new entry may leave out

    def describe(self) -> str:
        return {"text": "text", "url": "text (a URL)", "date": "a date like 2026-01-31",
                "price": "a number >= 0 (USD)", "positive": "a number > 0", "count": "a whole number >= 0",
                "size": "a whole number > 0"}[self.kind]


_COMMON = (
    _Field("provider", "text"),
    _Field("as_of", "date", user_required=False, default=lambda fields: None),
    _Field("source", "url", user_required=False, default=lambda fields: USER_SOURCE),
    _Field("note", "text", user_required=False, shipped_required=False, default=lambda fields: ""),
)

_SPECS: dict[str, tuple[_Field, ...]] = {
    "api_models": _COMMON + (
        _Field("input_per_mtok", "price"),
        _Field("output_per_mtok", "price"),
        # A new user entry without cache prices gets no caching discount (reads and writes at the input price).
        _Field("cached_read_per_mtok", "price", user_required=False, default=lambda f: f["input_per_mtok"]),
        _Field("cache_write_per_mtok", "price", user_required=False, default=lambda f: f["input_per_mtok"]),
        _Field("min_cacheable_tokens", "count", user_required=False, default=lambda f: 1024),
    ),
    "gpus": _COMMON + (
        _Field("gpu", "text"),
        _Field("usd_per_hour", "price"),
        _Field("peak_tflops", "positive"),
        _Field("memory_gb", "positive"),
        _Field("source_peak", "text", user_required=False, shipped_required=False, default=lambda f: ""),
    ),
    "embedding_apis": _COMMON + (
        _Field("usd_per_mtok", "price"),
        _Field("dimension", "size"),
    ),
    "vector_db": _COMMON + (
        _Field("usd_per_month", "price"),
        _Field("usd_per_gb_month", "price", user_required=False, default=lambda f: 0.0),
        _Field("capacity_gb", "positive"),
    ),
}
_SPECS["redis_hosting"] = _SPECS["vector_db"]

_CLASSES: dict[str, type[PriceEntry]] = {
    "api_models": ApiModelPrice, "gpus": GpuPrice, "embedding_apis": EmbeddingPrice,
    "vector_db": HostingTier, "redis_hosting": HostingTier,
}


def _close(word: str, options: list[str]) -> str:
    matches = difflib.get_close_matches(word, options, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""


def _coerce(spec: _Field, value: Any, where: str) -> Any:
    """Check one value against its field kind; `where` names the file, table and field for the message."""
    if spec.kind in ("text", "url"):
        if not isinstance(value, str):
            raise PriceError(f"{where}: must be {spec.describe()} (got {value!r}) — put the value in quotes.")
        return value
    if spec.kind == "date":
        if isinstance(value, datetime.datetime):
            return value.date()
        if isinstance(value, datetime.date):
            return value
        if isinstance(value, str):
            try:
                return datetime.date.fromisoformat(value)
            except ValueError:
                pass
        raise PriceError(f"{where}: must be {spec.describe()} (got {value!r}) — write it as a TOML date, "
                         f"e.g. as_of = 2026-01-31.")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PriceError(f"{where}: must be {spec.describe()} (got {value!r}) — write a plain number, no quotes "
                         f"or units.")
    if spec.kind in ("count", "size"):
        if isinstance(value, float) and not value.is_integer():
            raise PriceError(f"{where}: must be {spec.describe()} (got {value!r}).")
        value = int(value)
    elif not math.isfinite(value):
        raise PriceError(f"{where}: must be {spec.describe()} (got {value!r}).")
    if spec.kind in ("price", "count") and value < 0:
        raise PriceError(f"{where}: must be {spec.describe()} (got {value!r}) — prices and counts cannot be "
                         f"negative.")
    if spec.kind in ("positive", "size") and value <= 0:
        raise PriceError(f"{where}: must be {spec.describe()} (got {value!r}).")
    return float(value) if spec.kind in ("price", "positive") else value


def _build(section: str, key: str, raw: dict[str, Any], *, table: str, shipped: bool, complete: bool,
           fix: str) -> PriceEntry:
    """Validate one entry's fields and build its dataclass.

    table: how messages name the entry, e.g. 'prices.toml [gpus."lambda/h100-sxm"]'.
    complete: False for a new adaptlab.toml entry, whose optional fields get defaults.
    """
    specs = {spec.name: spec for spec in _SPECS[section]}
    unknown = sorted(set(raw) - set(specs))
    if unknown:
        field = unknown[0]
        raise PriceError(f"{table} {field}: unknown field{_close(field, list(specs))} — {section} entries take "
                         f"{', '.join(specs)}.")
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        if name in raw:
            values[name] = _coerce(spec, raw[name], f"{table} {name}")
    for name, spec in specs.items():
        if name in values:
            continue
        required = spec.shipped_required if shipped else (spec.user_required or complete)
        if required:
            needed = [s.name for s in specs.values() if (s.shipped_required if shipped else s.user_required)]
            raise PriceError(f"{table} {name}: missing — {fix} (a {section} entry needs {', '.join(needed)}).")
        values[name] = spec.default(values) if spec.default else None
    if shipped and not values["source"].startswith(("http://", "https://")):
        raise PriceError(f"{table} source: must be the http(s) URL of the pricing page (got {values['source']!r}).")
    return _CLASSES[section](key=key, **values)


# --------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class PriceCatalog:
    api_models: dict[str, ApiModelPrice]
    gpus: dict[str, GpuPrice]
    embedding_apis: dict[str, EmbeddingPrice]
    vector_db: dict[str, HostingTier]
    redis_hosting: dict[str, HostingTier]
    overridden: frozenset[str]  # "section/key" of the entries that came from (or were changed by) adaptlab.toml

    def _lookup(self, section: str, key: str) -> PriceEntry:
        table: dict[str, PriceEntry] = getattr(self, section)
        if key in table:
            return table[key]
        raise PriceError(f"no {section} price for {key!r}{_close(key, list(table))} — known keys: "
                         f"{', '.join(table) or 'none'}. Use one of them, or add it in adaptlab.toml as "
                         f"[prices.{section}.\"{key}\"] ({', '.join(_needed(section))}); `adaptlab prices` "
                         f"lists the catalog.")

    def api_model(self, key: str) -> ApiModelPrice:
        return self._lookup("api_models", key)  # type: ignore[return-value]

    def gpu(self, key: str) -> GpuPrice:
        return self._lookup("gpus", key)  # type: ignore[return-value]

    def embedding(self, key: str) -> EmbeddingPrice:
        return self._lookup("embedding_apis", key)  # type: ignore[return-value]

    def hosting(self, section: str, key_or_provider: str, needed_gb: float) -> HostingTier:
        """A hosting tier for `needed_gb` of data.

        A tier key gives that tier (PriceError if it is too small, naming a bigger one); a provider name or key
        prefix ('qdrant-cloud', 'Qdrant Cloud', 'self-hosted') gives that provider's cheapest tier that holds
        `needed_gb`, by monthly_cost(needed_gb).
        """
        if section not in HOSTING_SECTIONS:
            raise PriceError(f"{section!r} is not a hosting section — use one of {', '.join(HOSTING_SECTIONS)}.")
        if not isinstance(needed_gb, (int, float)) or not math.isfinite(needed_gb) or needed_gb < 0:
            raise ValueError(f"needed_gb must be a finite number >= 0 (got {needed_gb!r})")
        tiers: dict[str, HostingTier] = getattr(self, section)
        if key_or_provider in tiers:
            tier = tiers[key_or_provider]
            if needed_gb <= tier.capacity_gb:
                return tier
            bigger = sorted((t for t in tiers.values() if t.provider == tier.provider and t.capacity_gb >= needed_gb),
                            key=lambda t: (t.monthly_cost(needed_gb), t.key))
            hint = (f"use {bigger[0].key!r} (holds {bigger[0].capacity_gb:g} GB, "
                    f"${bigger[0].monthly_cost(needed_gb):,.2f}/month) or the provider name {tier.provider!r} to "
                    f"get its cheapest tier that fits" if bigger else
                    f"no {tier.provider} tier in the catalog holds that much; add one in adaptlab.toml as "
                    f"[prices.{section}.\"KEY\"] or choose another provider")
            raise PriceError(f"{section} tier {tier.key!r} holds at most {tier.capacity_gb:g} GB but "
                             f"{needed_gb:.3g} GB is needed — {hint}.")
        wanted = key_or_provider.strip().casefold()
        matches = [t for t in tiers.values()
                   if wanted and (t.provider.casefold() == wanted or t.key.casefold().split("/", 1)[0] == wanted
                                  or t.key.casefold().startswith(wanted))]
        if not matches:
            providers = sorted({t.provider for t in tiers.values()})
            raise PriceError(f"no {section} tier or provider {key_or_provider!r}"
                             f"{_close(key_or_provider, list(tiers) + providers)} — tiers: {', '.join(tiers)}; "
                             f"providers: {', '.join(providers)}.")
        fitting = [t for t in matches if t.capacity_gb >= needed_gb]
        if not fitting:
            largest = max(matches, key=lambda t: t.capacity_gb)
            raise PriceError(f"no {section} tier of {key_or_provider!r} holds {needed_gb:.3g} GB (largest: "
                             f"{largest.key!r}, {largest.capacity_gb:g} GB) — choose another provider or add a "
                             f"bigger tier in adaptlab.toml as [prices.{section}.\"KEY\"].")
        return min(fitting, key=lambda t: (t.monthly_cost(needed_gb), t.capacity_gb, t.key))

    def entries(self) -> list[tuple[str, PriceEntry]]:
        """(section, entry) for every entry, section by section in SECTIONS order."""
        return [(section, entry) for section in SECTIONS for entry in getattr(self, section).values()]

    def stale(self, today: datetime.date, max_age_days: int) -> list[tuple[str, PriceEntry]]:
        """Entries whose as_of is more than `max_age_days` before `today`, or that have no as_of; oldest first."""
        old = [(section, entry) for section, entry in self.entries()
               if entry.as_of is None or (today - entry.as_of).days > max_age_days]
        return sorted(old, key=lambda item: item[1].as_of or datetime.date.min)


def _needed(section: str) -> list[str]:
    return [spec.name for spec in _SPECS[section] if spec.user_required]


def _read_shipped(path: Path | None) -> tuple[str, dict[str, Any]]:
    if path is None:
        name = f"adaptlab/cost/{PACKAGED_FILE}"
        try:
            text = resources.files("adaptlab.cost").joinpath(PACKAGED_FILE).read_text(encoding="utf-8")
        except OSError as exc:
            raise PriceError(f"{name}: the packaged price catalog cannot be read ({exc}) — reinstall adaptlab "
                             f"(pip install -e .).") from exc
    else:
        name = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PriceError(f"{name}: cannot read the price catalog ({exc.strerror or exc}).") from exc
    try:
        return name, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PriceError(f"{name}: not valid TOML ({exc}) — fix the syntax at the line shown.") from exc


def load_catalog(overrides: dict[str, dict[str, dict]] | None = None, *, path: Path | None = None,
                 origin: str = USER_SOURCE) -> PriceCatalog:
    """The shipped catalog (or `path`) with `overrides` (config.prices: section -> key -> fields) applied.

    An override of an existing key updates only the fields it gives (e.g. just usd_per_hour); its source
    becomes the override's (default "adaptlab.toml") and its as_of the override's (default: undated), since the
    shipped date and page no longer describe the number. A new key must give every required field.
    origin: how messages name the overrides' file.
    """
    name, data = _read_shipped(path)
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise PriceError(f"{name}: unknown section [{unknown[0]}]{_close(unknown[0], list(SECTIONS))} — sections "
                         f"are {', '.join(SECTIONS)}.")
    raw: dict[str, dict[str, dict[str, Any]]] = {}
    tables: dict[str, dict[str, PriceEntry]] = {}
    for section in SECTIONS:
        entries = data.get(section, {})
        if not isinstance(entries, dict):
            raise PriceError(f"{name}: [{section}] must hold tables like [{section}.\"provider/name\"].")
        raw[section] = {}
        tables[section] = {}
        for key, fields in entries.items():
            table = f"{name} [{section}.\"{key}\"]"
            if not isinstance(fields, dict):
                raise PriceError(f"{table}: must be a table of fields, e.g. [{section}.\"{key}\"] then one "
                                 f"field = value per line.")
            raw[section][key] = dict(fields)
            tables[section][key] = _build(section, key, fields, table=table, shipped=True, complete=True,
                                          fix=f"add it to {name}")
    overridden: set[str] = set()
    for section, entries in (overrides or {}).items():
        if section not in SECTIONS:
            raise PriceError(f"{origin} [prices.{section}]: unknown price section{_close(section, list(SECTIONS))}"
                             f" — use one of {', '.join(SECTIONS)}.")
        if not isinstance(entries, dict):
            raise PriceError(f"{origin} [prices.{section}]: must hold tables like "
                             f"[prices.{section}.\"provider/name\"].")
        for key, fields in entries.items():
            table = f"{origin} [prices.{section}.\"{key}\"]"
            if not isinstance(fields, dict):
                raise PriceError(f"{table}: must be a table of fields (field = value lines under the header).")
            if key in raw[section]:
                merged = {**raw[section][key], "source": USER_SOURCE}
                merged.pop("as_of", None)
                merged.update(fields)
                tables[section][key] = _build(section, key, merged, table=table, shipped=False, complete=False,
                                              fix=f"add it under {table}")
            else:
                tables[section][key] = _build(section, key, fields, table=table, shipped=False, complete=False,
                                              fix=f"add it under {table}")
            overridden.add(f"{section}/{key}")
    return PriceCatalog(**tables, overridden=frozenset(overridden))  # type: ignore[arg-type]
