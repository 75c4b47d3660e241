#!/usr/bin/env python
"""The example gallery: run each ready study's ``cpu`` profile and write its page.

For every study (``--study``, repeatable; default all seven) this runs
``ablate study run studies/<study>.yaml --profile cpu`` into a fresh store
(``build/examples/<study>``), timed as a whole (study creation included), then writes

* ``docs/examples/<study>.md``: the machine, the wall time, the data, the profile's settings,
  what the tables conclude (generated from the report's decisions), then the full report;
* its figures ``docs/examples/<study>_*.png`` and ``docs/examples/<study>.html`` (the report
  as one self-contained file);
* ``docs/examples/<study>.json``: the page's facts, from which ``docs/examples/README.md``
  (the index) is rebuilt over every study that has one.

    .venv/bin/python scripts/make_examples.py                          # all seven (long)
    .venv/bin/python scripts/make_examples.py --study quickstart
    .venv/bin/python scripts/make_examples.py --index-only              # rebuild the index
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.example_text import conclusions, data_line  # noqa: E402

STUDIES = ("quickstart", "membrane_cumulative", "plants_multichannel", "satellite_binary",
           "road_efficiency", "architecture_comparison", "lightweight_efficiency")
PROFILE = "cpu"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, load, the versions that matter."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    return {"cores": os.cpu_count(), "cpu": model, "memory_gib": memory,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__, "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}"}


def ablate_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ablate.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)


def run_study(study: str, profile: str, store: Path, env: dict[str, str]) -> dict[str, Any]:
    """``ablate study run`` of the study's ``profile`` into a fresh ``store``, timed."""
    if store.exists():
        shutil.rmtree(store)
    spec = f"studies/{study}.yaml"
    check = ablate_cli("check", spec, "--profile", profile, env=env)
    if check.returncode != 0:
        raise SystemExit(f"{study}: ablate check failed:\n{check.stdout}{check.stderr}")
    load_before = os.getloadavg()
    started = time.perf_counter()
    cpu_before = os.times()
    run = ablate_cli("study", "run", spec, "--profile", profile, "--store", str(store),
                     "--quiet", env=env)
    wall = time.perf_counter() - started
    cpu_after = os.times()
    if run.returncode != 0:
        raise SystemExit(f"{study}: ablate study run failed ({run.returncode}):\n"
                         f"{run.stdout[-4000:]}{run.stderr[-4000:]}")
    children = (cpu_after.children_user - cpu_before.children_user
                + cpu_after.children_system - cpu_before.children_system)
    return {"wall_s": wall, "cpu_s": children, "load_before": load_before,
            "load_after": os.getloadavg(), "check": check.stdout.strip(),
            "warnings": check.stderr.strip()}


def study_name(study: str, profile: str) -> str:
    from ablate import load_spec

    return load_spec(ROOT / "studies" / f"{study}.yaml", profile=profile).name


def profile_yaml(study: str, profile: str) -> str:
    """The profile's overrides as written in the spec file."""
    text = (ROOT / "studies" / f"{study}.yaml").read_text()
    block = re.search(rf"^  {profile}:.*?(?=^  \w[\w-]*:|\Z)", text, re.S | re.M)
    return block.group(0).rstrip() if block else ""


def write_reports(study: str, name: str, store: Path, out: Path) -> tuple[str, Any]:
    """The markdown (figures next to it), HTML and the built report of the study."""
    from ablate.reporting import assemble, load_runs
    from ablate.stores import resolve_stores

    stores = resolve_stores(store)
    for old in out.glob(f"{study}_*.png"):
        old.unlink()
    text, _ = assemble.write_report(stores, name, out / f"{study}.md")
    assemble.write_report(stores, name, out / f"{study}.html", fmt="html")
    report = assemble.build(load_runs(stores, name))
    return text, report


def page(study: str, facts: dict[str, Any], report_md: str, lines: list[str]) -> str:
    """The gallery page: facts, conclusions, then the report under its own heading."""
    m = facts["machine"]
    minutes = facts["wall_s"] / 60
    gpu = f", GPU {m['gpu']}" if m["gpu"] else ", no GPU"
    body = report_md.split("\n", 1)[1] if report_md.startswith("# ") else report_md
    body = re.sub(r"^(#+) ", r"#\1 ", body, flags=re.M)  # under this page's "Report"
    busy = facts["load_before"][0] > 0.5 * (m["cores"] or 1)
    out = [
        f"# {study}: the `{facts['profile_name']}` profile on real data",
        "",
        f"`ablate study run studies/{study}.yaml --profile {facts['profile_name']}` into a "
        "fresh store, "
        f"generated {facts['date']} by `make examples` (`scripts/make_examples.py`).",
        "",
        f"- **Machine**: {m['cores']} cores ({m['cpu']}){gpu}, {m['memory_gib']} GiB; "
        f"torch {m['torch']}, Python {m['python']}, {m['os']}; load average "
        f"{facts['load_before'][0]:.2f} before the run.",
        f"- **Wall time**: {minutes:.1f} min for the whole study (creation, "
        f"{facts['complete']} training runs, the study's reports), "
        f"{facts['cpu_s'] / 60:.1f} CPU-min"
        + (" (other processes were busy on these cores: an upper bound of the time on an "
           "idle machine)." if busy else "."),
        f"- **Data**: {facts['data']}",
        f"- **Report**: [{study}.html]({study}.html) (one self-contained file); the same "
        "tables follow below.",
        "",
        "## What the tables conclude",
        "",
        *lines,
        "",
        f"These figures answer the study's question at the profile's scale (below: smaller "
        f"images, fewer epochs, runs and seeds than `studies/{study}.yaml` itself, which is "
        "sized for a GPU); they are what the tables say, not a general verdict.",
        "",
        "## The profile",
        "",
        f"The study file's `{facts['profile_name']}` profile (everything else as the study "
        "file says):",
        "",
        "```yaml",
        facts["profile"],
        "```",
        "",
        "## Report",
        "",
        body.lstrip("\n"),
    ]
    return "\n".join(out).rstrip() + "\n"


def make(study: str, profile: str, out: Path, stores_root: Path, env: dict[str, str]
         ) -> dict[str, Any]:
    name = study_name(study, profile)
    store = stores_root / study
    log(f"{study}: running ...")
    facts: dict[str, Any] = run_study(study, profile, store, env)
    log(f"{study}: {facts['wall_s'] / 60:.1f} min; writing the page")
    text, report = write_reports(study, name, store, out)
    lines, summary = conclusions(report)
    facts |= {"study": study, "name": name, "machine": machine(),
              "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
              "data": data_line(facts["check"], ROOT), "profile": profile_yaml(study, profile),
              "profile_name": profile,
              "complete": len(report.study.complete()), **summary}
    (out / f"{study}.md").write_text(page(study, facts, text, lines))
    (out / f"{study}.json").write_text(json.dumps(facts, indent=2, default=str) + "\n")
    return facts


def index(out: Path) -> None:
    """``docs/examples/README.md`` from every study's ``<study>.json``."""
    rows = []
    for study in STUDIES:
        path = out / f"{study}.json"
        if not path.is_file():
            continue
        f = json.loads(path.read_text())
        beaten = {True: "yes", False: "**no**", None: "n/a"}[f.get("beaten")]
        rows.append(f"| [{study}]({study}.md) | {f['design']} | {f['complete']} | "
                    f"{f['wall_s'] / 60:.1f} | `{f['objective']}` {f['best_text']} | "
                    f"{beaten} | {f['machine']['cores']} x {f['machine']['cpu']} |")
    text = [
        "# Example gallery: every ready study's `cpu` profile on real data",
        "",
        "Each page is a real run of `ablate study run studies/<study>.yaml --profile cpu` on "
        "CPU cores only, written by `make examples` (`scripts/make_examples.py`): the machine, "
        "the wall time, the data, what the tables conclude, then the whole report (its HTML "
        "version next to it). Re-create one page with `make examples EXAMPLES=quickstart`.",
        "",
        "| study | design | runs | minutes | best configuration (val) | beats the trivial "
        "predictors | machine |",
        "|---|---|---:|---:|---|---|---|",
        *rows,
        "",
        "\"Beats the trivial predictors\": the best configuration scores above predicting the "
        "train split's majority class everywhere (binary: also the positive class everywhere) "
        "on the objective and on pixel accuracy, on val (the line under each ablation table).",
    ]
    (out / "README.md").write_text("\n".join(text) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", action="append", choices=STUDIES,
                        help="a study (repeatable; default: all seven)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "examples")
    parser.add_argument("--stores", type=Path, default=ROOT / "build" / "examples",
                        help="the studies' stores, one fresh folder each")
    parser.add_argument("--profile", default=PROFILE, help="the studies' profile (default cpu)")
    parser.add_argument("--index-only", action="store_true", help="only rebuild the index")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # Idle-waiting OpenMP threads: spinning ones cost several times the time when other
    # processes share the cores, and nothing on idle ones.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    for var in ("ABLATE_STORE", "ABLATE_STORAGE", "MLFLOW_TRACKING_URI"):
        env.pop(var, None)
    os.chdir(ROOT)
    if not args.index_only:
        for study in args.study or STUDIES:
            facts = make(study, args.profile, args.out, args.stores, env)
            log(f"{study}: {facts['best_text']}; wrote {args.out / (study + '.md')}")
    index(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
