"""The installed llama.cpp build is the portable one, whatever CPU this runs on.

A machine without AMX flags builds no AMX kernels even natively, so these tests check what the build *chose*:
the features llama.cpp reports it was compiled with equal the set scripts/setup.sh asks for, and the CPU
library's disassembly holds no AMX tile and no AVX-512 instruction.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest

from adaptlab.models import llama_build
from adaptlab.models.llama_build import (
    LLAMA_CPP_PYTHON_VERSION,
    PORTABLE_FEATURES,
    BuildReport,
    DisassemblyScan,
    build_key,
    compiled_isa_features,
    inspect_installed_build,
    machine_arch,
    parse_system_info,
    portable_cmake_args,
)
from adaptlab.models.llama_cpp import build_refusal

REPO = Path(__file__).resolve().parents[2]
PORTABLE_INFO = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 | "
                 "OPENMP = 1 | REPACK = 1 |")
# What `pip install llama-cpp-python` (GGML_NATIVE) reported on an Intel Xeon with AMX flags: it died with SIGILL.
NATIVE_AMX_INFO = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
                   "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | "
                   "OPENMP = 1 | REPACK = 1 |")


def _report(info: str, *, scan: DisassemblyScan | None = None, arch: str = "x86_64") -> BuildReport:
    return BuildReport(arch=arch, version=LLAMA_CPP_PYTHON_VERSION, system_info=info,
                       compiled=compiled_isa_features(parse_system_info(info), arch),
                       expected=PORTABLE_FEATURES[arch], cpu_library="libggml-cpu.so", scan=scan)


def test_installed_build_reports_exactly_the_portable_features() -> None:
    report = inspect_installed_build(scan=False)
    assert report.version == LLAMA_CPP_PYTHON_VERSION
    assert report.arch in PORTABLE_FEATURES, f"setup.sh builds for x86_64 and aarch64, this is {report.arch}"
    assert report.compiled == PORTABLE_FEATURES[report.arch], report.system_info
    assert report.problems() == []


@pytest.mark.skipif(machine_arch() != "x86_64", reason="the AMX/AVX-512 disassembly check is for x86-64 builds")
def test_installed_cpu_library_has_no_amx_or_avx512_instructions() -> None:
    if shutil.which("objdump") is None:
        if os.environ.get("CI"):
            pytest.fail("objdump is missing: .ci/run installs binutils for this check")
        pytest.skip("objdump not installed (apt-get install binutils)")
    report = inspect_installed_build(scan=True)
    assert report.scan is not None, report.scan_error
    assert report.scan.amx_instructions == 0, report.scan.amx_examples
    assert report.scan.avx512_instructions == 0, report.scan.avx512_examples
    assert Path(report.scan.library).name.startswith("libggml-cpu")


def test_disassembly_scan_finds_amx_and_avx512_instructions(tmp_path: Path) -> None:
    """The scanner itself, on objdump-shaped output of a native build (a stand-in objdump prints it)."""
    fake_objdump = tmp_path / "objdump"
    fake_objdump.write_text("#!/bin/sh\ncat <<'OUT'\n"
                            "   10:\tvpaddd %ymm1,%ymm2,%ymm3\n"
                            "   14:\ttilezero %tmm4\n"
                            "   18:\ttdpbssd %tmm2,%tmm1,%tmm0\n"
                            "   1c:\tvmovups (%rax),%zmm0\n"
                            "   20:\tkmovw %k1,%eax\n"
                            "   24:\tmov %rax,%rbx\n"
                            "OUT\n")
    fake_objdump.chmod(0o755)
    scan = llama_build.scan_disassembly(tmp_path / "libggml-cpu.so", objdump=str(fake_objdump))
    assert (scan.amx_instructions, scan.avx512_instructions) == (2, 2)
    assert "tilezero" in scan.amx_examples[0] and "tdpbssd" in scan.amx_examples[1]
    assert "zmm0" in scan.avx512_examples[0]


def test_parse_system_info() -> None:
    features = parse_system_info(PORTABLE_INFO)
    assert features["AVX2"] == "1" and features["OPENMP"] == "1" and "SSE3" in features
    assert compiled_isa_features(features, "x86_64") == PORTABLE_FEATURES["x86_64"]
    # Several backends, one per line; zero-valued and non-ISA entries do not count as compiled ISA features.
    text = "CPU : NEON = 1 | ARM_FMA = 1 | SVE_CNT = 16 | DOTPROD = 0 | OPENMP = 1 |\nBLAS : ACCELERATE = 1 |"
    assert compiled_isa_features(parse_system_info(text), "aarch64") == frozenset({"NEON", "ARM_FMA"})


def test_a_native_amx_build_is_reported_with_what_it_adds() -> None:
    report = _report(NATIVE_AMX_INFO, scan=DisassemblyScan("libggml-cpu.so", 1200, 9000, ["tilezero %tmm4"],
                                                           ["vmovups (%rax),%zmm0"]))
    problems = report.problems()
    assert report.extra == frozenset({"AVX_VNNI", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16",
                                      "AMX_INT8"})
    assert any("AMX_INT8" in p and "native" in p for p in problems)
    assert any("1200 AMX tile instructions (e.g. tilezero %tmm4)" in p for p in problems)
    assert any("9000 AVX-512" in p for p in problems)
    assert _report(PORTABLE_INFO).problems() == []


def test_a_build_the_cpu_cannot_run_is_refused_before_loading() -> None:
    haswell_flags = frozenset({"pni", "ssse3", "avx", "avx2", "f16c", "fma", "bmi2"})
    refusal = build_refusal(_report(NATIVE_AMX_INFO), haswell_flags)
    assert refusal is not None
    assert "AVX512" in refusal and "AMX_INT8" in refusal and "Illegal instruction" in refusal
    assert "scripts/setup.sh" in refusal
    assert build_refusal(_report(PORTABLE_INFO), haswell_flags) is None
    # Without /proc/cpuinfo nothing can be said: no refusal.
    assert build_refusal(_report(NATIVE_AMX_INFO), frozenset()) is None


def test_build_flags_and_cache_key() -> None:
    x86 = portable_cmake_args("x86_64")
    assert "-DGGML_NATIVE=OFF" in x86 and "-DGGML_AVX2=ON" in x86
    for off in ("AMX_TILE", "AMX_INT8", "AMX_BF16", "AVX512"):
        assert f"-DGGML_{off}=OFF" in x86
    assert portable_cmake_args("aarch64") == ("-DGGML_NATIVE=OFF", "-DGGML_CPU_ARM_ARCH=armv8-a")
    assert build_key("x86_64") != build_key("aarch64")
    assert build_key("x86_64").startswith(f"{LLAMA_CPP_PYTHON_VERSION}-x86_64-")
    with pytest.raises(SystemExit, match="riscv64"):
        portable_cmake_args("riscv64")


def test_pyproject_pins_the_version_setup_builds() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}" in pyproject["project"]["dependencies"]
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "llama_build.py" in setup and "--no-cache-dir" in setup


def test_setup_sh_runs_the_module_as_a_script() -> None:
    """setup.sh runs `python src/adaptlab/models/llama_build.py ...` before adaptlab is installed: its folder,
    which holds adaptlab's llama_cpp.py, must not shadow the real llama_cpp package."""
    import subprocess
    import sys

    script = REPO / "src" / "adaptlab" / "models" / "llama_build.py"
    for command, expected in (("version", LLAMA_CPP_PYTHON_VERSION), ("key", build_key()),
                              ("cmake-args", " ".join(portable_cmake_args()))):
        proc = subprocess.run([sys.executable, str(script), command], capture_output=True, text=True, timeout=60,
                              cwd=REPO)
        assert proc.returncode == 0 and proc.stdout.strip() == expected, proc.stderr
    verify = subprocess.run([sys.executable, str(script), "verify"], capture_output=True, text=True, timeout=120,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": ""})
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "portable build: ok" in verify.stdout
