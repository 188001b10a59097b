"""How long a new user waits before anything happens: cold CLI processes, end to end.

  measured = wall time of a fresh `adaptlab --help`, `adaptlab retrieve "…"` and `adaptlab ask "…"` process on a
             project with N COVID-QA articles ingested (generator.max_tokens 8, so `ask` is mostly start-up,
             retrieval and the prompt's prefill)
  anchor   = a fresh `python -c "import lancedb, numpy, tokenizers"`: the interpreter plus the libraries a query
             cannot avoid, timed in the same run

Each command runs `--repeats` times, alternating with the anchor; the median is reported. The page cache is warm
(a second run of the same command, as a user's second query); `--drop-caches` (root only) drops it before every
run for the truly cold figure.

    .venv/bin/python benchmarks/bench_cold_start.py [--quick] [--articles N] [--repeats N] [--drop-caches]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish, print_table, set_threads, verdict  # noqa: E402

QUESTION = "What is the incubation period of COVID-19?"
GOAL_RETRIEVE_S = 4.0


def timed(command: list[str], cwd: Path, drop_caches: bool) -> float:
    if drop_caches:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 articles, 2 repeats")
    parser.add_argument("--articles", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--drop-caches", action="store_true", help="drop the page cache before every run (root)")
    args = parser.parse_args()
    if args.quick:
        args.articles, args.repeats = 5, 2
    set_threads(1)

    from adaptlab.datasets.squad import BUNDLED_COVID_QA, write_articles

    adaptlab = str(Path(sys.executable).with_name("adaptlab"))
    with tempfile.TemporaryDirectory(prefix="adaptlab-bench-cold-") as tmp:
        root = Path(tmp)
        write_articles(BUNDLED_COVID_QA, root / "data", limit=args.articles)
        (root / "adaptlab.toml").write_text(f'home = "{root / "home"}"\n[generator]\nmax_tokens = 8\n')
        subprocess.run([adaptlab, "ingest", str(root / "data" / "articles")], cwd=root, check=True,
                       capture_output=True)
        commands = {
            "adaptlab --help": [adaptlab, "--help"],
            "adaptlab retrieve": [adaptlab, "retrieve", QUESTION],
            "adaptlab ask (8 tokens)": [adaptlab, "ask", QUESTION],
        }
        anchor_command = [sys.executable, "-c", "import lancedb, numpy, tokenizers"]
        samples: dict[str, list[float]] = {name: [] for name in commands}
        anchor: list[float] = []
        for name, command in commands.items():
            timed(command, root, False)  # warm-up: compiled bytecode and the page cache, as a second query
            for _ in range(args.repeats):
                anchor.append(timed(anchor_command, root, args.drop_caches))
                samples[name].append(timed(command, root, args.drop_caches))

    floor = statistics.median(anchor)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"{args.articles} articles, {args.repeats} runs each, page cache "
          f"{'dropped' if args.drop_caches else 'warm'}\n")
    print_table(["command", "median s", "min s", "max s", "vs anchor"],
                [[name, medians[name], min(values), max(values), f"{medians[name] / floor:.2f}x"]
                 for name, values in samples.items()]
                + [["anchor: import lancedb, numpy, tokenizers", floor, min(anchor), max(anchor), "1.00x"]])
    goal = medians["adaptlab retrieve"] < GOAL_RETRIEVE_S
    print(f"\n{verdict(goal)}: cold retrieve < {GOAL_RETRIEVE_S:.0f} s")
    finish("bench_cold_start", {
        "articles": args.articles, "repeats": args.repeats, "drop_caches": args.drop_caches,
        "anchor_s": round(floor, 3), "median_s": {name: round(value, 3) for name, value in medians.items()},
        "ratio": {name: round(value / floor, 2) for name, value in medians.items()}, "goal_met": goal,
    })


if __name__ == "__main__":
    main()
