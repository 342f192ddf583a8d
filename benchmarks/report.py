"""The results table and the generated section of BENCHMARKS.md."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Status = Literal["pass", "FAIL", "error", "info"]

START_MARKER = "<!-- bench:executors:start -->"
END_MARKER = "<!-- bench:executors:end -->"

STATIC_TEXT = f"""\
# Benchmarks

How fast the flow engine runs tasks on each executor, compared with the same work done without
it. Run them with:

```sh
make bench
```

(`.venv/bin/python -m benchmarks.run`; two to three minutes on a 2-core machine.
`--only executors` or `--only cold-start` runs one section, `--no-write` prints the tables
without touching this file, `--repeats N` changes the number of repeats.) Everything between
the markers below is rewritten by each run; the rest of this file is kept as it is.

## Reference: Prefect 1.4.1

Prefect 1.4.1, measured on this kind of machine (2 cores):

| workload | Prefect 1.4.1 `LocalExecutor` | raw dask, synchronous scheduler |
|---|---|---|
| 1,000-task chain (`inc(x) -> x + 1`) | 12 ms/task | 0.14 ms/task |
| 1,000-item map (`inc.map(range(1000))`) | 6 ms/task | |

## Latest run

{START_MARKER}
{END_MARKER}
"""


@dataclass
class Row:
    benchmark: str
    ours: str
    baseline: str
    measure: str
    target: str
    status: Status
    detail: str = ""


def format_seconds(seconds: float) -> str:
    """``0.0123`` -> ``12.3 ms``; ``0.0000512`` -> ``51.2 µs``; ``5.5`` -> ``5.50 s``."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        milliseconds = seconds * 1e3
        return f"{milliseconds:.3g} ms" if milliseconds < 100 else f"{milliseconds:.0f} ms"
    return f"{seconds * 1e6:.3g} µs"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: list[Row]) -> str:
    header = ["benchmark", "ours", "baseline", "ratio or per-task overhead", "target", "pass/fail"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        status = f"**{row.status}**" if row.status in {"FAIL", "error"} else row.status
        cells = [row.benchmark, row.ours, row.baseline, row.measure, row.target, status]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def missed(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row.status in {"FAIL", "error"}]


def summary_lines(rows: list[Row]) -> list[str]:
    """What missed its target (or did not run), one line each; or that all targets were met."""
    misses = missed(rows)
    if not misses:
        return ["All targets met."]
    lines = [f"{len(misses)} target(s) missed:"]
    for row in misses:
        what = "did not run" if row.status == "error" else f"{row.measure}, target {row.target}"
        lines.append(f"- {row.benchmark}: {what}" + (f" ({row.detail})" if row.detail else ""))
    return lines


def update_benchmarks_file(path: Path, section: str, name: str = "executors") -> None:
    """Put ``section`` between the ``name`` markers of ``path``, creating the file (with its
    static text) or appending the markers when needed; text outside the markers is kept."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    text = path.read_text(encoding="utf-8") if path.exists() else STATIC_TEXT
    if start not in text or end not in text:
        text = text.rstrip("\n") + f"\n\n{start}\n{end}\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    replacement = f"{start}\n{section.strip()}\n{end}"
    path.write_text(pattern.sub(lambda _: replacement, text, count=1), encoding="utf-8")
