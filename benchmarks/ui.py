"""``ablate ui`` against plain ``mlflow ui`` (default options) on the same store.

    .venv/bin/python benchmarks/ui.py                          # a copy of mlruns.example
    .venv/bin/python benchmarks/ui.py --store ablate_store --repeats 3

For each server, started alternately ``--repeats`` times (default 2) in its own session as a
terminal would start it, it measures: the seconds until ``GET /`` answers 200 and until
``POST /ajax-api/2.0/mlflow/experiments/search`` answers 200; the processes of its tree and
their total resident memory once the tree stops growing (psutil when installed, else /proc);
and the seconds until every one of those processes is gone after a Ctrl-C (SIGINT to the
process group, as a terminal sends it). The store folder is copied to a temporary folder first,
so both servers read the same files and the original is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEARCH = "/ajax-api/2.0/mlflow/experiments/search"
LIMIT = 300.0  # seconds a server gets to answer or to stop


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def commands(store: Path, port: int) -> dict[str, list[str]]:
    mlflow = str(Path(sys.executable).parent / "mlflow")
    return {
        "ablate ui": [sys.executable, "-m", "ablate.cli", "ui", "--store", str(store),
                      "--port", str(port)],
        "mlflow ui": [mlflow, "ui", "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
                      "--artifacts-destination", str(store / "artifacts"), "--port", str(port)],
    }


def answers(url: str, body: bytes | None = None) -> bool:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants that are not zombies."""
    try:
        import psutil

        root = psutil.Process(pid)
        return [p.pid for p in [root, *root.children(recursive=True)]
                if p.status() != psutil.STATUS_ZOMBIE]
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - the process is gone
        return []
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found if Path(f"/proc/{pid}").exists() else []


def rss_mib(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
    return total


def running(pids: list[int]) -> list[int]:
    left = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            left.append(pid)
    return left


def measure(command: list[str]) -> dict[str, float]:
    """Start ``command``; time its first page; count its tree; time a Ctrl-C."""
    port = int(command[command.index("--port") + 1])
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, env=env)
    figures: dict[str, float] = {}
    try:
        while "root" not in figures or "search" not in figures:
            if time.monotonic() - start > LIMIT or process.poll() is not None:
                raise RuntimeError(f"{command[:4]} did not answer")
            if "root" not in figures and answers(base + "/"):
                figures["root"] = time.monotonic() - start
            if "search" not in figures and answers(base + SEARCH, b'{"max_results": 10}'):
                figures["search"] = time.monotonic() - start
            time.sleep(0.1)
        pids = settled_tree(process.pid)
        figures["processes"] = len(pids)
        figures["rss"] = rss_mib(pids)
        stopped = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        while running(pids) and time.monotonic() - stopped < LIMIT:
            time.sleep(0.02)
            process.poll()  # reap the direct child
        figures["stop"] = time.monotonic() - stopped
        figures["left"] = len(running(pids))
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    return figures


def settled_tree(pid: int, quiet: float = 3.0, limit: float = 30.0) -> list[int]:
    """The process tree once it has not changed for ``quiet`` seconds (job runners start late)."""
    pids, since, begin = tree(pid), time.monotonic(), time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() - begin < limit:
        time.sleep(0.25)
        now = tree(pid)
        if sorted(now) != sorted(pids):
            pids, since = now, time.monotonic()
    return pids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=REPO / "mlruns.example",
                        help="store folder with mlflow.db and artifacts/ (copied first)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ablate-ui-bench-") as tmp:
        store = Path(tmp) / "store"
        shutil.copytree(args.store, store)
        results: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.repeats):
            for name, command in commands(store, free_port()).items():
                results.setdefault(name, []).append(measure(command))
                print(f"  {name}: {json.dumps(results[name][-1])}", flush=True)
    report(results, args.store)


def report(results: dict[str, list[dict[str, float]]], store: Path) -> None:
    load = os.getloadavg()[0]
    print(f"\nstore {store}; {os.cpu_count()} CPU cores, load average {load:.1f}; "
          f"medians of {len(next(iter(results.values())))} starts each\n")
    columns = [("root", "first page s", "{:.1f}"), ("search", "search API s", "{:.1f}"),
               ("processes", "processes", "{:.0f}"), ("rss", "RSS MiB", "{:.0f}"),
               ("stop", "Ctrl-C to gone s", "{:.2f}"), ("left", "left after", "{:.0f}")]
    print("| server | " + " | ".join(title for _, title, _ in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    medians = {name: {key: statistics.median(r[key] for r in runs) for key, _, _ in columns}
               for name, runs in results.items()}
    for name, values in medians.items():
        cells = [fmt.format(values[key]) for key, _, fmt in columns]
        print(f"| {name} | " + " | ".join(cells) + " |")
    lean, plain = medians["ablate ui"], medians["mlflow ui"]
    print(f"\nablate ui / mlflow ui: first page {lean['root'] / plain['root']:.2f}x, "
          f"memory {lean['rss'] / plain['rss']:.2f}x, "
          f"Ctrl-C {lean['stop'] / max(plain['stop'], 1e-3):.2f}x")


if __name__ == "__main__":
    main()
