"""A researcher's walk through a study in the MLflow UI, in a real browser.

A tiny one-at-a-time design with repeats is run by ``ablate study run``; ``ablate ui`` serves
it; Debian's Chromium, driven by Playwright, opens the address ``ablate ui`` prints and checks
what the researcher relies on: the objective, configuration and decision columns, before and
after a reload (MLflow 3.18 drops a shared view's columns on a plain reload: the test checks
that too, so that a MLflow which keeps them shows up as a failure to update docs/ui.md), the
description expanding to the ablation table, a bar for every run in the charts, where the
experiments list lands, and the study run's ``report.html``. Screenshots of each step go to a
temporary folder, printed at the end. MLflow's UI is a single-page app: every wait is for a
selector or a condition, never for the load event alone.

Without Playwright or Chromium the test is skipped with a loud reason; under ``make test``
(``ABLATE_REQUIRE_SERVERS=1``) that is a failure: ``scripts/system_packages.sh`` installs
Chromium, the ``dev`` extra installs Playwright (never ``playwright install``).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVERS_ENV, spec_dict
from tests.reporting.test_publish import run_study
from tests.tracking.test_ui import UiProcess, free_port, post

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = Path(os.environ.get("ABLATE_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT = 60_000  # ms: a hang guard for a page on two busy cores, not a speed check
# 3 configurations x 2 seeds, one epoch at 32 px, no gallery, latency or weights to write
SPEC = {k: v for k, v in spec_dict(name="browse").items() if k != "search"} | {
    "eval": {"gallery": 0, "latency_repeats": 0, "save_weights": "none"},
    "design": {"kind": "one_at_a_time", "repeats": 2, "components": [
        {"name": "hflip", "set": {"augment.hflip": True}},
        {"name": "lowlr", "set": {"optim.lr": 0.001}}]}}
RUNS = 6
COLUMNS = ("val/iou", "ablate.config", "ablate.decision")  # objective, configuration, decision
HEADERS_JS = """() => Array.from(document.querySelectorAll('[role=columnheader]'))
    .map(e => e.innerText.trim()).filter(Boolean)"""


def _not_installed() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install -e '.[dev]' brings it)"
    if not CHROMIUM.is_file():
        return (f"no Chromium at {CHROMIUM}: scripts/system_packages.sh installs Debian's "
                "chromium (or set ABLATE_CHROMIUM)")
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright."""
    missing = _not_installed()
    if missing is not None:
        message = f"REAL-BROWSER TEST NOT RUN: {missing}"
        if os.environ.get(REQUIRE_SERVERS_ENV):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS,
                                          headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(server, the address ``ablate ui`` prints) of a finished one-at-a-time design."""
    store = run_study(SPEC, tmp_path_factory.mktemp("browse"))
    port = free_port()
    ui = UiProcess(store, port)
    try:
        yield f"http://127.0.0.1:{port}", ui.address()
    finally:
        code, stderr = ui.stop(signal.SIGTERM)
        assert code == 0 and "Traceback" not in stderr, stderr


class Walk:
    """One browser page and the screenshots taken along the way."""

    def __init__(self, page: Any, folder: Path):
        self.page, self.folder, self.shots = page, folder, []

    def shoot(self, name: str) -> None:
        path = self.folder / f"{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path))
        self.shots.append(path)

    def headers(self) -> list[str]:
        return self.page.evaluate(HEADERS_JS)

    def table(self, expect: tuple[str, ...] = ("Run Name",)) -> list[str]:
        """The runs table's column headers once they include ``expect`` and every run."""
        self.page.wait_for_function(
            "([want, runs]) => { const h = (" + HEADERS_JS + ")(); return want.every("
            "w => h.includes(w)) && document.querySelectorAll('a[href*=\"/runs/\"]').length"
            " >= runs; }", arg=[list(expect), RUNS], timeout=WAIT)
        return self.headers()


def test_a_researcher_browses_a_design_study(browser: Any, served: tuple[str, str],
                                            capsys: pytest.CaptureFixture[str]):
    server, address = served
    assert "viewStateShareKey=ablate" in address and "workflowType=machine_learning" in address
    context = browser.new_context(viewport={"width": 1800, "height": 950})
    # MLflow's assistant panel opens by itself on a first visit; closed, as a user does once
    context.add_init_script("localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false')")
    # kept after the test (pytest's own temporary folders are pruned by later sessions)
    walk = Walk(context.new_page(), Path(tempfile.mkdtemp(prefix="ablate-browser-")))
    page = walk.page
    try:
        # the address ablate ui prints: the saved view with the columns that matter
        page.goto(address)
        assert set(COLUMNS) <= set(walk.table(COLUMNS))
        assert page.get_by_text("Group: baseline").count() == 1  # grouped by configuration
        walk.shoot("view")

        # a plain reload: MLflow 3.18 keeps filter and sort (in the address), not the columns
        page.reload()
        after = walk.table()
        walk.shoot("reload-without-override")
        assert "ablate.decision" not in after, (
            "MLflow now keeps a shared view's columns through a reload: update docs/ui.md "
            "(and the tip ablate ui prints), then drop this check")
        assert "searchFilter=" in page.url

        # the documented way: "Override saved view" once, and the view survives reloads
        page.goto(address)
        walk.table(COLUMNS)
        page.get_by_role("button", name="Override saved view").click()
        page.wait_for_function("() => !location.href.includes('viewStateShareKey')",
                               timeout=WAIT)
        page.reload()
        assert set(COLUMNS) <= set(walk.table(COLUMNS))
        walk.shoot("reload-after-override")

        # the description expands to the ablation table, one row per configuration
        page.locator("[data-component-id='mlflow.experiment.metadata_editor.expand_button']"
                     ).first.click()
        table = page.locator("table").filter(has_text="decision").first
        table.wait_for(timeout=WAIT)
        text = table.inner_text()
        assert all(label in text for label in ("baseline", "hflip", "lowlr", "undecided"))
        walk.shoot("description")

        # the charts: one bar per run in the objective's chart (MLflow's default: 10 runs)
        page.goto(page.url + "&compareRunsMode=CHART")
        card = page.locator("[data-testid='experiment-view-compare-runs-card']").filter(
            has_text="val/iou").first
        card.locator("g.barlayer g.point").first.wait_for(timeout=WAIT)
        assert card.locator("g.barlayer g.point").count() == RUNS
        walk.shoot("charts-every-run")

        # the experiments list: where a study opens, before and after "Model training"
        page.goto(f"{server}/#/experiments")
        page.get_by_role("link", name="browse", exact=True).first.click()
        page.wait_for_function("() => /experiments\\/\\d+\\/./.test(location.hash)",
                               timeout=WAIT)
        page.wait_for_timeout(2000)  # the page settles on its tab
        first_landing = page.url
        walk.shoot("landing-from-list")
        page.get_by_text("Model training", exact=True).first.click()
        page.goto(f"{server}/#/experiments")
        page.get_by_role("link", name="browse", exact=True).first.click()
        assert set(COLUMNS) <= set(walk.table(COLUMNS))
        assert "/runs" in page.url
        walk.shoot("landing-after-model-training")

        # the study run's report.html, in MLflow's artifact viewer
        parent = post(server, "/runs/search", {
            "experiment_ids": [page.url.split("/experiments/")[1].split("/")[0]],
            "filter": "tags.`ablate.role` = 'parent'", "max_results": 1,
        })["runs"][0]["info"]
        page.goto(f"{server}/#/experiments/{parent['experiment_id']}/runs/{parent['run_id']}"
                  "/artifacts/report.html?workflowType=machine_learning")
        page.wait_for_selector("iframe", timeout=WAIT)
        report = page.frame_locator("iframe").first
        report.locator("h2", has_text="Ablation table").wait_for(timeout=WAIT)
        assert report.locator("div.table > table").count() >= 1  # wide tables scroll in a box
        assert report.locator("ul > li").count() >= 2  # the decisions in words: a real list
        walk.shoot("report-html")
    except Exception:
        walk.shoot("failure")
        raise
    finally:
        context.close()
        with capsys.disabled():
            print(f"\nbrowser screenshots in {walk.folder}: "
                  + ", ".join(p.name for p in walk.shots))
    with capsys.disabled():
        print(f"the experiments list opened the study on {first_landing} before "
              "'Model training' was chosen")
