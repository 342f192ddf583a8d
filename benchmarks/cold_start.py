"""Cold start: what importing each Lambda handler module costs, against a bare ``import boto3``.

Each figure is the median over fresh interpreters of the cumulative import time Python itself
reports (``-X importtime``), interleaved with the baseline so both see the same machine load.
Two figures per handler: the module alone (what the budget names), and the module with boto3,
which every invocation needs anyway (what a real cold start pays before the first call).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.report import Row

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("dispatch", "record_state", "monitor")
TARGET = 1.3


def import_microseconds(modules: list[str], path_entry: Path | None = None) -> int:
    """Cumulative import time of ``modules`` (top level only) in a fresh interpreter."""
    prefix = f"import sys; sys.path.insert(0, {str(path_entry)!r}); " if path_entry else ""
    code = prefix + "; ".join(f"import {module}" for module in modules)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    total = 0
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if name.strip() in modules and not name.startswith("  "):
            total += int(cumulative)
    return total


def measure(repeats: int = 11) -> list[Row]:
    rows = []
    for function in FUNCTIONS:
        folder = ROOT / "functions" / function
        alone, with_boto3, baseline = [], [], []
        for _ in range(repeats):
            baseline.append(import_microseconds(["boto3"]))
            alone.append(import_microseconds(["app"], folder))
            with_boto3.append(import_microseconds(["boto3", "app"], folder))
        base = statistics.median(baseline)
        for label, samples in (("module", alone), ("module + boto3", with_boto3)):
            ratio = statistics.median(samples) / base
            rows.append(
                Row(
                    benchmark=f"import functions/{function}/app.py ({label})",
                    ours=f"{statistics.median(samples) / 1000:.0f} ms",
                    baseline=f"{base / 1000:.0f} ms (import boto3)",
                    measure=f"{ratio:.2f}x",
                    target=f"<= {TARGET:g}x",
                    status="pass" if ratio <= TARGET else "FAIL",
                )
            )
    return rows


def section(rows: list[Row]) -> str:
    lines = [
        "| benchmark | ours | baseline | ratio | target | pass/fail |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.benchmark} | {r.ours} | {r.baseline} | {r.measure} | {r.target} | "
        f"{'**FAIL**' if r.status == 'FAIL' else r.status} |"
        for r in rows
    ]
    return "\n".join(lines)
