"""A synthetic but realistic bench result, for the report tests: ``sample_dict`` is the JSON `adaptlab bench`
writes as results.json (its keys match the records exactly), ``sample_results`` the validated `BenchResult`.
Deterministic: the same arguments give the same result.

Import it as ``from sample_results import sample_results`` from tests in this folder, or as
``from bench.sample_results import sample_results`` from any other test (tests/ is on sys.path via conftest).
"""

from __future__ import annotations

import random
from typing import Any

from adaptlab.bench.results import BenchResult

MONTHS = 12
QPD = 5000.0
XSS = "<script>alert(1)</script>"

# name → (kind, family, cached, wraps, quality mean, latency p50 ms, prompt tokens, completion tokens)
KNOWLEDGE = [
    ("prompt", "prompt", "prompt", False, None, 0.074, 690.0, 51.5, 32.2),
    ("rag", "rag", "rag", False, None, 0.186, 4650.0, 660.6, 40.4),
    ("rag+cache", "cached", "rag", True, "rag", 0.181, 2100.0, 410.2, 25.1),
    ("finetuned", "finetuned", "finetuned", False, None, 0.121, 720.0, 48.0, 28.0),
    ("finetuned+rag", "finetuned_rag", "finetuned_rag", False, None, 0.192, 4800.0, 655.0, 30.5),
    ("prompt+cache", "cached", "prompt", True, "prompt", 0.070, 300.0, 30.1, 19.0),
]
JSON_TASK = [
    ("prompt", "prompt", "prompt", False, None, 0.62, 410.0, 180.0, 22.0),
    ("finetuned", "finetuned", "finetuned", False, None, 0.91, 380.0, 60.0, 21.0),
    ("finetuned+cache", "cached", "finetuned", True, "finetuned", 0.90, 150.0, 40.0, 14.0),
    ("rag", "rag", "rag", False, None, 0.55, 3900.0, 700.0, 25.0),
]


def _metric(value: float | None, rng: random.Random, n: int, description: str, width: float = 0.05) -> dict:
    if value is None:
        return {"value": None, "low": None, "high": None, "n": n, "description": description, "repeat_spread": None}
    spread = width * (0.5 + rng.random())
    return {"value": value, "low": max(0.0, value - spread), "high": value + spread, "n": n,
            "description": description, "repeat_spread": None}


def _cases(name: str, quality: float, p50: float, metric: str, rng: random.Random, cached: bool,
           n: int) -> list[dict]:
    out = []
    for i in range(n):
        answer = f"Answer {i} of {name}: the virus binds ACE2 & spreads <fast>."
        if i == 3:
            answer = f"{XSS} injected answer"
        status = ("hit" if rng.random() < 0.3 else "miss") if cached else "none"
        score = round(min(1.0, max(0.0, rng.gauss(quality, 0.15))), 4)
        out.append({
            "case_id": str(100 + i), "repeat": 0, "seed": 0,
            "question": f"Question {i}: what does \"ACE2\" <do>?", "expected": f"expected answer {i}",
            "answer": answer, "refused": i == 7, "latency_ms": p50 * (0.5 + rng.random()),
            "prompt_tokens": 50 + i, "completion_tokens": 20 + i % 7, "cache_status": status,
            "cited": [], "retrieved": [],
            "scores": {metric: score, "exact_match": float(score > 0.9), "latency_ms": p50, "nan_score": float("nan"),
                       "missing": None},
            "error": "timeout after 30 s" if i == 9 else None,
        })
    return out


def _tco(name: str, family: str, cached: bool, hit: float, per_answer: float, prompt: float, completion: float,
         training: float) -> dict:
    inference = per_answer * QPD * (365 / 12) * (1 - hit)
    lines: dict[str, Any] = {"inference": {"total": inference * MONTHS, "monthly": [inference] * MONTHS, "note": ""}}
    if training:
        lines["training"] = {"total": training, "monthly": [training] + [0.0] * (MONTHS - 1),
                             "note": "0.40 GPU h per run"}
    if family in ("rag", "finetuned_rag"):
        lines["vector_db"] = {"total": 12 * 25.0, "monthly": [25.0] * MONTHS, "note": "pinecone/standard"}
    if cached:
        lines["cache_hosting"] = {"total": 12 * 5.0, "monthly": [5.0] * MONTHS, "note": "upstash <pay-as-you-go>"}
    monthly = [sum(line["monthly"][m] for line in lines.values()) for m in range(MONTHS)]
    cumulative, total = [], 0.0
    for value in monthly:
        total += value
        cumulative.append(total)
    return {"name": name, "family": family, "cached": cached, "hit_rate": hit, "total": total,
            "usd_per_answer": per_answer, "prompt_tokens": prompt, "completion_tokens": completion,
            "monthly_totals": monthly, "cumulative": cumulative, "lines": lines,
            "prefix_cache_note": "prefix caching: 30% cheaper prompt tokens" if name == "rag" else ""}


def _advice(rows: list[tuple], metrics: dict[str, dict], metric: str, excluded_name: str) -> dict:
    entries = []
    for name, _kind, family, cached, _wraps, _q, _p50, prompt, completion in rows:
        per_answer = (prompt * 0.15 + completion * 0.6) / 1e6
        training = 1.5 if family in ("finetuned", "finetuned_rag") else 0.0
        hit = 0.31 if cached else 0.0
        tco = _tco(name, family, cached, hit, per_answer, prompt, completion, training)
        q = metrics[name]
        entries.append({
            "rank": None, "name": name, "family": family, "cached": cached, "hit_rate": hit,
            "hit_rate_source": "measured on the query log" if cached else "", "tier": 1,
            "quality": {"metric": metric, "value": q["value"], "low": q["low"], "high": q["high"], "n": q["n"],
                        "measured": True},
            "tokens_measured": True, "total_usd": tco["total"], "reasons": [], "excluded": [], "tco": tco})
    best = max(entries, key=lambda e: e["quality"]["value"])
    for e in entries:
        if e["name"] == excluded_name:
            e["excluded"] = ["knowledge changes weekly; retraining monthly <lags> → no fine-tuned-only model"]
            continue
        if e is best:
            e["reasons"].append(f"best {metric}: {e['quality']['value']:.3f}")
        elif e["quality"]["value"] < best["quality"]["value"] - 0.05:
            e["tier"] = 2
            e["reasons"].append(f"{e['name']} vs {best['name']}: {metric} {e['quality']['value']:.3f} vs "
                                f"{best['quality']['value']:.3f} (diff -0.08, p = 0.012, paired bootstrap, n = 60) "
                                "→ significantly worse: ranked below every strategy of best quality")
        else:
            e["reasons"].append(f"{e['name']} vs {best['name']}: {metric} (diff -0.01, p = 0.61, paired bootstrap, "
                                "n = 60) → difference not significant: the cheaper one wins")
        e["reasons"].append(f"TCO ${e['total_usd']:,.0f} over 12 months")
    ranked = sorted((e for e in entries if not e["excluded"]), key=lambda e: (e["tier"], e["total_usd"]))
    for i, e in enumerate(ranked, start=1):
        e["rank"] = i
    winner = ranked[0]
    winner["reasons"].append("cheapest of its quality tier")
    ordered = ranked + [e for e in entries if e["excluded"]]
    return {
        "title": "bench", "estimate": False, "run_id": "b3nch", "metric": metric, "months": MONTHS,
        "queries_per_day": QPD, "recommendation": winner["name"], "strategies": ordered,
        "break_even": [{"a": ranked[0]["name"], "b": ranked[-1]["name"], "queries_per_day": 1234.5,
                        "cheaper_below": ranked[-1]["name"]}],
        "sensitivity": [{"input": "queries/day", "minus_50": winner["name"], "base": winner["name"],
                         "plus_50": winner["name"], "changes_winner": False},
                        {"input": "cache hit rate", "minus_50": ranked[-1]["name"], "base": winner["name"],
                         "plus_50": winner["name"], "changes_winner": True}],
        "provenance": ["traffic: 5,000 queries/day (declared)", "serving GPU L4 at <vendor> $0.80/h (catalog)"],
        "notes": ["quality measured on 60 cases: small differences are noise"],
    }


def _cache() -> dict:
    thresholds = [round(0.80 + 0.02 * i, 2) for i in range(10)]
    sweep = []
    for t in thresholds:
        hits = round(400 * (1.0 - t) * 2.2)
        v = hits / 400
        sweep.append({"threshold": t, "hit_rate": {"value": v, "low": max(0.0, v - 0.04), "high": min(1.0, v + 0.04)},
                      "hits": hits, "n": 400})
    rows = []
    for guard in (False, True):
        for t in thresholds:
            fh = max(0.0, (0.95 - t) * (0.4 if guard else 0.8))
            rate = {"k": int(fh * 300), "n": 300, "value": fh, "low": max(0.0, fh - 0.02), "high": fh + 0.02}
            rows.append({"threshold": t, "guard": guard, "hits": 10, "hit_rate": rate, "false_hit_rate": rate,
                         "precision": rate, "recall": rate})
    pairs = {"source": "quora-pairs sample", "embedder": "minilm", "n_pairs": 600, "n_duplicates": 300,
             "n_non_duplicates": 300, "confidence": 0.95, "target_false_hit_rate": 0.02,
             "recommended_threshold": 0.94, "recommended_threshold_guard": 0.9,
             "recommendation": {"no_guard": "without the guard: 0.94 — hit rate 12.0%",
                                "guard": "with the guard: 0.90 — hit rate 22.0%"},
             "guard_rejected_duplicates": 4, "guard_rejected_non_duplicates": 31, "guard_examples": [], "rows": rows}
    log = {"verdict": "35% of queries repeat an earlier one: a cache pays off.",
           "exact_repeat_rate": {"k": 140, "n": 400, "value": 0.35, "low": 0.30, "high": 0.40},
           "top_repeated": [{"question": "What is <COVID-19>?", "count": 12},
                            {"question": "Is it airborne?", "count": 7}]}
    return {"mode": "semantic", "threshold": 0.9, "guard": True, "warm": {"questions": 200, "seconds": 12.5},
            "sweep": sweep, "pairs_sweep": pairs, "n_queries": 400, "distinct": 260, "log": log}


def _data_check() -> dict:
    return {
        "ready": False, "reasons": ["212 clean examples, 300 needed"], "examples": 240, "clean": 212,
        "min_examples": 300, "has_eval": True, "invalid_lines": 3, "dropped": {"duplicate": 20, "leak": 8},
        "sets": [{"role": "train", "path": "data/train.jsonl", "records": 243, "fingerprint": "ab" * 32,
                  "version": "abababababab", "kind": "chat", "invalid": 3}],
        "findings": [{"check": "leak", "severity": "error", "message": "training example equals eval case <17>",
                      "fix": "drop it", "where": "data/train.jsonl:12", "other": "cases.jsonl:17"},
                     {"check": "balance", "severity": "warning", "message": "label imbalance 14×", "fix": "",
                      "where": None, "other": None}],
        "label_counts": {"PlayMusic": 40, "GetWeather": 3}, "balance_ratio": 14.0,
        "lengths": {"count": 240, "min": 20, "p50": 61, "p95": 140, "max": 300,
                    "histogram": [{"from": 20, "to": 300, "count": 240}], "max_tokens": 256, "over_limit": 2},
    }


def _finetuning(rng: random.Random, n_cases: int) -> dict:
    """A learning curve still rising (provisional), two training seeds and a forgetting probe."""
    def adapter(label: str, share: float, seed: int, examples: int, value: float) -> dict:
        return {"label": label, "share": share, "seed": seed, "examples": examples, "fingerprint": f"{seed}{share}" * 8,
                "reused": False, "strategy": "finetuned", "steps": int(40 * share), "seconds": 200 * share,
                "tokens_per_second": 110.0, "train_loss": [[1, 2.5], [int(40 * share), 0.5]],
                "eval_loss": [[int(20 * share), 0.8], [int(40 * share), 0.6]], "task_metric_name": "field.intent",
                "task_metric": [[int(20 * share), value - 0.1], [int(40 * share), value]],
                "best_step": int(40 * share), "quality": _metric(value, rng, n_cases, "intent field equal")}

    return {
        "strategy": "finetuned", "metric": "field.intent",
        "adapters": [adapter("25% of the data", 0.25, 0, 50, 0.31), adapter("50% of the data", 0.5, 0, 100, 0.4),
                     adapter("all the data", 1.0, 0, 200, 0.5), adapter("all the data, seed +1", 1.0, 1, 200, 0.46)],
        "fit": {"gain_per_doubling": 0.095, "low": 0.02, "high": 0.17, "intercept": -0.23,
                "at_double": {"value": 0.59, "low": 0.45, "high": 0.72, "n": n_cases}, "examples": 200,
                "rising": True},
        "quality": _metric(0.48, rng, n_cases, "intent field equal"), "baseline": "prompt",
        "baseline_quality": _metric(0.82, rng, n_cases, "intent field equal"), "train_seeds": 2,
        "seed_spread": 0.028,
        "provisional": ["the learning curve still rises at 200 examples: +0.095 field.intent per doubling of the "
                        "data [+0.020, +0.170]"],
        "forgetting": {"cases_path": "probe.jsonl", "metric": "token_f1",
                       "base": _metric(0.12, rng, 10, "Token-overlap F1"),
                       "adapted": _metric(0.08, rng, 10, "Token-overlap F1"),
                       "comparison": {"a": 0.12, "b": 0.08, "diff": -0.04, "low": -0.09, "high": 0.01,
                                      "p_value": 0.2, "n": 10, "test": "paired bootstrap", "significant": False,
                                      "regressed": False}},
    }


def sample_results(title: str = "COVID-QA knowledge questions", *, with_cache: bool = True,
                   with_data_check: bool = True, json_task: bool = False, n_cases: int = 60,
                   seed: int = 0) -> BenchResult:
    """One bench result (see `sample_dict`), validated."""
    return BenchResult.model_validate(sample_dict(title, with_cache=with_cache, with_data_check=with_data_check,
                                                  json_task=json_task, n_cases=n_cases, seed=seed))


def sample_dict(title: str = "COVID-QA knowledge questions", *, with_cache: bool = True,
                with_data_check: bool = True, json_task: bool = False, n_cases: int = 60, seed: int = 0) -> dict:
    """One bench result as JSON: 6 strategies (COVID-QA) or 4 (``json_task``: SNIPS intents), cached variants,
    advice with a ranking and one excluded strategy, cache sweep rows, a data check and measurement notes."""
    rng = random.Random(seed)
    rows = JSON_TASK if json_task else KNOWLEDGE
    metric = "field.intent" if json_task else "token_f1"
    if not with_cache:
        rows = [r for r in rows if not r[3]]
    strategies, quality = [], {}
    for name, kind, family, cached, wraps, q, p50, prompt, completion in rows:
        metrics = {
            metric: _metric(q, rng, n_cases, "Token-overlap F1 <SQuAD>" if not json_task else "intent field equal"),
            "exact_match": _metric(q / 3, rng, n_cases, "Answer equals a reference answer"),
            "citation_precision": _metric(None, rng, n_cases, "Share of citations that support the answer"),
            "latency_ms": _metric(p50 * 1.05, rng, n_cases, "Wall time of one answer, milliseconds", 80.0),
        }
        if family in ("rag", "finetuned_rag"):
            metrics["recall_at_5"] = _metric(0.83, rng, n_cases, "Gold passage among the top 5")
        quality[name] = metrics[metric]
        split = ({metric: {"hit": q - 0.02, "hit_n": 18, "miss": q + 0.01, "miss_n": n_cases - 18},
                  "latency_ms": {"hit": 12.0, "hit_n": 18, "miss": p50 * 1.3, "miss_n": n_cases - 18}}
                 if cached else {})
        strategies.append({
            "name": name, "run_id": f"run-{name}", "params": {"kind": kind, "model": "llama_cpp:SmolLM2.gguf",
                                                              "max_tokens": 48, "system_prompt": "Quote <exact> words"},
            "metrics": metrics,
            "timing": {"seconds_per_case": p50 / 1000 * 1.02, "latency_ms_p50": p50, "latency_ms_p95": p50 * 1.6,
                       "first_token_ms_p50": p50 * 0.08, "first_token_ms_p95": p50 * 0.12,
                       "prompt_tokens_mean": prompt, "completion_tokens_mean": completion},
            "cache_split": split,
            "cases": _cases(name, q, p50, metric, rng, cached, n_cases),
            "family": family, "cached": cached, "wraps": wraps,
            "traffic_hit_rate": ({"value": 0.31, "low": 0.27, "high": 0.36, "source": "query log replay"}
                                 if cached else None),
        })
    excluded = "finetuned" if not json_task else "rag"
    return {
        "kind": "adaptlab-bench", "format_version": 2, "run_id": f"bench-{seed}-{'json' if json_task else 'qa'}",
        "created": "2026-11-23T08:10:32+00:00", "title": title, "config_path": "/x/adaptlab.toml",
        "reproduce": "adaptlab bench --config /x/adaptlab.toml --seed 0", "out_dir": "/x/.adaptlab/bench/run",
        "cases_path": "cases.jsonl", "cases_sha256": "c6c9a7ec9fffcb11", "seconds": 1234.5,
        "machine": {"cpu": "AMD EPYC 7B13", "cores": 2, "threads": 2, "python": "3.12.3", "adaptlab": "0.1.0"},
        "models": {"generator": "llama_cpp:SmolLM2-135M-Instruct.Q4_1.gguf", "embedder": "minilm"},
        "n_cases": n_cases, "repeats": 1, "seed": seed, "confidence": 0.95, "significance": 0.05, "k": 5,
        "quality_metric": metric,
        "inputs": {"documents": None if json_task else {"paths": ["articles/"], "documents": 60, "chunks": 1840},
                   "cases": {"path": "cases.jsonl", "sha256": "c6c9a7ec9fffcb11", "n": n_cases},
                   "train": {"path": "data/train.jsonl", "sha256": "ab" * 32, "n": 243} if with_data_check else None,
                   "query_log": {"path": "queries.jsonl", "n_queries": 400, "distinct": 260} if with_cache else None,
                   "workload": {"path": "workload.toml"}},
        "stages": [{"name": "index", "status": "reused", "seconds": 0.4, "detail": "1840 chunks, unchanged"},
                   {"name": "finetune", "status": "built", "seconds": 912.0, "detail": "LoRA r=8, 40 steps"},
                   {"name": "eval", "status": "done", "seconds": 300.2, "detail": "60 cases × 6 strategies"},
                   {"name": "dpo", "status": "skipped", "seconds": 0.0, "detail": "no preference pairs"}],
        "skipped_strategies": [{"name": "openai-gpt", "reason": "no API key <OPENAI_API_KEY> set"}],
        "warnings": ["only 60 cases: CIs are wide", "query log has 35% duplicates"],
        "strategies": strategies,
        "advice": _advice(rows, quality, metric, excluded),
        "cache": _cache() if with_cache else None,
        "data_check": _data_check() if with_data_check else None,
        "finetuning": _finetuning(rng, n_cases) if json_task else None,
        "measurement": [{"what": "quality", "how": "token F1 per case, mean with a 95% bootstrap CI over cases"},
                        {"what": "latency", "how": "wall time around each answer() call on this machine"},
                        {"what": "cost", "how": "measured tokens × catalog prices, 12 months at 5,000 queries/day"}],
    }
