"""The price catalog: the shipped file is complete and sourced, overrides merge and are validated, hosting tiers are
picked by capacity and price, and stale entries are found."""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import pytest

from adaptlab.config import AdaptlabConfig
from adaptlab.cost.catalog import (
    DEFAULT_MAX_AGE_DAYS,
    SECTIONS,
    ApiModelPrice,
    GpuPrice,
    HostingTier,
    PriceCatalog,
    PriceError,
    load_catalog,
)
from adaptlab.errors import ConfigError


@pytest.fixture(scope="module")
def shipped() -> PriceCatalog:
    return load_catalog()


# --------------------------------------------------------------------------- the shipped catalog


def test_shipped_catalog_is_complete_dated_and_sourced(shipped: PriceCatalog) -> None:
    assert shipped.overridden == frozenset()
    entries = shipped.entries()
    assert {section for section, _ in entries} == set(SECTIONS)
    for section, entry in entries:
        assert entry.source.startswith(("https://", "http://")), (section, entry.key)
        assert isinstance(entry.as_of, datetime.date), (section, entry.key)
        assert entry.as_of <= datetime.date(2026, 11, 23), (section, entry.key)  # no date from the future
        assert entry.provider, (section, entry.key)
        prices = [value for name, value in vars(entry).items()
                  if name.endswith(("_per_mtok", "usd_per_hour", "usd_per_month", "usd_per_gb_month"))]
        assert prices and all(math.isfinite(p) and p >= 0 for p in prices), (section, entry.key)
    for model in shipped.api_models.values():
        assert model.cached_read_per_mtok <= model.input_per_mtok <= model.cache_write_per_mtok, model.key
        assert model.output_per_mtok >= model.input_per_mtok, model.key
    for tier in list(shipped.vector_db.values()) + list(shipped.redis_hosting.values()):
        assert tier.capacity_gb > 0, tier.key


def test_required_gpus_each_from_two_providers(shipped: PriceCatalog) -> None:
    by_gpu: dict[str, set[str]] = {}
    for gpu in shipped.gpus.values():
        assert gpu.peak_tflops > 0 and gpu.memory_gb > 0, gpu.key
        by_gpu.setdefault(gpu.gpu, set()).add(gpu.provider)
    for name in ("H100", "A100", "L4", "RTX 4090", "A10"):
        assert len(by_gpu.get(name, ())) >= 2, (name, by_gpu.get(name))
    assert {gpu.memory_gb for gpu in shipped.gpus.values() if gpu.gpu == "A100"} >= {40.0, 80.0}


def test_shipped_covers_the_keys_the_workload_defaults_name(shipped: PriceCatalog) -> None:
    assert shipped.api_model("openai/gpt-4o-mini").input_per_mtok == pytest.approx(0.15)
    assert shipped.gpu("lambda/h100-sxm").gpu == "H100"
    assert shipped.gpu("gcp/l4").gpu == "L4"
    assert shipped.embedding("openai/text-embedding-3-small").dimension == 1536
    assert shipped.hosting("vector_db", "self-hosted", 50).monthly_cost(50) == 0
    assert shipped.hosting("redis_hosting", "self-hosted", 3).monthly_cost(3) == 0
    free = [e for s, e in shipped.entries() if s in ("vector_db", "redis_hosting") and e.key.startswith("self-hosted/")]
    assert free and all("runs on a machine you already pay for" in e.note for e in free)


def test_lookup_of_an_unknown_key_names_close_and_known_keys(shipped: PriceCatalog) -> None:
    with pytest.raises(PriceError) as info:
        shipped.gpu("lambda/h100-sx")
    message = str(info.value)
    assert "'lambda/h100-sxm'" in message and "known keys" in message and '[prices.gpus."lambda/h100-sx"]' in message
    assert isinstance(info.value, ConfigError)
    with pytest.raises(PriceError, match="api_models"):
        shipped.api_model("nobody/model")
    with pytest.raises(PriceError, match="embedding_apis"):
        shipped.embedding("nobody/embedder")


# --------------------------------------------------------------------------- overrides


def test_partial_override_of_an_existing_key(shipped: PriceCatalog) -> None:
    catalog = load_catalog({"gpus": {"lambda/h100-sxm": {"usd_per_hour": 2.5}}})
    gpu = catalog.gpu("lambda/h100-sxm")
    base = shipped.gpu("lambda/h100-sxm")
    assert gpu.usd_per_hour == 2.5
    assert (gpu.gpu, gpu.peak_tflops, gpu.memory_gb, gpu.provider) == (base.gpu, base.peak_tflops, base.memory_gb,
                                                                        base.provider)
    # The shipped page and date no longer describe the number: the override is the source, undated until given.
    assert gpu.source == "adaptlab.toml" and gpu.as_of is None
    assert catalog.overridden == frozenset({"gpus/lambda/h100-sxm"})
    assert catalog.gpu("lambda/a10") == shipped.gpu("lambda/a10")

    dated = load_catalog({"gpus": {"lambda/h100-sxm": {"usd_per_hour": 2.5, "as_of": "2026-11-01",
                                                       "source": "https://lambda.ai/pricing"}}})
    assert dated.gpu("lambda/h100-sxm").as_of == datetime.date(2026, 11, 1)
    assert dated.gpu("lambda/h100-sxm").source == "https://lambda.ai/pricing"


def test_new_keys_need_the_required_fields_and_get_defaults() -> None:
    catalog = load_catalog({
        "api_models": {"local/vllm-llama": {"provider": "Our vLLM", "input_per_mtok": 0.05, "output_per_mtok": 0.1}},
        "vector_db": {"my-cloud/8gb": {"provider": "My Cloud", "usd_per_month": 40, "capacity_gb": 8,
                                      "as_of": datetime.date(2026, 10, 1)}},
    })
    model = catalog.api_model("local/vllm-llama")
    assert isinstance(model, ApiModelPrice)
    assert model.cached_read_per_mtok == model.cache_write_per_mtok == 0.05  # no caching discount by default
    assert model.source == "adaptlab.toml" and model.as_of is None and model.note == ""
    tier = catalog.hosting("vector_db", "my-cloud/8gb", 4)
    assert isinstance(tier, HostingTier) and tier.usd_per_gb_month == 0.0 and tier.monthly_cost(4) == 40.0
    assert catalog.overridden == frozenset({"api_models/local/vllm-llama", "vector_db/my-cloud/8gb"})

    with pytest.raises(PriceError) as info:
        load_catalog({"gpus": {"home/rtx3090": {"provider": "Home", "gpu": "RTX 3090", "usd_per_hour": 0.1}}})
    assert 'adaptlab.toml [prices.gpus."home/rtx3090"] peak_tflops: missing' in str(info.value)


@pytest.mark.parametrize("overrides, needles", [
    ({"gpus": {"lambda/h100-sxm": {"usd_per_hr": 2.0}}},
     ['adaptlab.toml [prices.gpus."lambda/h100-sxm"] usd_per_hr', "unknown field", "'usd_per_hour'"]),
    ({"api_models": {"openai/gpt-4o": {"input_per_mtok": -1}}},
     ['adaptlab.toml [prices.api_models."openai/gpt-4o"] input_per_mtok', "cannot be negative"]),
    ({"gpu": {"lambda/h100-sxm": {"usd_per_hour": 2.0}}},
     ["adaptlab.toml [prices.gpu]", "unknown price section", "'gpus'"]),
    ({"embedding_apis": {"openai/text-embedding-3-small": {"usd_per_mtok": "cheap"}}},
     ['[prices.embedding_apis."openai/text-embedding-3-small"] usd_per_mtok', "plain number"]),
    ({"embedding_apis": {"x/y": {"provider": "X", "usd_per_mtok": 0.1, "dimension": 0}}},
     ['[prices.embedding_apis."x/y"] dimension', "> 0"]),
    ({"redis_hosting": {"upstash/free": {"as_of": "last week"}}},
     ['[prices.redis_hosting."upstash/free"] as_of', "2026-01-31"]),
    ({"vector_db": {"pinecone/standard": 50}}, ['[prices.vector_db."pinecone/standard"]', "table of fields"]),
])
def test_bad_overrides_name_the_table_and_field(overrides: dict, needles: list[str]) -> None:
    with pytest.raises(PriceError) as info:
        load_catalog(overrides)
    for needle in needles:
        assert needle in str(info.value), (needle, str(info.value))


def test_overrides_come_from_adaptlab_toml_through_the_config(tmp_path: Path) -> None:
    import tomllib

    text = '[prices.gpus."gcp/l4"]\nusd_per_hour = 0.55\nas_of = 2026-11-20\nsource = "https://cloud.google.com/x"\n'
    config = AdaptlabConfig.model_validate(tomllib.loads(text))
    catalog = load_catalog(config.prices)
    assert catalog.gpu("gcp/l4").usd_per_hour == 0.55
    assert catalog.gpu("gcp/l4").as_of == datetime.date(2026, 11, 20)
    assert config.model_dump()["prices"]["gpus"]["gcp/l4"]["as_of"] == "2026-11-20"  # JSON-printable


def test_a_broken_shipped_file_names_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "prices.toml"
    bad.write_text('[gpus."a/b"]\ngpu = "H100"\nprovider = "A"\nusd_per_hour = 1.0\npeak_tflops = 989.0\n'
                   'memory_gb = 80.0\nas_of = 2026-01-01\nsource = "somewhere"\n')
    with pytest.raises(PriceError, match=r'prices.toml \[gpus."a/b"\] source: must be the http\(s\) URL'):
        load_catalog(path=bad)
    bad.write_text('[gpus."a/b"]\ngpu = "H100"\nprovider = "A"\nusd_per_hour = 1.0\n')
    with pytest.raises(PriceError, match=r'\[gpus."a/b"\] as_of: missing'):
        load_catalog(path=bad)
    bad.write_text("[gpus\n")
    with pytest.raises(PriceError, match="not valid TOML"):
        load_catalog(path=bad)
    bad.write_text('[tpus."x"]\nprovider = "x"\n')
    with pytest.raises(PriceError, match=r"unknown section \[tpus\]"):
        load_catalog(path=bad)


# --------------------------------------------------------------------------- hosting tiers


def _tiers(**tiers: tuple[str, float, float, float]) -> dict:
    return {"vector_db": {key.replace("_", "/", 1): {"provider": provider, "usd_per_month": month,
                                                     "usd_per_gb_month": per_gb, "capacity_gb": capacity}
                          for key, (provider, month, per_gb, capacity) in tiers.items()}}


def test_hosting_by_key_provider_and_capacity() -> None:
    catalog = load_catalog(_tiers(acme_small=("Acme DB", 10.0, 0.0, 2.0), acme_large=("Acme DB", 40.0, 0.0, 16.0),
                                  acme_usage=("Acme DB", 0.0, 4.0, 1000.0)))
    assert catalog.hosting("vector_db", "acme/small", 1.5).key == "acme/small"
    # Cheapest fitting tier by monthly_cost(needed_gb): usage-based wins at 1 GB ($4), the flat large tier at 12 GB.
    assert catalog.hosting("vector_db", "Acme DB", 1.0).key == "acme/usage"
    assert catalog.hosting("vector_db", "acme", 2.0).key == "acme/usage"  # $8 < $10
    assert catalog.hosting("vector_db", "acme", 12.0).key == "acme/large"  # $40 < $48
    assert catalog.hosting("vector_db", "acme DB", 500.0).key == "acme/usage"

    with pytest.raises(PriceError) as info:
        catalog.hosting("vector_db", "acme/small", 3.0)
    message = str(info.value)
    assert "'acme/small' holds at most 2 GB" in message and "'acme/usage'" in message and "'Acme DB'" in message
    with pytest.raises(PriceError, match="largest: 'acme/usage'"):
        catalog.hosting("vector_db", "acme", 5000.0)
    with pytest.raises(PriceError, match="providers: .*Acme DB"):
        catalog.hosting("vector_db", "nobody", 1.0)
    with pytest.raises(PriceError, match="not a hosting section"):
        catalog.hosting("gpus", "acme", 1.0)


def test_hosting_on_the_shipped_catalog(shipped: PriceCatalog) -> None:
    assert shipped.hosting("vector_db", "qdrant-cloud/free", 0.5).monthly_cost(0.5) == 0
    with pytest.raises(PriceError, match="qdrant-cloud/free"):
        shipped.hosting("vector_db", "qdrant-cloud/free", 3.0)
    assert shipped.hosting("vector_db", "Pinecone", 1.0).key == "pinecone/starter"
    assert shipped.hosting("vector_db", "pinecone", 10.0).key == "pinecone/standard"
    assert shipped.hosting("redis_hosting", "redis-cloud", 0.1).key == "redis-cloud/essentials-250mb"
    assert shipped.hosting("redis_hosting", "Upstash", 0.2).key == "upstash/free"


# --------------------------------------------------------------------------- staleness


def test_stale_with_a_fixed_today() -> None:
    catalog = load_catalog({"gpus": {
        "a/old": {"provider": "A", "gpu": "L4", "usd_per_hour": 1, "peak_tflops": 121, "memory_gb": 24,
                  "as_of": datetime.date(2025, 1, 1)},
        "a/fresh": {"provider": "A", "gpu": "L4", "usd_per_hour": 1, "peak_tflops": 121, "memory_gb": 24,
                    "as_of": datetime.date(2025, 6, 1)},
        "a/undated": {"provider": "A", "gpu": "L4", "usd_per_hour": 1, "peak_tflops": 121, "memory_gb": 24},
    }})
    today = datetime.date(2025, 7, 1)
    mine = [entry.key for _, entry in catalog.stale(today, DEFAULT_MAX_AGE_DAYS) if entry.key.startswith("a/")]
    assert mine == ["a/undated", "a/old"]  # undated first, then oldest first
    exact = datetime.date(2025, 1, 1) + datetime.timedelta(days=DEFAULT_MAX_AGE_DAYS)
    assert "a/old" not in [e.key for _, e in catalog.stale(exact, DEFAULT_MAX_AGE_DAYS)]  # exactly 180 days: fine
    assert "a/old" in [e.key for _, e in catalog.stale(exact + datetime.timedelta(days=1), DEFAULT_MAX_AGE_DAYS)]
    everything = catalog.stale(datetime.date(2100, 1, 1), 0)
    assert len(everything) == len(catalog.entries())
    assert all(isinstance(section, str) for section, _ in everything)


def test_gpu_price_is_a_frozen_dataclass(shipped: PriceCatalog) -> None:
    gpu = shipped.gpu("runpod/l4-serverless")
    assert isinstance(gpu, GpuPrice)
    with pytest.raises(AttributeError):
        gpu.usd_per_hour = 0  # type: ignore[misc]
