"""What CPU a test run is on and which kernels its libraries chose there.

Numbers from two CPUs differ in the last bits (AVX2, AVX-512 and AMX kernels sum in other orders), which
is why the tests compare with tolerances (``tolerance``) and why ``make test`` runs the numerical tests a
second time with the kernels held to AVX2: with the environment ``KERNEL_RESTRICTION``, which
``python tests/helpers/machine.py`` prints for the Makefile (``env $(...) pytest ...``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

# The variables that hold the CPU kernels to AVX2: ATen's own (elementwise, reductions, softmax, ...),
# oneDNN's (bfloat16 matmuls, convolutions; TensorFlow's oneDNN kernels read it too), XLA's (the Flax
# classes) and MKL's (torch's float32 matmuls). The first two are checked (`restriction_is_honoured`); MKL's
# cannot be on an AMD CPU, where no value of MKL_ENABLE_INSTRUCTIONS (AVX2, AVX512, SSE4_2) changed a bit of
# its results, but on Intel CPUs it holds MKL to its AVX2 code.
KERNEL_RESTRICTION = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "XLA_FLAGS": "--xla_cpu_max_isa=AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}

_WANTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_model_and_flags() -> tuple[str, list[str]]:
    """The CPU's model name and which of the vector-unit flags that matter here it has (read from Linux's
    /proc/cpuinfo; elsewhere 'unknown CPU' and none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU", []
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
    present = set(flags.group(1).split()) if flags else set()
    return (model.group(1).strip() if model else "unknown CPU"), [f for f in _WANTED_FLAGS if f in present]


def onednn_isa() -> str:
    """The instruction set oneDNN uses in a fresh process with this environment (as its verbose mode
    reports it), or '' when it says nothing."""
    code = "import torch; torch.randn(4, 4).to_mkldnn().to_dense()"
    run = subprocess.run([sys.executable, "-c", code], env={**os.environ, "ONEDNN_VERBOSE": "1"},
                         capture_output=True, text=True, timeout=120)
    found = re.search(r"onednn_verbose,.*,isa:(.+)", run.stdout + run.stderr)
    return found.group(1).strip() if found else ""


def cpu_summary() -> list[str]:
    import torch

    model, flags = cpu_model_and_flags()
    restricted = {k: os.environ[k] for k, v in KERNEL_RESTRICTION.items() if v in os.environ.get(k, "")}
    return [
        f"cpu: {model}, {os.cpu_count()} logical cores; {' '.join(flags) or 'no AVX2'}",
        f"torch {torch.__version__}: ATen kernels {torch.backends.cpu.get_cpu_capability()}"
        + (f"; restricted by {' '.join(f'{k}={v}' for k, v in restricted.items())}" if restricted else ""),
    ]


def restriction_is_honoured() -> list[str]:
    """What does not hold ATen and oneDNN to AVX2 in this process's environment (empty: all is held).
    ATen's choice is read in this process; oneDNN's in a fresh one (it reads its variable once)."""
    import torch

    problems = []
    rank = {"DEFAULT": 0, "AVX2": 1, "AVX512": 2}
    capability = torch.backends.cpu.get_cpu_capability()
    if rank.get(capability, 3) > rank["AVX2"]:
        problems.append(f"ATen runs {capability} kernels with ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY')}")
    isa = onednn_isa()
    if not isa or "AVX-512" in isa or "AMX" in isa:
        problems.append(f"oneDNN reports isa {isa!r} with ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA')}")
    return problems


if __name__ == "__main__":  # the restriction as NAME=value words, for `env` in the Makefile
    print(" ".join(f"{name}={value}" for name, value in KERNEL_RESTRICTION.items()))
