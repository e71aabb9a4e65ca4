"""Shared pytest setup: each run ends by naming the CPU and the kernels torch picked on it (also under
`pytest -q`, which hides the header), so a log shows which machine, and which restriction in the AVX2
rerun of `make test`, a result came from."""

from __future__ import annotations

from helpers.machine import cpu_summary


def pytest_terminal_summary(terminalreporter) -> None:
    for line in cpu_summary():
        terminalreporter.write_line(line)
