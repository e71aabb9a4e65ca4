"""The AVX2 restriction that `make test` reruns the numerical tests under is real: torch honours
ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA (tests/helpers/machine.py), so that rerun cannot pass by
running the usual AVX-512 / AMX kernels."""

import os
import subprocess
import sys
from pathlib import Path

from helpers.machine import KERNEL_RESTRICTION, restriction_is_honoured

HELPERS = Path(__file__).resolve().parent / "helpers"


def test_the_avx2_restriction_is_honoured():
    if all(os.environ.get(name) == value for name, value in KERNEL_RESTRICTION.items()):  # the rerun itself
        assert restriction_is_honoured() == []
        return
    code = "import sys; from machine import restriction_is_honoured; sys.exit('; '.join(restriction_is_honoured()) or None)"
    run = subprocess.run([sys.executable, "-c", code], cwd=HELPERS, env={**os.environ, **KERNEL_RESTRICTION},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]


def test_the_makefile_gets_the_restriction_from_the_helper():
    printed = subprocess.run([sys.executable, str(HELPERS / "machine.py")], capture_output=True, text=True,
                             check=True).stdout.split()
    assert printed == [f"{name}={value}" for name, value in KERNEL_RESTRICTION.items()]
