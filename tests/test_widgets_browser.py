"""The `WeightOptimizer` form in a real browser: Voila serves a one-cell notebook on 127.0.0.1 and Debian's Chromium
(/usr/bin/chromium, driven by Playwright, no browser download) searches a target subject, selects it, clicks Run and
waits for the training plan; then opens the Season tab, sets the days in the slider's box, runs the default baseline
planner (forecast) and waits for the plan, its two charts and a table with a row per day; then opens the Your athlete
tab, uploads a bad training log (the error names the file, row and column), fits the example data and plans from it. The notebook tests
(nbs/09_widgets.ipynb) check the results; this checks the wiring between the browser and the kernel.
"""
import json, os, shutil, socket, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CI = os.environ.get("CI") == "true"
SEASON_DAYS = 35  # set in the Season tab's days slider
if not CI and not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); CI installs it and runs this test", allow_module_level=True)
if not CI and shutil.which("voila") is None:
    pytest.skip("voila is missing (pip install voila); CI installs it and runs this test", allow_module_level=True)
from playwright.sync_api import sync_playwright
from servers import free_port, running

DEMO = """\
from fitness_ppo.model import NetConfig
from fitness_ppo.optimize import reference_qx
from fitness_ppo.ppo import EnhancedPPOAgent
from fitness_ppo.widgets import WeightOptimizer
app = WeightOptimizer(EnhancedPPOAgent(config=NetConfig.small(), device="cpu", seed=0), steps=10, qx_prior=reference_qx())
app"""


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    "Serve the demo notebook with Voila on a free loopback port; give its URL, stop Voila after"
    d = tmp_path_factory.mktemp("voila")
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "demo", "metadata": {}, "outputs": [],
                     "source": DEMO}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
          "nbformat": 4, "nbformat_minor": 5}
    (d / "demo.ipynb").write_text(json.dumps(nb))
    port = free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, "-m", "voila", "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1", "demo.ipynb"]
    answers = lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None
    with running(cmd, answers, d / "voila.log", timeout=30, cwd=d, env=env):
        yield f"http://127.0.0.1:{port}/", d / "voila.log"


def your_athlete(page):
    "The Your athlete tab: a bad log through the browser's upload is named with its row and column; then the example."
    page.locator(".lm-TabBar-tab", has_text="Your athlete").click()
    for button, name, text in (("training log", "bad_log.csv", b"day,load\n1,50\n2,-5\n"),
                               ("tests", "tests.csv", b"day,value\n1,300\n")):
        with page.expect_file_chooser() as chooser:  # the upload button opens the browser's file dialog
            page.get_by_role("button", name=button).click()
        chooser.value.set_files(dict(name=name, mimeType="text/csv", buffer=text))
    page.get_by_role("button", name="Fit", exact=True).click()
    page.get_by_text("bad_log.csv: training log: row 1, column 'load'").wait_for(timeout=30_000)
    page.get_by_role("button", name="use the example data").click()
    page.get_by_text("fit of 9 tests").wait_for(timeout=60_000)
    page.get_by_role("button", name="Plan from this athlete").click()
    page.get_by_text("beats the textbook plan for").wait_for(timeout=60_000)
    assert page.locator(".widget-output img:visible").count() == 2, "the fit's chart or the season chart is missing"


def test_run_in_browser(voila):
    url, log = voila
    start = time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url, timeout=90_000)       # Voila runs the notebook before it answers
            search = page.get_by_placeholder("filter subjects by code or name")
            search.wait_for(timeout=90_000)
            search.fill("C005")
            targets = page.locator(".widget-select-multiple select")
            page.wait_for_function("() => document.querySelectorAll('.widget-select-multiple option').length === 1",
                                   timeout=30_000)
            targets.select_option(index=0)  # the one subject left, "C005 <its name>"
            page.get_by_role("button", name="Run").click()
            page.get_by_text("Training plan for widget-athlete (targets: C005)").wait_for(timeout=90_000)
            assert page.locator(".widget-output img").count() == 1, "the CQ change heatmap is missing"
            assert page.get_by_text("Target scores").count() == 1
            weights_s = time.monotonic() - start
            page.locator(".lm-TabBar-tab", has_text="Season").click()
            days = page.locator(".widget-hslider:visible", has=page.get_by_text("days", exact=True)).locator(
                ".widget-readout")  # the Your athlete tab has a days slider too, hidden
            days.wait_for(timeout=10_000)
            days.fill(str(SEASON_DAYS))
            days.press("Enter")
            page.get_by_role("button", name="Run").click()   # the Weights tab's button is hidden now
            page.get_by_text(f"target score on competition day (day {SEASON_DAYS};").wait_for(timeout=30_000)
            # the Weights tab's heatmap is still in the page, hidden: count what shows
            assert page.locator(".widget-output img:visible").count() == 2, "the season charts are missing"
            schedule = page.locator("table:visible", has_text="Season plan for widget-athlete")
            assert schedule.locator("tbody tr").count() == SEASON_DAYS
            shots = os.environ.get("WIDGET_SCREENSHOTS")
            if shots:  # a folder to keep a picture of the Season tab in
                page.screenshot(path=str(Path(shots) / "season_tab.png"))
                page.locator(".widget-output:visible").screenshot(path=str(Path(shots) / "season_output.png"))
            your_athlete(page)
            if shots: page.screenshot(path=str(Path(shots) / "your_athlete_tab.png"), full_page=True)
            assert not errors, errors
        except Exception:
            print(log.read_text())
            raise
        finally:
            browser.close()
    print(f"browser round trip: {weights_s:.1f}s, with the season plan {time.monotonic() - start:.1f}s")
