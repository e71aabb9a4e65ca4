"""Shared pytest setup: the run's header names the CPU and the kernels torch picked on it, so a log shows
which machine (and which restriction, in the AVX2 rerun of `make test`) a result came from."""

from __future__ import annotations

from helpers.machine import cpu_summary


def pytest_report_header(config) -> list[str]:
    return cpu_summary()
