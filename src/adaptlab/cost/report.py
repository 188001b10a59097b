"""Write an Advice to disk: advice.json (everything), advice.md (the ranked table, reasons, break-even,
sensitivity, where each number came from) and three charts (TCO over months, break-even curve, quality vs cost).
Files are written under temporary names first, so an interrupted write never leaves half a report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from adaptlab.cost.advise import Advice, Ranked
from adaptlab.cost.tco import CostInputs, Variant, total_at, volume_grid
from adaptlab.numbers import usd
from adaptlab.textfiles import write_text_atomic

LINE_ORDER = ("inference", "training", "retraining", "engineering", "embedding", "vector_db", "rag_setup",
              "cache_hosting", "cache_lookups", "cache_setup")


def quality_text(entry: Ranked) -> str:
    quality = entry.candidate.quality
    if quality is None:
        return "—"
    suffix = "" if quality.measured else " (est.)"
    return quality.show() + suffix


def to_markdown(advice: Advice) -> str:
    label = " — estimates" if advice.estimate else ""
    lines = [f"# Advice: {advice.title}{label}", ""]
    source = f"bench run {advice.run_id}" if advice.run_id else "declared workload (no bench run)"
    lines.append(f"{advice.queries_per_day:,.0f} queries/day, {advice.months} months, from {source}; quality "
                 f"metric: {advice.metric or 'none'}.")
    lines.append("")
    winner = advice.winner
    if winner is not None:
        lines.append(f"**Recommendation: {winner.name}** — {usd(winner.tco.total)} over {advice.months} months.")
    else:
        lines.append("**No strategy qualifies** — see the exclusions below.")
    lines += ["", "| rank | strategy | quality | TCO | $/1k answers | reasons |", "|---|---|---|---|---|---|"]
    for entry in advice.ranked:
        rank = str(entry.rank) if entry.rank is not None else "excluded"
        reasons = "; ".join(entry.reasons if entry.rank is not None else entry.excluded)
        lines.append(f"| {rank} | {entry.name} | {quality_text(entry)} | {usd(entry.tco.total)} | "
                     f"{usd(1000 * entry.tco.usd_per_answer)} | {reasons.replace('|', '/')} |")
    lines += ["", "## Cost by month and line", ""]
    ranked = [r for r in advice.ranked if r.rank is not None]
    present = {line.name for r in ranked for line in r.tco.lines}
    names = [n for n in LINE_ORDER if n in present] + sorted(present - set(LINE_ORDER))
    lines += ["| strategy | month 1 | month " + str(advice.months) + " | " + " | ".join(names) + " |",
              "|---|---|---|" + "---|" * len(names)]
    for entry in ranked:
        totals = entry.tco.monthly_totals
        cells = [usd(line.total) if (line := entry.tco.line(n)) else "—" for n in names]
        lines.append(f"| {entry.name} | {usd(totals[0])} | {usd(totals[-1])} | " + " | ".join(cells) + " |")
    lines += ["", "## Break-even (queries/day where two strategies cost the same)", ""]
    if advice.break_evens:
        lines += ["| a | b | queries/day | cheaper below |", "|---|---|---|---|"]
        for b in advice.break_evens:
            lines.append(f"| {b.a} | {b.b} | {b.queries_per_day:,.0f} | {b.cheaper_below} |")
    else:
        lines.append("No crossings between 1 and 10⁹ queries/day: the cost order does not depend on volume.")
    lines += ["", "## Sensitivity (each input moved ±50%)", ""]
    if advice.sensitivity:
        lines += ["| input | −50% | base | +50% | changes the winner |", "|---|---|---|---|---|"]
        for row in advice.sensitivity:
            lines.append(f"| {row.label} | {row.low_winner} | {row.base_winner} | {row.high_winner} | "
                         f"{'**yes**' if row.changes_winner else 'no'} |")
    lines += ["", "## Where the numbers come from", ""]
    lines += [f"- {p}" for p in advice.provenance]
    if advice.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in advice.notes]
    return "\n".join(lines) + "\n"


def write_report(advice: Advice, scenario_inputs: CostInputs, variants: Sequence[Variant], out_dir: Path, *,
                 charts: bool = True) -> list[Path]:
    """advice.json, advice.md and (charts=True) the three SVG charts in out_dir; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    json_path = out_dir / "advice.json"
    write_text_atomic(json_path, advice.record().model_dump_json(indent=2) + "\n")
    md_path = out_dir / "advice.md"
    write_text_atomic(md_path, to_markdown(advice))
    written += [json_path, md_path]
    if charts:
        written += write_charts(advice, scenario_inputs, variants, out_dir)
    return written


def write_charts(advice: Advice, inputs: CostInputs, variants: Sequence[Variant], out_dir: Path) -> list[Path]:
    """tco_by_month.svg, break_even.svg and quality_vs_cost.svg (standalone SVG files) in out_dir; none when no
    strategy qualifies."""
    from adaptlab.charts import Point, breakeven_chart, quality_cost_chart, tco_chart

    ranked = [r for r in advice.ranked if r.rank is not None]
    if not ranked:
        return []
    winner = advice.winner.name if advice.winner else None
    months = list(range(1, advice.months + 1))
    by_name = {v.name: v for v in variants}
    grid = volume_grid(41)
    totals = {r.name: [total_at(inputs, by_name[r.name], q) for q in grid] for r in ranked}
    # The chart marks the recommendation's crossings (every pair's are in advice.md): more labels would overlap.
    crossings = [(b.a, b.b, b.queries_per_day) for b in advice.break_evens
                 if b.a in totals and b.b in totals and winner in (b.a, b.b)]
    points = []
    for r in ranked:
        quality = r.candidate.quality
        points.append(Point(r.name, r.tco.total, quality.value if quality else None,
                            quality.low if quality else None, quality.high if quality else None,
                            estimate=advice.estimate or (quality is not None and not quality.measured),
                            highlight=r.name == winner))
    charts = {
        "tco_by_month.svg": tco_chart(months, {r.name: r.tco.cumulative for r in ranked},
                                      title=f"Cumulative cost — {advice.title}", estimate=advice.estimate,
                                      highlight=winner),
        "break_even.svg": breakeven_chart(grid, totals,
                                          title=f"Cost over {advice.months} months by volume — {advice.title}",
                                          marker_volume=advice.queries_per_day, crossings=crossings,
                                          estimate=advice.estimate, highlight=winner),
        "quality_vs_cost.svg": quality_cost_chart(points, metric=advice.metric or "quality",
                                                  title=f"Quality vs cost — {advice.title}", months=advice.months),
    }
    paths = []
    for name, document in charts.items():
        write_text_atomic(out_dir / name, document)
        paths.append(out_dir / name)
    return paths
