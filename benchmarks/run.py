"""Executor benchmarks: what the flow engine costs per task on each executor.

Run with ``make bench`` (``.venv/bin/python -m benchmarks.run``). Prints a markdown table and
rewrites the generated section of BENCHMARKS.md. Every ratio compares runs timed in this same
process, ours and the baseline alternately. Always exits 0; missed targets are listed at the end.

1. ``LocalExecutor``: a 1,000-task chain and a 1,000-item map + reduce against plain Python calls
   of the same functions; per-task overhead in microseconds.
2. ``LocalDaskExecutor`` ("threads", "synchronous") against raw ``dask.delayed`` on the same graph
   and scheduler; ``DaskExecutor(address=...)`` against raw ``distributed`` on the same
   in-process ``LocalCluster``; ratio ours / raw.
3. 64 x 50 ms sleeps mapped on ``LocalDaskExecutor("threads", num_workers=64)`` against the
   ideal 50 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks import cold_start, control_plane, dask_clusters, limits, throttling, ui, workloads
from benchmarks.report import (
    Row,
    format_seconds,
    markdown_table,
    summary_lines,
    update_benchmarks_file,
)
from benchmarks.timing import Samples, measure, measure_pair
from benchmarks.workloads import BuiltFlow
from flowrelay.sdk.executors import DaskExecutor, Executor, LocalDaskExecutor, LocalExecutor
from flowrelay.sdk.executors.dask_executors import pin_inproc_host

ROOT = Path(__file__).resolve().parent.parent
N_TASKS = 1_000
SLEEP_CHILDREN = 64
WARMUP_TASKS = 50
OVERHEAD_TARGET_US = 50.0
RATIO_TARGET = 1.5
SLEEP_RATIO_TARGET = 2.0
SYNC_REFERENCE = "raw dask, synchronous scheduler: 1,000-task chain (reference)"
CLUSTER_OPTIONS: dict[str, Any] = {
    "processes": False,
    "n_workers": 1,
    "threads_per_worker": 2,
    "dashboard_address": None,
}
# With no dashboard, the scheduler and the worker still serve their small HTTP APIs (health,
# metrics), and on the in-process transport they can listen on every interface (seen: 0.0.0.0
# and [::], ports 8787 and random): keep them on 127.0.0.1. No dashboard is served either way
# (the scheduler is told dashboard=False; the worker's needs bokeh, which is not installed).
LOOPBACK_HTTP_OPTIONS: dict[str, Any] = {
    "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"},
    "worker_dashboard_address": "127.0.0.1:0",
}


@dataclass
class Repeats:
    """How many timed runs each kind of benchmark gets (the best one is reported)."""

    local: int = 15
    dask: int = 5
    distributed: int = 3
    sleep: int = 7

    @classmethod
    def all(cls, repeats: int) -> Repeats:
        return cls(repeats, repeats, repeats, repeats)


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, name: str, **samples: Samples) -> None:
        self.raw[name] = {label: sample.as_dict() for label, sample in samples.items()}


def guarded(results: Results, benchmark: str, target: str, body: Callable[[], Row]) -> None:
    """Run one benchmark; an exception (a RecursionError too) becomes an "error" row."""
    print(f"  {benchmark} ...", file=sys.stderr, flush=True)
    try:
        row = body()
    except Exception as exc:
        row = Row(benchmark, "-", "-", "-", target, "error", f"{type(exc).__name__}: {exc}")
    print(f"    -> {row.status}: {row.measure} {row.detail}".rstrip(), file=sys.stderr, flush=True)
    results.rows.append(row)


def _per_task(seconds: float, tasks: int) -> str:
    return f"{format_seconds(seconds)} ({format_seconds(seconds / tasks)}/task)"


def _ratio_row(
    results: Results,
    benchmark: str,
    ours: Samples,
    baseline: Samples,
    tasks: int,
    baseline_name: str,
) -> Row:
    results.record(benchmark, ours=ours, baseline=baseline)
    ratio = round(ours.best / baseline.best, 2)  # judged as shown
    return Row(
        benchmark,
        _per_task(ours.best, tasks),
        f"{_per_task(baseline.best, tasks)} {baseline_name}",
        f"{ratio:.2f}x",
        f"<= {RATIO_TARGET:g}x",
        "pass" if ratio <= RATIO_TARGET else "FAIL",
    )


# --- 1. LocalExecutor against plain Python -----------------------------------------------------


def local_executor_overhead(
    results: Results, benchmark: str, built: BuiltFlow, plain: Callable[[], int], repeats: int
) -> Row:
    executor = LocalExecutor()
    built.check(built.run(executor))  # warm up
    ours, baseline = measure_pair(
        partial(built.run, executor),
        plain,
        repeats,
        check_ours=built.check,
        check_baseline=workloads.expect(built.expected),
        baseline_calls_per_repeat=3,
    )
    results.record(benchmark, ours=ours, baseline=baseline)
    overhead_us = round((ours.best - baseline.best) / built.task_runs * 1e6, 1)  # as shown
    return Row(
        benchmark,
        _per_task(ours.best, built.task_runs),
        f"{format_seconds(baseline.best)} (plain Python)",
        f"{overhead_us:.1f} µs/task overhead",
        f"<= {OVERHEAD_TARGET_US:g} µs/task",
        "pass" if overhead_us <= OVERHEAD_TARGET_US else "FAIL",
    )


def bench_local_executor(results: Results, repeats: Repeats) -> None:
    chain = workloads.chain_flow(N_TASKS)
    guarded(
        results,
        "LocalExecutor: 1,000-task chain",
        f"<= {OVERHEAD_TARGET_US:g} µs/task",
        partial(
            local_executor_overhead,
            results,
            "LocalExecutor: 1,000-task chain",
            chain,
            partial(workloads.plain_chain, N_TASKS),
            repeats.local,
        ),
    )
    watched = workloads.watched_chain_flow(N_TASKS)
    name = "LocalExecutor: 1,000-task chain, a trigger and a state handler on each task"
    guarded(
        results,
        name,
        f"<= {OVERHEAD_TARGET_US:g} µs/task",
        partial(
            local_executor_overhead,
            results,
            name,
            watched,
            partial(workloads.plain_chain, N_TASKS),
            repeats.local,
        ),
    )
    map_reduce = workloads.map_reduce_flow(N_TASKS)
    guarded(
        results,
        "LocalExecutor: 1,000-item map + reduce",
        f"<= {OVERHEAD_TARGET_US:g} µs/task",
        partial(
            local_executor_overhead,
            results,
            "LocalExecutor: 1,000-item map + reduce",
            map_reduce,
            partial(workloads.plain_map_reduce, N_TASKS),
            repeats.local,
        ),
    )


# --- 2. Dask executors against raw dask / distributed ----------------------------------------


def executor_ratio(
    results: Results,
    benchmark: str,
    built: BuiltFlow,
    executor: Executor,
    warmup: Callable[[], None],
    baseline: Callable[[], int],
    baseline_name: str,
    repeats: int,
) -> Row:
    warmup()
    ours, raw = measure_pair(
        partial(built.run, executor),
        baseline,
        repeats,
        check_ours=built.check,
        check_baseline=workloads.expect(built.expected),
    )
    return _ratio_row(results, benchmark, ours, raw, built.task_runs, baseline_name)


def _warm_local_dask(scheduler: str) -> None:
    """First use imports dask and fills its caches; keep that out of the timed runs."""
    for built in (
        workloads.chain_flow(WARMUP_TASKS),
        workloads.map_reduce_flow(WARMUP_TASKS),
    ):
        built.check(built.run(LocalDaskExecutor(scheduler=scheduler)))
    workloads.dask_chain(WARMUP_TASKS, scheduler)
    workloads.dask_map_reduce(WARMUP_TASKS, scheduler)


def bench_local_dask(results: Results, repeats: Repeats) -> None:
    chain = workloads.chain_flow(N_TASKS)
    map_reduce = workloads.map_reduce_flow(N_TASKS)
    for scheduler in ("threads", "synchronous"):
        target = f"<= {RATIO_TARGET:g}x"
        for label, built, baseline, baseline_kind in (
            ("1,000-task chain", chain, workloads.dask_chain, "raw dask"),
            ("1,000-item map + reduce", map_reduce, workloads.dask_map_reduce, "raw dask"),
            ("1,000-task chain", chain, workloads.dask_graph_chain, "raw dask graph"),
            (
                "1,000-item map + reduce",
                map_reduce,
                workloads.dask_graph_map_reduce,
                "raw dask graph",
            ),
        ):
            suffix = " vs a low-level graph" if baseline_kind == "raw dask graph" else ""
            name = f'LocalDaskExecutor("{scheduler}"): {label}{suffix}'
            guarded(
                results,
                name,
                target,
                partial(
                    executor_ratio,
                    results,
                    name,
                    built,
                    LocalDaskExecutor(scheduler=scheduler),
                    partial(_warm_local_dask, scheduler),
                    partial(baseline, N_TASKS, scheduler),
                    f"({baseline_kind}, {scheduler})",
                    repeats.dask,
                ),
            )
    guarded(
        results,
        SYNC_REFERENCE,
        "reference",
        partial(sync_chain_reference, results, repeats.dask),
    )


def sync_chain_reference(results: Results, repeats: int) -> Row:
    name = 'LocalDaskExecutor("synchronous"): 1,000-task chain'
    raw = results.raw.get(name, {}).get("baseline")
    if raw is not None:  # measured above as that benchmark's baseline
        best = float(raw["best_s"])
    else:
        check = workloads.expect(workloads.chain_expected(N_TASKS))
        best = measure(partial(workloads.dask_chain, N_TASKS, "synchronous"), repeats, check).best
    per_task_ms = best / N_TASKS * 1e3
    return Row(
        SYNC_REFERENCE,
        "-",
        _per_task(best, N_TASKS),
        f"{per_task_ms:.3f} ms/task",
        "reference only (Prefect 1.4.1: 0.14 ms/task)",
        "info",
    )


@contextmanager
def local_cluster() -> Iterator[str]:
    """One in-process LocalCluster for the whole run; yields its scheduler address."""
    from distributed import LocalCluster

    pin_inproc_host()
    with LocalCluster(**CLUSTER_OPTIONS, **LOOPBACK_HTTP_OPTIONS) as cluster:
        address = str(cluster.scheduler_address)
        if not address.startswith(("inproc://127.0.0.1/", "tcp://127.0.0.1:")):
            raise workloads.BenchmarkError(f"the LocalCluster is not local-only: {address}")
        yield address


def _warm_distributed(address: str) -> None:
    for built in (
        workloads.chain_flow(WARMUP_TASKS),
        workloads.map_reduce_flow(WARMUP_TASKS),
    ):
        built.check(built.run(DaskExecutor(address=address)))
    workloads.distributed_chain(address, WARMUP_TASKS)
    workloads.distributed_map_reduce(address, WARMUP_TASKS)


def bench_distributed(results: Results, repeats: Repeats) -> None:
    target = f"<= {RATIO_TARGET:g}x"
    benchmarks = [
        ("DaskExecutor (LocalCluster): 1,000-task chain", workloads.chain_flow(N_TASKS)),
        (
            "DaskExecutor (LocalCluster): 1,000-item map + reduce",
            workloads.map_reduce_flow(N_TASKS),
        ),
    ]
    baselines = (workloads.distributed_chain, workloads.distributed_map_reduce)
    try:
        with local_cluster() as address:
            for (name, built), baseline in zip(benchmarks, baselines, strict=True):
                guarded(
                    results,
                    name,
                    target,
                    partial(
                        executor_ratio,
                        results,
                        name,
                        built,
                        DaskExecutor(address=address),
                        partial(_warm_distributed, address),
                        partial(baseline, address, N_TASKS),
                        "(raw distributed, same cluster)",
                        repeats.distributed,
                    ),
                )
    except Exception as exc:  # guarded() catches the benchmarks' own errors: the cluster failed
        done = {row.benchmark for row in results.rows}
        for name, _ in benchmarks:
            if name not in done:
                detail = f"LocalCluster failed: {type(exc).__name__}: {exc}"
                results.rows.append(Row(name, "-", "-", "-", target, "error", detail))


# --- 3. Parallel sleeps against the ideal -------------------------------------------------------


def sleep_map(results: Results, benchmark: str, repeats: int) -> Row:
    built = workloads.sleep_map_flow(SLEEP_CHILDREN)
    executor = LocalDaskExecutor(scheduler="threads", num_workers=SLEEP_CHILDREN)
    built.check(built.run(executor))  # warm up
    ours = measure(partial(built.run, executor), repeats, built.check)
    results.record(benchmark, ours=ours)
    ideal = workloads.SLEEP_SECONDS
    ratio = round(ours.best / ideal, 2)  # judged as shown
    return Row(
        benchmark,
        format_seconds(ours.best),
        f"{format_seconds(ideal)} (ideal: one sleep)",
        f"{ratio:.2f}x",
        f"<= {SLEEP_RATIO_TARGET:g}x",
        "pass" if ratio <= SLEEP_RATIO_TARGET else "FAIL",
    )


def bench_sleep(results: Results, repeats: Repeats) -> None:
    name = (
        f'LocalDaskExecutor("threads", num_workers={SLEEP_CHILDREN}): '
        f"{SLEEP_CHILDREN} x {format_seconds(workloads.SLEEP_SECONDS)} sleep map"
    )
    guarded(
        results,
        name,
        f"<= {SLEEP_RATIO_TARGET:g}x",
        partial(sleep_map, results, name, repeats.sleep),
    )


# --- report ------------------------------------------------------------------------------------


def environment() -> dict[str, str]:
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "dask": version("dask"),
        "distributed": version("distributed"),
        "recursion_limit": str(sys.getrecursionlimit()),
    }


def section(env: dict[str, str], rows: list[Row], repeats: Repeats) -> str:
    cluster = ", ".join(f"{key}={value!r}" for key, value in CLUSTER_OPTIONS.items())
    lines = [
        f"Generated by `make bench` on {env['date']}.",
        "",
        f"- Platform: `{env['platform']}`",
        f"- CPUs: {env['cpus']}",
        f"- Python {env['python']}, dask {env['dask']}, distributed {env['distributed']} "
        f"(recursion limit {env['recursion_limit']})",
        f"- Best of {repeats.local} runs (LocalExecutor), {repeats.dask} (LocalDaskExecutor), "
        f"{repeats.distributed} (DaskExecutor), {repeats.sleep} (sleep map); ours and the "
        "baseline alternate in the same process.",
        "",
        markdown_table(rows),
        "",
        *summary_lines(rows),
        "",
        "How to read it:",
        "",
        "- Only `flow.run(...)` is timed; flows are built beforehand. The map + reduce flow has "
        "1,001 task runs (1,000 mapped children and the sum).",
        "- Per-task overhead = (`flow.run` time - plain Python time) / task runs.",
        "- Two raw dask baselines: the `dask.delayed` API (building the graph and computing it "
        "with the same scheduler, since `flow.run` builds its graph while it runs), and, stricter, "
        "a hand-written low-level graph (a dict of tuples) run by the same scheduler's `get`: "
        "dask's floor, with no graph-building cost at all. LocalDaskExecutor builds such a "
        "low-level graph itself, so against `delayed` it can be faster than raw dask.",
        f"- `DaskExecutor(address=...)` and raw `distributed` (`client.submit` chain; "
        f"`client.map` + `submit(sum)`) share one `LocalCluster({cluster})`, started once "
        "outside the timings (its idle HTTP endpoints bound to 127.0.0.1); each run opens and "
        "closes its own `Client` on it.",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--repeats", type=int, help="timed runs per benchmark (default: 15/5/3/7 by kind)"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone"
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "BENCHMARKS.md", help="the file to update"
    )
    parser.add_argument(
        "--only",
        choices=[
            "executors",
            "cold-start",
            "dask-clusters",
            "limits",
            "control-plane",
            "throttling",
            "ui",
        ],
        help="run one section (default: all); the other sections of the file are kept",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    repeats = Repeats.all(args.repeats) if args.repeats else Repeats()
    if min(asdict(repeats).values()) < 1:
        print("--repeats must be at least 1", file=sys.stderr)
        return 2
    written: list[str] = []
    if args.only in (None, "executors"):
        results = Results()
        print("Running executor benchmarks (one to two minutes)...", file=sys.stderr, flush=True)
        bench_local_executor(results, repeats)
        bench_local_dask(results, repeats)
        bench_distributed(results, repeats)
        bench_sleep(results, repeats)
        env = environment()
        text = section(env, results.rows, repeats)
        print()
        print(text)
        if not args.no_write:
            update_benchmarks_file(args.output, text)
            raw_path = ROOT / ".bench" / "executors.json"
            raw_path.parent.mkdir(exist_ok=True)
            raw_path.write_text(
                json.dumps({"environment": env, "results": results.raw}, indent=2) + "\n",
                encoding="utf-8",
            )
            written.append(str(raw_path))
    if args.only in (None, "cold-start"):
        print("Measuring handler cold starts (fresh interpreters)...", file=sys.stderr, flush=True)
        cold_text = cold_start.section(
            cold_start.measure() + cold_start.measure_kubernetes_launch()
        )
        sizes_text = cold_start.layer_sizes()
        print()
        print(cold_text)
        print()
        print(sizes_text)
        if not args.no_write:
            update_benchmarks_file(args.output, cold_text, name="cold-start")
            update_benchmarks_file(args.output, sizes_text, name="layer-size")
    if args.only in (None, "dask-clusters"):
        print(
            "Timing flow runs on ephemeral Dask clusters in the dev stack (about a minute)...",
            file=sys.stderr,
            flush=True,
        )
        clusters_text = cold_start.section(dask_clusters.measure())
        print()
        print(clusters_text)
        if not args.no_write:
            update_benchmarks_file(args.output, clusters_text, name="dask-clusters")
    counted = {
        "limits": (
            "Counting the DynamoDB work a concurrency limit adds to a run (under a minute)...",
            limits.report,
        ),
        "control-plane": (
            "Counting the control plane's AWS calls and write units per run, and timing runs "
            "on the dev stack (about two minutes)...",
            control_plane.report,
        ),
        "throttling": (
            "Measuring the dispatcher's backoff under injected throttling (under a minute)...",
            throttling.report,
        ),
        "ui": (
            "Timing the web UI's pages over a flow of 10,000 runs on the dev stack (about a "
            "minute)...",
            ui.report,
        ),
    }
    for name, (announcement, report) in counted.items():
        if args.only in (None, name):
            print(announcement, file=sys.stderr, flush=True)
            text = report()
            print()
            print(text)
            if not args.no_write:
                update_benchmarks_file(args.output, text, name=name)
    if not args.no_write:
        print(f"\nWrote {', '.join([str(args.output), *written])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
