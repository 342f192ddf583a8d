"""Screenshots of every page of the web UI over the demo's runs, taken by headless Chromium.

Runs ``flowrelay demo --keep`` (the dev stack, the demo's runs, the UI served over them), loads
each page in headless Chromium and saves a PNG of it in docs/ui/ (what docs/ui.md shows), then
stops the demo. Without Chromium it says how to install it and exits 2.

    make screenshots            # or: .venv/bin/python scripts/ui_screenshots.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from flowrelay.ui.browser import INSTALL_CHROMIUM, find_chromium, screenshot

ROOT = Path(__file__).resolve().parents[1]
FLOWRELAY = Path(sys.executable).parent / "flowrelay"
#: How long the demo may take to finish its runs and serve the UI.
DEMO_SECONDS = 600


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui", help="where to save")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print(f"error: {INSTALL_CHROMIUM}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    demo = subprocess.Popen(
        [str(FLOWRELAY), "demo", "--keep", "--ui-port", "0"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _ui_address(demo)
        print(f"the demo's UI: {url}", file=sys.stderr)
        for name, path in _pages(url):
            target = args.out / f"{name}.png"
            # A run's page is long: its log and history are below its timeline.
            screenshot(
                chromium,
                url + path,
                target,
                height=2000 if name.startswith("run-") or name == "run" else 900,
            )
            print(f"saved {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
    finally:
        demo.send_signal(signal.SIGINT)
        code: int | None
        try:
            code = demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            code = None
    if code != 0:
        print(f"error: the demo ended with exit code {code}", file=sys.stderr)
        return 1
    return 0


def _ui_address(demo: subprocess.Popen[str]) -> str:
    """The UI's address, from the line the demo prints once its runs are done."""
    assert demo.stderr is not None
    deadline = time.monotonic() + DEMO_SECONDS
    for line in demo.stderr:
        found = re.search(r"flowrelay UI\S*: (http://\S+)", line)
        if found:
            return found.group(1)
        if "runs ended as designed" in line or line.startswith("error"):
            print(line.rstrip(), file=sys.stderr)
        if time.monotonic() > deadline:
            break
    raise SystemExit(f"the demo served no UI (exit code {demo.poll()})")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)


def _pages(url: str) -> list[tuple[str, str]]:
    """Each page worth a picture: the lists, and one run of each way a run ends."""
    runs = _get(f"{url}/api/runs?limit=100")["runs"]

    def first(state: str) -> str | None:
        return next((run["run_id"] for run in runs if run["state"] == state), None)

    pages = [("runs", "/runs")]
    # A run on an ephemeral Dask cluster (its cluster and dashboard shown), and a cancelled
    # one. A failed run's page shows its traceback, which names the paths of this machine's
    # checkout: see it live (`flowrelay demo --keep`) rather than in a committed picture.
    dask = next(
        (run["run_id"] for run in runs if run["flow_name"] == "dask-fargate"), first("Success")
    )
    for name, run_id in (("run", dask), ("run-cancelled", first("Cancelled"))):
        if run_id is not None:
            pages.append((name, f"/runs/{run_id}"))
    flows = _get(f"{url}/api/flows")["flows"]
    pages.append(("flows", "/flows"))
    scheduled = next((flow["name"] for flow in flows if flow.get("schedules")), None)
    if scheduled is not None:
        pages.append(("flow", f"/flows/{scheduled}"))
    pages += [("targets", "/targets"), ("limits", "/limits"), ("dead-letters", "/dlq")]
    return pages


if __name__ == "__main__":
    sys.exit(main())
