"""What the portable llama.cpp build costs: generation tokens/s of the portable build (the one scripts/setup.sh
installs) against a native build of the same llama-cpp-python version, on the same machine, same model.

  measured = the installed (portable) llama_cpp in this venv
  anchor   = llama-cpp-python built with GGML_NATIVE=ON (-march=native) on this machine, installed into a
             private folder (~/.cache/adaptlab/bench/...) and loaded in a child process through PYTHONPATH

On a CPU that advertises AMX, the plain native build compiles ggml's AMX kernels, and where the VM does not grant
AMX tile state every generation dies with SIGILL — so the native anchor is built with `-mno-amx-tile -mno-amx-int8
-mno-amx-bf16` there (everything else -march=native turns on, AVX-512 included, stays). The first run compiles the
native wheel (~6-11 min on 2 cores); later runs reuse it.

Each variant runs in its own child process, alternating portable/native `--repeats` times, keeping the best of
each: prompt processing (prefill) tokens/s of a ~300-token prompt, and greedy generation tokens/s of
`--tokens` tokens.

    .venv/bin/python benchmarks/bench_llama_build.py [--quick] [--tokens N] [--repeats N] [--threads N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish, print_table, set_threads, verdict  # noqa: E402

# One generation measurement, run in a child process so each build's shared libraries load alone.
CHILD = r"""
import json, sys, time
import llama_cpp
model_path, threads, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
llm = llama_cpp.Llama(model_path=model_path, n_ctx=1024, n_threads=threads, n_threads_batch=threads, verbose=False)
text = ("The history of the printing press begins in the fifteenth century, when movable type changed how books "
        "were made, sold and read across Europe. ") * 12
prompt = llm.tokenize(text.encode(), add_bos=True)
llm.eval(prompt[:8])  # warm-up: first touch of the weights
llm.reset()
# generate() evaluates the prompt, then yields one sampled token per step and never stops by itself.
started = time.perf_counter()
first_token_at = None
generated = 0
for _token in llm.generate(prompt, top_k=1, reset=True):
    if first_token_at is None:
        first_token_at = time.perf_counter()
    else:
        generated += 1
    if generated >= tokens:
        break
finished = time.perf_counter()
prefill_s = first_token_at - started
decode_s = finished - first_token_at
info = llama_cpp.llama_print_system_info().decode()
print(json.dumps({"prefill_tokens": len(prompt), "prefill_tps": len(prompt) / prefill_s,
                  "decode_tokens": generated, "decode_tps": generated / decode_s, "system_info": info.strip()}))
"""


def native_cmake_env() -> tuple[str, dict[str, str]]:
    """CMAKE_ARGS and compiler flags for the native anchor (AMX masked out where the CPU advertises it)."""
    from adaptlab.models.llama_build import cpu_flags

    flags = cpu_flags()
    extra = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" if "amx_tile" in flags else ""
    env = {"CMAKE_ARGS": "-DGGML_NATIVE=ON", "FORCE_CMAKE": "1"}
    if extra:
        env["CFLAGS"] = extra
        env["CXXFLAGS"] = extra
    return extra, env


def ensure_native_build(version: str) -> Path:
    from adaptlab.models.llama_build import cpu_flags, machine_arch

    extra, env = native_cmake_env()
    host = hashlib.sha256(" ".join(sorted(cpu_flags())).encode() + extra.encode()).hexdigest()[:12]
    target = (Path.home() / ".cache" / "adaptlab" / "bench"
              / f"llama-cpp-python-native-{version}-{machine_arch()}-{host}")
    if (target / "llama_cpp" / "__init__.py").is_file():
        return target
    wheels = target.with_name(target.name + "-wheel")
    print(f"compiling a native llama-cpp-python {version} for the anchor (once; ~6-11 min on 2 cores)\n"
          f"  {env}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-cache-dir",
                    "--no-binary", "llama-cpp-python", "-w", str(wheels), f"llama-cpp-python=={version}"],
                   check=True, env={**os.environ, **env})
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    *map(str, wheels.glob("llama_cpp_python-*.whl"))], check=True)
    return target


def run_child(model_path: Path, threads: int, tokens: int, pythonpath: Path | None) -> dict:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run([sys.executable, "-c", CHILD, str(model_path), str(threads), str(tokens)],
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"generation child failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats of 64 tokens")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.tokens, args.repeats = 64, 2
    set_threads(args.threads)

    from adaptlab.models.llama_build import LLAMA_CPP_PYTHON_VERSION, inspect_installed_build
    from adaptlab.models.registry import default_gguf_path

    report = inspect_installed_build()
    if report.problems():
        raise SystemExit("the installed llama-cpp-python is not the portable build: " + "; ".join(report.problems()))
    model = default_gguf_path()
    native_dir = ensure_native_build(LLAMA_CPP_PYTHON_VERSION)

    best: dict[str, dict] = {}
    for repeat in range(args.repeats):
        order = [("portable", None), ("native", native_dir)]
        if repeat % 2:
            order.reverse()
        for name, path in order:
            sample = run_child(model, args.threads, args.tokens, path)
            kept = best.get(name)
            best[name] = sample if kept is None else {
                **kept, "prefill_tps": max(kept["prefill_tps"], sample["prefill_tps"]),
                "decode_tps": max(kept["decode_tps"], sample["decode_tps"])}
    portable, native = best["portable"], best["native"]
    decode_ratio = portable["decode_tps"] / native["decode_tps"]
    prefill_ratio = portable["prefill_tps"] / native["prefill_tps"]
    print(f"model {model.name}, {args.threads} thread(s), best of {args.repeats}\n")
    print_table(["build", "prefill tok/s", "generation tok/s", "compiled with"], [
        ["portable (setup.sh)", portable["prefill_tps"], portable["decode_tps"], portable["system_info"]],
        ["native (anchor)", native["prefill_tps"], native["decode_tps"], native["system_info"]],
    ])
    print(f"\nportable / native: generation {decode_ratio:.2f}x, prefill {prefill_ratio:.2f}x")
    goal = decode_ratio >= 0.8
    print(f"{verdict(goal)}: portable generation ≥ 0.8x native")
    finish("bench_llama_build", {
        "model": model.name, "threads": args.threads, "tokens": args.tokens, "repeats": args.repeats,
        "portable": portable, "native": native, "native_extra_flags": native_cmake_env()[0],
        "ratio_generation": round(decode_ratio, 3), "ratio_prefill": round(prefill_ratio, 3), "goal_met": goal,
    })


if __name__ == "__main__":
    main()
