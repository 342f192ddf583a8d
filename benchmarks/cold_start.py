"""Cold start: what importing each Lambda handler module costs, against a bare ``import boto3``.

Each figure is the median over fresh interpreters of the wall time of the import statements,
interleaved with the baseline so both see the same machine load. The handlers import the
flowrelay package from the layer ``sam build`` makes (layers/flowrelay/Makefile, with its
hash-checked bytecode), built into a scratch folder first, because that is what Lambda imports.

Rows per handler: the module alone (what the budget names) and the module with boto3, which
every invocation needs (what a real cold start pays before its first call). One more row, the
floor: boto3 plus the libraries the design chooses for every handler (powertools' Logger and
batch processing, pydantic's BaseModel and Field) with nothing of flowrelay's.
"""

from __future__ import annotations

import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from benchmarks.report import Row

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("dispatch", "record_state", "cancel", "monitor")
TARGET = 1.3
FLOOR = (
    "import boto3; import aws_lambda_powertools.utilities.batch; "
    "from aws_lambda_powertools import Logger; from pydantic import BaseModel, Field"
)


def import_seconds(statements: str, path_entries: tuple[Path, ...] = ()) -> float:
    """Wall time of ``statements`` (imports) in a fresh interpreter, ``path_entries`` first on
    sys.path."""
    prefix = "".join(f"sys.path.insert(0, {str(entry)!r}); " for entry in reversed(path_entries))
    code = (
        f"import sys, time; {prefix}start = time.perf_counter(); {statements}; "
        "print(time.perf_counter() - start)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return float(result.stdout)


def build_layer(artifacts: Path) -> Path:
    """The flowrelay layer as `sam build` makes it; returns the folder Lambda puts on sys.path."""
    subprocess.run(
        [
            "make",
            "-f",
            str(ROOT / "layers" / "flowrelay" / "Makefile"),
            "build-FlowrelayLayer",
            f"ARTIFACTS_DIR={artifacts}",
            f"PYTHON={sys.executable}",
        ],
        capture_output=True,
        check=True,
    )
    return artifacts / "python"


def ratio_row(name: str, samples: list[float], base: float, target: bool = True) -> Row:
    ours = statistics.median(samples)
    ratio = ours / base
    return Row(
        benchmark=name,
        ours=f"{ours * 1000:.0f} ms",
        baseline=f"{base * 1000:.0f} ms (import boto3)",
        measure=f"{ratio:.2f}x",
        target=f"<= {TARGET:g}x" if target else "(reference)",
        status=("pass" if ratio <= TARGET else "FAIL") if target else "info",
    )


def measure(repeats: int = 11) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        layer = build_layer(Path(scratch))
        baseline, floor = [], []
        for function in FUNCTIONS:
            path = (ROOT / "functions" / function, layer)
            alone, with_boto3 = [], []
            for _ in range(repeats):
                baseline.append(import_seconds("import boto3"))
                floor.append(import_seconds(FLOOR))
                alone.append(import_seconds("import app", path))
                with_boto3.append(import_seconds("import boto3; import app", path))
            base = statistics.median(baseline)
            rows.append(ratio_row(f"import functions/{function}/app.py (module)", alone, base))
            rows.append(
                ratio_row(f"import functions/{function}/app.py (module + boto3)", with_boto3, base)
            )
        rows.append(
            ratio_row(
                "floor: boto3 + powertools Logger and batch + pydantic (no flowrelay)",
                floor,
                statistics.median(baseline),
                target=False,
            )
        )
    return rows


#: The first Kubernetes launch of a fresh handler process: the launcher and the kubernetes client
#: imported, an EKS token signed, one Job created (over HTTP, on the dev stack's API).
KUBERNETES_LAUNCH = """
import boto3
from datetime import datetime, timezone
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.kubernetes.launcher import KubernetesLauncher
now = datetime.now(timezone.utc)
session = boto3.session.Session(
    aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
)
launcher = KubernetesLauncher(table_name="t", bus_name="b", session=session)
target = Target(name="k", kind="kubernetes", settings={
    "eks_cluster": "flows", "api_server": URL, "namespace": "flowrelay", "image": "x/y:1"})
run = FlowRun(run_id=RUN, flow_name="bench", created_at=now, updated_at=now, state_entered_at=now)
launcher.launch(run, target)
"""


def measure_kubernetes_launch(repeats: int = 11) -> list[Row]:
    """The cold cost of a first Kubernetes launch, against ``import boto3`` (both in fresh
    interpreters, interleaved), on the dev stack's Kubernetes API (no pods are run)."""
    import uuid

    from flowrelay.devstack.kubernetes import KubernetesApi

    api = KubernetesApi(eks_cluster="flows")
    url = api.start()
    baseline, launches = [], []
    try:
        for _ in range(repeats):
            baseline.append(import_seconds("import boto3"))
            code = KUBERNETES_LAUNCH.replace("URL", repr(url)).replace(
                "RUN", repr(uuid.uuid4().hex)
            )
            launches.append(import_seconds(f"exec({code!r})", (ROOT / "shared",)))
    finally:
        api.stop()
    return [
        ratio_row(
            "first Kubernetes launch in a fresh process (import + EKS token + create Job)",
            launches,
            statistics.median(baseline),
            target=False,
        )
    ]


def _size(folder: Path) -> tuple[int, int, int]:
    """Bytes on disk, bytes zipped (as the layer is uploaded), and .py files under ``folder``."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            archive.write(path, path.relative_to(folder).as_posix())
    modules = sum(1 for path in files if path.suffix == ".py")
    return sum(path.stat().st_size for path in files), len(buffer.getvalue()), modules


def layer_sizes() -> str:
    """The flowrelay layer as built now (only what Lambda imports) next to the whole package
    built the same way (what the layer shipped before docs/architecture.md's layering), as a
    table."""
    with tempfile.TemporaryDirectory() as scratch:
        layer = build_layer(Path(scratch) / "layer")
        whole = Path(scratch) / "whole" / "python"
        shutil.copytree(
            ROOT / "shared" / "flowrelay",
            whole / "flowrelay",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        subprocess.run(
            [
                *(sys.executable, "-m", "compileall", "-q", "-f", "-j", "0"),
                *("--invalidation-mode", "checked-hash", str(whole)),
            ],
            capture_output=True,
            check=True,
        )
        rows = [("the layer: core, aws, launchers, control, handlers", _size(layer))]
        rows.append(("the whole package (sdk, runner, cli, devstack, examples too)", _size(whole)))
    lines = [
        "| flowrelay layer | on disk | zipped | modules |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {disk / 1024:,.0f} KiB | {zipped / 1024:,.0f} KiB | {modules} |"
        for name, (disk, zipped, modules) in rows
    ]
    return "\n".join(lines)


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
