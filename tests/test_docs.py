"""The documentation site: built once (scripts/build_docs.py), served on 127.0.0.1 and read in headless Chromium.

Chromium is Debian's (/usr/bin/chromium, `apt-get install chromium`); Playwright only drives it and downloads no
browser. Every page must load with no failed request, no request leaving the machine (the site is read offline:
MathJax is served with it) and no JavaScript error. Screenshots of the home, PPO, season and API pages at 1280 px
go to _docs_screenshots/. The checks of the built HTML itself (every link and anchor resolves, a real index, no
memory addresses, no stray outputs) need no browser and run wherever the docs extra is installed.
"""
import functools, html, importlib, importlib.util, inspect, json, os, re, subprocess, sys, threading
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse
import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "docs" / "_build"
CHROMIUM = "/usr/bin/chromium"
HAVE_CHROMIUM = Path(CHROMIUM).exists() or os.environ.get("CI") == "true"
pytest.importorskip("sphinx", reason="the docs extra is not installed (pip install -e '.[dev,docs,api]')")
from nbdev.doclinks import nbglob
from fitness_ppo._modidx import d as MODIDX

# each module's page, as nbdev's symbol index names it (`env.html#step` -> env.html)
MODULE_PAGES = {mod: next(iter(syms.values()))[0].split("#")[0] for mod, syms in MODIDX["syms"].items() if syms}


def page_of(name):
    "The page documenting exported `name`, from nbdev's symbol index"
    pages = [link.split("#")[0] for syms in MODIDX["syms"].values() for sym, (link, _) in syms.items()
             if sym.endswith(f".{name}")]
    if not pages: pytest.fail(f"no module exports {name} yet (run nbdev_export after adding it to its notebook)")
    return pages[0]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args): pass     # one line per request would bury pytest's report


@pytest.fixture(scope="module")
def built():
    "Build the site once; its HTML folder"
    build = subprocess.run([sys.executable, "scripts/build_docs.py"], cwd=ROOT, capture_output=True, text=True)
    assert build.returncode == 0, f"docs build failed:\n{build.stdout}\n{build.stderr}"
    return BUILD / "html"


@pytest.fixture(scope="module")
def site(built):
    "Serve the built site on a free loopback port, and give its base URL"
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=BUILD / "html"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    if not HAVE_CHROMIUM: pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


@pytest.fixture
def visit(browser, site):
    "visit(path) opens a page and returns it with the list of problems seen while it loaded"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = []
    def route(r):       # requests to anywhere but this server are refused and reported: the site must work offline
        if urlparse(r.request.url).hostname == "127.0.0.1": return r.continue_()
        problems.append(f"request leaving the machine: {r.request.url}")
        r.abort()
    page.route("**/*", route)
    local = lambda url: urlparse(url).hostname == "127.0.0.1"
    page.on("requestfailed", lambda r: local(r.url) and problems.append(f"failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: local(r.url) and r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url}"))
    page.on("pageerror", lambda e: problems.append(f"JavaScript error: {e}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
    def go(path):
        page.goto(urljoin(site, path), wait_until="networkidle")
        return page, problems
    yield go
    page.close()


def check_page(page, problems, path):
    "A page loaded cleanly, has a title, shows every plot its notebook holds, and MathJax typeset its math"
    assert not problems, f"{path}: {problems}"
    assert page.locator("article h1").count() == 1, f"{path}: no title"
    nb = json.loads((BUILD / "src" / Path(path).with_suffix(".ipynb")).read_text(encoding="utf-8"))
    plots = sum("image/png" in o.get("data", {}) for c in nb["cells"] for o in c.get("outputs", []))
    imgs = page.locator("article .cell_output img")
    assert imgs.count() == plots, f"{path}: {imgs.count()} images shown, the notebook has {plots} plots"
    assert all(imgs.nth(i).evaluate("img => img.complete && img.naturalWidth > 0") for i in range(plots)), path
    if page.locator("article .math").count():
        page.locator("article mjx-container").first.wait_for(timeout=10_000)


def test_every_notebook_has_a_page(visit):
    page, problems = visit("index.html")
    check_page(page, problems, "index.html")
    links = page.locator(".sidebar-tree a.reference").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    notebooks = nbglob(ROOT / "nbs", as_path=True)     # the notebooks the build reads
    assert len(links) == len(notebooks) - 1, f"sidebar {links} for notebooks {notebooks}"     # index is home
    for link in links:
        page, problems = visit(link)
        check_page(page, problems, link)


@pytest.mark.parametrize("module", sorted(MODULE_PAGES))
def test_exported_names_documented(visit, module):
    "Every function and class in the module's __all__ has its heading, signature and docstring on its page"
    page, problems = visit(MODULE_PAGES[module])
    check_page(page, problems, MODULE_PAGES[module])
    headings = page.locator("article :is(h2, h3, h4)").all_inner_texts()   # the level follows the notebook's sections
    signatures = " ".join(page.locator("article pre").all_inner_texts())
    words = lambda s: " ".join(re.findall(r"\w+", re.sub(r"[`*]", "", s)))   # markdown marks and quotes aside
    text = words(page.locator("article").inner_text())
    mod = importlib.import_module(module)
    documented = [n for n in mod.__all__ if inspect.isfunction(getattr(mod, n)) or inspect.isclass(getattr(mod, n))]
    missing = []
    for name in documented:
        doc = words((inspect.getdoc(getattr(mod, name)) or "").split("\n")[0])
        if not any(h.strip("#¶ \n") == name for h in headings): missing.append(f"{name}: no heading")
        elif f"{name}(" not in signatures: missing.append(f"{name}: no signature")
        elif doc not in text: missing.append(f"{name}: docstring {doc!r} not shown")
    assert not missing, f"{MODULE_PAGES[module]}: {missing}"


@pytest.mark.parametrize("name", ["TrainingEnvironment", "EnhancedActorCritic"])
def test_search_finds(visit, name):
    expected = page_of(name)
    page, problems = visit(f"search.html?q={name}")
    results = page.locator("#search-results ul.search li a")
    results.first.wait_for(timeout=10_000)
    hrefs = results.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert any(h.split("#")[0].split("?")[0] == expected for h in hrefs), hrefs
    assert not problems, problems


def test_search_ranks_the_ppo_page_first_for_its_terms(visit):
    "A search for PPO's own terms lists the PPO page first (it once ranked the input-and-output page first)."
    page, problems = visit("search.html?q=clipped+surrogate")
    results = page.locator("#search-results ul.search li a")
    results.first.wait_for(timeout=10_000)
    first = results.first.get_attribute("href").split("#")[0].split("?")[0]
    assert first == MODULE_PAGES["fitness_ppo.ppo"], first
    assert not problems, problems


@pytest.mark.parametrize("shot,module", [("home", None), ("ppo", "fitness_ppo.ppo"), ("season", "fitness_ppo.season"),
                                         ("api", "fitness_ppo.api")])
def test_readable_at_1280(visit, shot, module):
    """At 1280 px both menus show (the page menu is not folded behind an icon) and a 120-character code line fits
    without scrolling; a screenshot of the top of the page goes to _docs_screenshots/ (git-ignored) for a person."""
    path = "index.html" if module is None else MODULE_PAGES[module]
    page, problems = visit(path)
    assert not problems, problems
    for menu in (".sidebar-drawer", ".toc-drawer"):
        box = page.locator(menu).bounding_box()
        assert box and box["width"] > 100 and 0 <= box["x"] < 1280, f"{path}: {menu} not shown: {box}"
    assert not page.locator(".toc-content-icon").is_visible(), f"{path}: the page menu is behind an icon"
    fits = page.evaluate("""() => { const pre = document.querySelector('article .highlight pre');
        if (!pre) return true; const probe = document.createElement('span'); probe.textContent = 'x'.repeat(120);
        pre.appendChild(probe); const ok = probe.offsetWidth <= pre.clientWidth; probe.remove(); return ok; }""")
    assert fits, f"{path}: a 120-character code line does not fit"
    (ROOT / "_docs_screenshots").mkdir(exist_ok=True)
    page.screenshot(path=ROOT / "_docs_screenshots" / f"{shot}.png")


class Links(HTMLParser):
    "The ids and the local link targets of one HTML page"
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs = set(), []
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"): self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"): self.ids.add(attrs["name"])
        href = attrs.get("href") if tag in ("a", "link") else attrs.get("src") if tag in ("img", "script") else None
        if href and not urlparse(href).scheme and not href.startswith(("//", "mailto:", "javascript:")):
            self.hrefs.append(href)


def parsed(path):
    links = Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def test_every_link_resolves(built):
    "Every local link of every page reaches a file that exists and, when it names an anchor, an id on that page"
    pages = {p: parsed(p) for p in built.rglob("*.html")}
    broken = []
    for page, links in pages.items():
        for href in links.hrefs:
            url = urlparse(href)
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if target.is_dir(): target = target / "index.html"
            if not target.exists(): broken.append(f"{page.relative_to(built)}: {href} (no such page)")
            elif url.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parsed(target).ids
                if unquote(url.fragment) not in ids:
                    broken.append(f"{page.relative_to(built)}: {href} (no such anchor)")
    assert not broken, f"{len(broken)} broken links:\n" + "\n".join(broken[:40])


def test_index_lists_the_api(built):
    "genindex.html is a real index: every exported function and class, linked to where it is documented"
    index = (built / "genindex.html").read_text(encoding="utf-8")
    for name in ("plan_season", "EnhancedPPOAgent", "athlete_form", "plot_season", "load_catalog"):
        assert re.search(rf">\s*{name}\s*<", index), f"{name} missing from the index"


def test_pages_are_clean(built):
    "No memory address (`<function f at 0x7f...>`) and no catalogue dump in any signature or output"
    dirty = [f"{p.name}: {m[0]}" for p in built.glob("*.html")
             for m in re.finditer(r".{40}\bat 0x[0-9a-f]{6,}.{0,20}", p.read_text(encoding="utf-8"))]
    assert not dirty, dirty[:10]
    season = html.unescape(re.sub(r"<[^>]+>", "", "".join(  # the season environment's pages
        (built / page).read_text("utf-8") for mod, page in MODULE_PAGES.items() if mod.startswith("fitness_ppo.season"))))
    assert "Catalog(names=" not in season and "catalog:Catalog=Catalog('default': names for 9/23" in season
    # a signature's parameter comments name other symbols as code, not as link markdown shown raw
    assert "`reference_cq`" in season and "](/state.ipynb#" not in season, re.findall(r".{40}\]\(/\w+\.ipynb#", season)


def test_widget_without_saved_state_becomes_a_note():
    "A static page cannot show a widget whose state was not saved: it says how to run the notebook live instead"
    spec = importlib.util.spec_from_file_location("build_docs", ROOT / "scripts" / "build_docs.py")
    build_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_docs)
    view = lambda model: {"output_type": "display_data", "metadata": {},
                          "data": {build_docs.WIDGET_VIEW: {"model_id": model}, "text/plain": "VBox()"}}
    nb = {"metadata": {"widgets": {build_docs.WIDGET_STATE: {"state": {"saved": {}}}}},
          "cells": [{"cell_type": "code", "id": "w", "metadata": {}, "source": "ui", "execution_count": 1,
                     "outputs": [view("saved"), view("unsaved")]}]}
    outputs = build_docs.prepare(nb, "nbs/09_widgets.ipynb", "https://example.org/")["cells"][0]["outputs"]
    assert outputs[0] == view("saved")
    assert "voila nbs/09_widgets.ipynb" in outputs[1]["data"]["text/markdown"]
