"""How llama-cpp-python is built, and checking that the installed build is the portable one.

`pip install llama-cpp-python` compiles llama.cpp with GGML_NATIVE=ON (-march=native). On an Intel Xeon that
advertises AMX this compiles ggml's AMX kernels, and a virtual machine that does not grant AMX tile state kills
every generation with SIGILL (`tilezero` in ggml_backend_amx_mul_mat) — while a CI machine without those flags
builds no AMX kernels and passes. So scripts/setup.sh builds with an explicit, portable instruction set, taken
from this file, and the checks here test what the build *chose*, whatever machine they run on:

- the CPU features llama.cpp reports it was compiled with (`llama_print_system_info`) equal the chosen set;
- a disassembly of the installed libggml-cpu shows no AMX tile and no AVX-512 instructions (x86-64).

This module is deliberately stdlib-only and runnable as a script, because setup.sh needs the build flags
before adaptlab (or anything else) is installed:

    python3 src/adaptlab/models/llama_build.py cmake-args   # flags for this machine's architecture
    python3 src/adaptlab/models/llama_build.py key          # cache key of the portable wheel
    python3 -m adaptlab.models.llama_build verify           # check the installed build (exit 1 if not portable)
"""

from __future__ import annotations

import hashlib
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"

# x86-64: the AVX2 generation (Intel Haswell 2013+, AMD Zen 2017+), chosen on purpose; everything newer
# (AVX-512, AVX-VNNI, AMX) explicitly off. llama.cpp's runtime dispatch across CPU variants
# (GGML_CPU_ALL_VARIANTS) is not used: it picks the AMX variant on a VM that advertises AMX without
# granting it — the very crash this build avoids (the kernel even grants ARCH_REQ_XCOMP_PERM there).
_X86_ON = ("SSE42", "AVX", "AVX2", "FMA", "F16C", "BMI2")
_X86_OFF = ("AVX_VNNI", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_TILE", "AMX_INT8", "AMX_BF16")
PORTABLE_CMAKE_ARGS: dict[str, tuple[str, ...]] = {
    "x86_64": ("-DGGML_NATIVE=OFF",) + tuple(f"-DGGML_{name}=ON" for name in _X86_ON)
    + tuple(f"-DGGML_{name}=OFF" for name in _X86_OFF),
    # aarch64: the ARMv8-A baseline (NEON + FMA) that every 64-bit Arm CPU runs; no SVE/SME/dotprod/i8mm.
    "aarch64": ("-DGGML_NATIVE=OFF", "-DGGML_CPU_ARM_ARCH=armv8-a"),
}

# The instruction-set features llama.cpp's CPU backend reports (ggml-cpu.cpp, ggml_backend_cpu_get_features).
# Non-ISA entries it also reports (OPENMP, REPACK, LLAMAFILE, SVE_CNT...) are not compared.
ISA_FEATURES: dict[str, frozenset[str]] = {
    "x86_64": frozenset({"SSE3", "SSSE3", "AVX", "AVX_VNNI", "AVX2", "F16C", "FMA", "BMI2", "AVX512",
                         "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_INT8"}),
    "aarch64": frozenset({"NEON", "ARM_FMA", "FP16_VA", "MATMUL_INT8", "SVE", "DOTPROD", "SME", "SME2"}),
}
# What the portable build must report, exactly.
PORTABLE_FEATURES: dict[str, frozenset[str]] = {
    "x86_64": frozenset({"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"}),
    "aarch64": frozenset({"NEON", "ARM_FMA"}),
}
# /proc/cpuinfo flag that a compiled x86 feature needs at run time.
_X86_CPUINFO_FLAG = {"SSE3": "pni", "SSSE3": "ssse3", "AVX": "avx", "AVX_VNNI": "avx_vnni", "AVX2": "avx2",
                     "F16C": "f16c", "FMA": "fma", "BMI2": "bmi2", "AVX512": "avx512f",
                     "AVX512_VBMI": "avx512vbmi", "AVX512_VNNI": "avx512_vnni", "AVX512_BF16": "avx512_bf16",
                     "AMX_INT8": "amx_int8"}

# AMX tile instructions (Intel SDM vol. 2, "AMX"): none may appear in a portable x86-64 build.
AMX_MNEMONICS = ("ldtilecfg", "sttilecfg", "tilerelease", "tilezero", "tileloadd", "tileloaddt1", "tilestored",
                 "tdpbssd", "tdpbsud", "tdpbusd", "tdpbuud", "tdpbf16ps", "tdpfp16ps", "tcmmimfp16ps",
                 "tcmmrlfp16ps")
_AMX_PATTERN = re.compile(r"\t(" + "|".join(AMX_MNEMONICS) + r")\b")
_AVX512_PATTERN = re.compile(r"%zmm\d|%k[1-7]\b")

REBUILD_FIX = "rebuild it portably with `bash scripts/setup.sh` (it replaces a native or cached build)"


def machine_arch() -> str:
    arch = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def portable_cmake_args(arch: str | None = None) -> tuple[str, ...]:
    arch = arch or machine_arch()
    if arch not in PORTABLE_CMAKE_ARGS:
        raise SystemExit(f"adaptlab builds llama.cpp portably for x86_64 and aarch64 only, not {arch!r}.")
    return PORTABLE_CMAKE_ARGS[arch]


def build_key(arch: str | None = None) -> str:
    """Names the wheel cache folder: a different version, architecture or flag set never reuses a wheel."""
    arch = arch or machine_arch()
    text = "\n".join((LLAMA_CPP_PYTHON_VERSION, arch, *portable_cmake_args(arch)))
    return f"{LLAMA_CPP_PYTHON_VERSION}-{arch}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def parse_system_info(text: str) -> dict[str, str]:
    """`CPU : SSE3 = 1 | AVX = 1 | ... |` (one line per backend) → {"SSE3": "1", "AVX": "1", ...}."""
    features: dict[str, str] = {}
    for line in text.splitlines():
        for part in line.split("|"):
            name, sep, value = part.rpartition("=")
            if not sep:
                continue
            name = name.split(":")[-1].strip()  # the first item carries the backend name: "CPU : SSE3"
            if name:
                features[name] = value.strip()
    return features


def compiled_isa_features(features: dict[str, str], arch: str) -> frozenset[str]:
    known = ISA_FEATURES.get(arch, frozenset())
    return frozenset(name for name, value in features.items() if name in known and value not in ("", "0"))


def cpu_flags() -> frozenset[str]:
    """The CPU flags the kernel lists (x86 `flags`, Arm `Features`); empty where /proc/cpuinfo is missing."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


@dataclass
class DisassemblyScan:
    library: str
    amx_instructions: int
    avx512_instructions: int
    amx_examples: list[str] = field(default_factory=list)
    avx512_examples: list[str] = field(default_factory=list)


def scan_disassembly(library: Path, objdump: str | None = None) -> DisassemblyScan:
    """Count AMX and AVX-512 instructions in a shared library (x86-64, via binutils' objdump)."""
    objdump = objdump or shutil.which("objdump")
    if objdump is None:
        raise FileNotFoundError("objdump not found — install binutils (apt-get install binutils) to scan the build")
    process = subprocess.Popen([objdump, "-d", "--no-show-raw-insn", str(library)], stdout=subprocess.PIPE,
                               text=True, errors="replace")
    assert process.stdout is not None
    amx: list[str] = []
    avx512: list[str] = []
    for line in process.stdout:
        if _AMX_PATTERN.search(line):
            amx.append(line)
        elif _AVX512_PATTERN.search(line):
            avx512.append(line)
    if process.wait() != 0:
        raise RuntimeError(f"objdump -d {library} failed with exit code {process.returncode}")
    return DisassemblyScan(str(library), len(amx), len(avx512), [" ".join(line.split()) for line in amx[:3]],
                           [" ".join(line.split()) for line in avx512[:3]])


@dataclass
class BuildReport:
    """What the installed llama.cpp build was compiled with, against the portable set."""

    arch: str
    version: str
    system_info: str
    compiled: frozenset[str]
    expected: frozenset[str]
    cpu_library: str
    scan: DisassemblyScan | None
    scan_error: str = ""

    @property
    def extra(self) -> frozenset[str]:
        return self.compiled - self.expected

    @property
    def missing(self) -> frozenset[str]:
        return self.expected - self.compiled

    def unsupported_by_cpu(self, flags: frozenset[str]) -> frozenset[str]:
        """Compiled x86 features this CPU does not list (a certain SIGILL); empty elsewhere or without flags."""
        if self.arch != "x86_64" or not flags:
            return frozenset()
        return frozenset(name for name in self.compiled if _X86_CPUINFO_FLAG.get(name, name.lower()) not in flags)

    def problems(self) -> list[str]:
        problems: list[str] = []
        if self.version != LLAMA_CPP_PYTHON_VERSION:
            problems.append(f"llama-cpp-python {self.version} is installed, adaptlab builds "
                            f"{LLAMA_CPP_PYTHON_VERSION}")
        if self.extra:
            problems.append(f"compiled with {', '.join(sorted(self.extra))}, outside the portable set "
                            f"({', '.join(sorted(self.expected))}) — a native (-march=native) build")
        if self.missing:
            problems.append(f"compiled without {', '.join(sorted(self.missing))} (the portable set has them)")
        if self.scan is not None and self.scan.amx_instructions:
            problems.append(f"{self.scan.library} contains {self.scan.amx_instructions} AMX tile instructions "
                            f"(e.g. {self.scan.amx_examples[0]})")
        if self.scan is not None and self.scan.avx512_instructions:
            problems.append(f"{self.scan.library} contains {self.scan.avx512_instructions} AVX-512 instructions "
                            f"(e.g. {self.scan.avx512_examples[0]})")
        return problems


def cpu_backend_library(package_dir: Path) -> Path | None:
    """The CPU backend's shared library inside the installed llama_cpp package."""
    for pattern in ("lib/libggml-cpu*.so", "lib/libggml-cpu*.dylib"):
        found = sorted((package_dir).glob(pattern))
        if found:
            return found[0]
    return None


def inspect_installed_build(*, scan: bool = True) -> BuildReport:
    """Read the installed llama_cpp's compiled features (and scan its CPU library). Loading the library is
    safe even on a bad build: only running a kernel executes the unsupported instructions."""
    from importlib.metadata import version

    import llama_cpp  # imported here: the module stays usable as a script before anything is installed

    arch = machine_arch()
    info = llama_cpp.llama_print_system_info()
    info_text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    features = parse_system_info(info_text)
    library = cpu_backend_library(Path(llama_cpp.__file__).parent)
    disassembly: DisassemblyScan | None = None
    scan_error = ""
    if scan and arch == "x86_64":
        if library is None:
            scan_error = "no libggml-cpu library found in the llama_cpp package"
        else:
            try:
                disassembly = scan_disassembly(library)
            except (FileNotFoundError, RuntimeError) as exc:
                scan_error = str(exc)
    return BuildReport(arch=arch, version=version("llama-cpp-python"), system_info=info_text.strip(),
                       compiled=compiled_isa_features(features, arch),
                       expected=PORTABLE_FEATURES.get(arch, frozenset()),
                       cpu_library=str(library or ""), scan=disassembly, scan_error=scan_error)


def _main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "cmake-args":
        print(" ".join(portable_cmake_args()))
    elif command == "key":
        print(build_key())
    elif command == "version":
        print(LLAMA_CPP_PYTHON_VERSION)
    elif command == "verify":
        try:
            report = inspect_installed_build()
        except ImportError as exc:  # not installed yet, or installed without its dependencies
            print(f"NOT PORTABLE: llama_cpp cannot be imported ({exc})", file=sys.stderr)
            return 1
        print(f"llama-cpp-python {report.version} ({report.arch}): {report.system_info}")
        if report.scan is not None:
            print(f"{report.scan.library}: {report.scan.amx_instructions} AMX, "
                  f"{report.scan.avx512_instructions} AVX-512 instructions")
        elif report.scan_error:
            print(f"disassembly not scanned: {report.scan_error}")
        problems = report.problems()
        for problem in problems:
            print(f"NOT PORTABLE: {problem}", file=sys.stderr)
        if problems:
            print(f"fix: {REBUILD_FIX}", file=sys.stderr)
            return 1
        print("portable build: ok")
    else:
        print("usage: llama_build.py cmake-args|key|version|verify", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # Run as a script, this file's folder is sys.path[0] — and it holds adaptlab's own llama_cpp.py, which would
    # shadow the llama_cpp package that `verify` inspects.
    here = Path(__file__).resolve().parent
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != here]
    sys.exit(_main(sys.argv[1:]))
