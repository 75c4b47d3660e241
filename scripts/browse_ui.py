"""Screenshots of a study in the MLflow UI, taken by a real headless Chromium.

    .venv/bin/python scripts/browse_ui.py                             # mlruns.example
    .venv/bin/python scripts/browse_ui.py --store ablate_store --out build/screenshots

It starts ``ablate ui`` on a private copy of the store's ``mlflow.db`` (the artifacts are
linked, not copied), finds the newest study's parent run and its first trial run through the
REST API, and writes PNGs of: the experiment as a first-time user opens it (the experiments
list links to ``#/experiments/<id>``), the runs view whose address ``ablate ui`` prints (for a
study written by this version: ablate's saved view), the same after "Override saved view" and
a reload (MLflow 3.18 drops a shared view's columns on a plain reload, see docs/ui.md), its
charts (the parent run opened when the list shows it), the runs view with the experiment's
description expanded, the study
(parent) run's overview with its description expanded ("Show more"), its ``report.html``
artifact (its top, and scrolled to its first figure), the trial run's overview, the trial's
model-metrics charts (the whole scrolled length in one tall image) and the trial's artifacts
tab on ``config.yaml``. One fresh browser profile serves all pages: the first shows what
MLflow shows on a first visit (its assistant panel opens by itself); the panel is then closed,
as a user closes it once.

Needs Chromium from the Debian packages (``apt-get install -y chromium``) and Playwright
(``pip install playwright``; no ``playwright install``: it drives /usr/bin/chromium).
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
MAX_HEIGHT = 30000  # px; a taller page is cut there
# The element that scrolls a page's content (MLflow pages scroll inside a pane, not the body).
SCROLLER_JS = """() => {
  let best = null;
  for (const el of document.querySelectorAll('*')) {
    const style = getComputedStyle(el);
    if (!['auto', 'scroll'].includes(style.overflowY)) continue;
    if (el.scrollHeight > el.clientHeight + 4 && (!best || el.scrollHeight > best.scrollHeight))
      best = el;
  }
  return best ? [best.scrollHeight, best.clientHeight] : [0, 0];
}"""


def main() -> int:
    args = parse_args()
    if not Path(args.chromium).is_file():
        print(f"no Chromium at {args.chromium}; install it with: "
              "sudo apt-get install -y chromium   (or give --chromium PATH)", file=sys.stderr)
        return 2
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        print("Playwright is not installed: pip install playwright (it drives the Debian "
              "Chromium; no 'playwright install' needed)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ablate-browse-") as tmp:
        ui = start_ui(private_copy(args.store, Path(tmp)), free_port())
        try:
            address = wait_for_address(ui)
            server = address.split("/#/", 1)[0].rstrip("/")
            pages = study_pages(server, address)
            for name, height in shoot(pages, args):
                print(f"wrote {args.out / name} ({height} px high)")
        finally:
            stop_ui(ui)
    return 0


def private_copy(store: Path, tmp: Path) -> Path:
    """A store folder in ``tmp`` with a copy of ``mlflow.db`` and a link to the artifacts, so
    that the server cannot change the original (e.g. migrate an older database)."""
    if not (store / "mlflow.db").is_file():
        raise SystemExit(f"{store} holds no mlflow.db")
    copy = tmp / "store"
    copy.mkdir()
    shutil.copy2(store / "mlflow.db", copy / "mlflow.db")
    if (store / "artifacts").is_dir():
        (copy / "artifacts").symlink_to((store / "artifacts").absolute())
    return copy


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=REPO / "mlruns.example")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--settle", type=float, default=8.0,
                        help="seconds a page gets to render after it loaded")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_ui(store: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "ablate.cli", "ui", "--store", str(store), "--port", str(port)],
        stdout=subprocess.PIPE, text=True, env=env,
    )


def wait_for_address(ui: subprocess.Popen[str], limit: float = 300.0) -> str:
    """The address ``ablate ui`` prints once its server answers."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in ui.stdout], daemon=True).start()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1).strip()
        except queue.Empty:
            if ui.poll() is not None:
                raise SystemExit("ablate ui exited before it served the store") from None
            continue
        print(line)
        if line.startswith("open "):
            return line.removeprefix("open ")
    raise SystemExit("ablate ui printed no address")


def stop_ui(ui: subprocess.Popen[str]) -> None:
    ui.send_signal(signal.SIGINT)
    try:
        ui.wait(timeout=30)
    except subprocess.TimeoutExpired:
        ui.kill()


def post(server: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{server}/ajax-api/2.0/mlflow{path}", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def study_pages(server: str, address: str) -> list[tuple[str, str, bool]]:
    """(file name, address, whole scrolled length) of each page to shoot; names containing
    ``expanded`` or ``charts`` get a click first (see :func:`act`)."""
    runs = post(server, "/runs/search", {
        "experiment_ids": [e["experiment_id"] for e in post(
            server, "/experiments/search", {"max_results": 1000})["experiments"]],
        "filter": "tags.`ablate.role` = 'parent'", "order_by": ["attributes.start_time DESC"],
        "max_results": 1,
    })["runs"]
    if not runs:
        raise SystemExit("the store holds no ablate study")
    parent = runs[0]["info"]
    experiment = parent["experiment_id"]
    trials = post(server, "/runs/search", {
        "experiment_ids": [experiment],
        "filter": f"tags.`mlflow.parentRunId` = '{parent['run_id']}'",
        "order_by": ["attributes.start_time ASC"], "max_results": 1,
    }).get("runs", [])
    base = f"{server}/#/experiments/{experiment}"
    ml = "?workflowType=machine_learning"
    study_run = f"{base}/runs/{parent['run_id']}"
    pages = [
        ("01-experiment-first-open.png", base, False),
        ("02-runs-view.png", address, False),
        # the view made this browser's own ("Override saved view"), so that later pages keep
        # it through their reloads
        ("02b-runs-view-overridden-reloaded.png", address, False),
        ("03-runs-charts.png", address + "&compareRunsMode=CHART", True),
        ("03b-runs-view-description-expanded.png", address, True),
        ("04-study-run-overview-expanded.png", study_run + ml, True),
        ("04b-study-run-report-html.png", f"{study_run}/artifacts/report.html{ml}", False),
        ("04c-study-run-report-html-figure.png", f"{study_run}/artifacts/report.html{ml}", False),
    ]
    if trials:
        trial = f"{base}/runs/{trials[0]['info']['run_id']}"
        pages += [
            ("05-trial-run-overview.png", trial + ml, False),
            ("06-trial-model-metrics.png", f"{trial}/model-metrics{ml}", True),
            ("07-trial-artifacts-config.png", f"{trial}/artifacts/config.yaml{ml}", False),
        ]
    return pages


def shoot(pages: list[tuple[str, str, bool]], args: argparse.Namespace) -> list[tuple[str, int]]:
    from playwright.sync_api import sync_playwright

    written = []
    with sync_playwright() as driver, tempfile.TemporaryDirectory() as profile:
        context = driver.chromium.launch_persistent_context(
            profile, executable_path=args.chromium, args=CHROMIUM_FLAGS, headless=True,
            viewport={"width": args.width, "height": args.height},
        )
        page = context.new_page()
        for i, (name, url, whole) in enumerate(pages):
            page.set_viewport_size({"width": args.width, "height": args.height})
            page.goto(url, wait_until="load")
            if i == 0:  # later pages as seen once the first visit's assistant panel is closed
                time.sleep(args.settle)
                page.evaluate("localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false')")
            elif "viewStateShareKey" in url:  # a reload would drop the saved view (docs/ui.md)
                time.sleep(args.settle)
            else:  # a fresh document: the UI reads its settings, and nothing stays in memory
                page.reload(wait_until="load")
                time.sleep(args.settle)
            act(page, name, args)
            height = grow_to_content(page, args) if whole else args.height
            page.screenshot(path=str(args.out / name), full_page=whole, timeout=300_000)
            written.append((name, height))
    return written


def act(page: Any, name: str, args: argparse.Namespace) -> None:
    """What a user clicks on that page first: "Override saved view" (then a reload), the runs
    list's parent run (to see its trials), the experiment description's expand button, a run
    description's "Show more"."""
    if name.startswith("02b-"):
        override = page.get_by_role("button", name="Override saved view")
        if override.count():
            override.first.click()
            time.sleep(args.settle / 4)
            page.reload(wait_until="load")
            time.sleep(args.settle)
        return
    if name.startswith("03-") and "viewStateShareKey" not in page.url:
        target = page.locator("button[data-component-id*=runnamecellrenderer]")
    elif name.startswith("03b-"):
        target = page.locator(
            "button[data-component-id='mlflow.experiment.metadata_editor.expand_button']")
    elif "overview-expanded" in name:
        target = page.get_by_text("Show more", exact=True)
    elif name.startswith("04c-"):  # the artifact viewer shows an HTML file in an iframe
        page.wait_for_selector("iframe", timeout=60_000)
        time.sleep(2)
        for frame in page.frames[1:]:
            frame.evaluate("() => document.images.length && document.images[0].scrollIntoView()")
        time.sleep(1)
        return
    else:
        return
    if target.count():
        target.first.click()
        time.sleep(args.settle / 2)


def grow_to_content(page: Any, args: argparse.Namespace) -> int:
    """Make the viewport as tall as the scrolled content, so one image shows all of it."""
    height = args.height
    scroll_height, client_height = page.evaluate(SCROLLER_JS)
    for _ in range(4):  # charts render as they come into view, which can lengthen the page
        wanted = min(MAX_HEIGHT, height + scroll_height - client_height)
        if scroll_height <= client_height or wanted == height:
            break
        page.set_viewport_size({"width": args.width, "height": wanted})
        time.sleep(args.settle / 2)
        grown = page.evaluate(SCROLLER_JS)
        if grown[0] and grown[1] <= client_height:  # a fixed-height box: nothing gained
            page.set_viewport_size({"width": args.width, "height": height})
            break
        height, (scroll_height, client_height) = wanted, grown
    return height


if __name__ == "__main__":
    sys.exit(main())
