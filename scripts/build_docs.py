"""Build the documentation site from the notebooks: `python scripts/build_docs.py`, then open
docs/_build/html/index.html (needs the docs extra: `pip install -e ".[dev,docs]"`).

Why Sphinx and not Quarto: nbdev's own `nbdev_docs` renders with Quarto, a standalone binary that cannot be
installed on our machines (PyPI's `quarto-cli` downloads it at install time; `nbdev_proc_nbs` tries sudo + curl).
Sphinx + myst-nb + the furo theme are plain pip packages and give the same kind of site: a page per notebook,
search, a sidebar, rendered docstrings and signatures, outputs and plots. The Quarto configuration
(nbs/_quarto.yml, nbdev.yml, sidebar.yml, styles.css) stays valid, so with Quarto installed `nbdev_docs` still
builds nbdev's usual site into _docs/.

The steps:
1. What `nbdev_docs` does before calling Quarto: refresh nbs/nbdev.yml and nbs/sidebar.yml from settings.ini
   and the notebooks (commit them when they change), then nbdev's notebook processor writes _proc/: hidden and
   exported-source cells dropped, a rendered `show_doc` after every exported function and class, symbol links.
2. Prepare: rewrite the Quarto-only syntax of the processed notebooks into what MyST reads (`prepare`, below)
   into docs/_build/src/, each named after nbdev's `output-file` (catalog.html, ...), so page URLs and nbdev's
   symbol links (fitness_ppo/_modidx.py) are the ones a Quarto site would have. The page order is sidebar.yml's.
3. Sphinx renders them (configuration: docs/conf.py) into docs/_build/html/. MathJax 3 comes from npm
   (`npm pack mathjax@3`, unpacked once into docs/_build/static/), so math renders with no internet.

What `prepare` also does, so that the pages answer: memory addresses leave signatures and outputs
(`Depends(<function get_service at 0x7f...>)` reads `Depends(get_service)`); every documented name gets an entry in
the site's index (genindex.html) and, when it has a dot (`EnhancedPPOAgent.learn`), an anchor under the id nbdev's
symbol links use (`ppo.html#enhancedppoagent.learn`), which MyST's heading ids drop the dot from.
"""
import json, re, shutil, subprocess, sys, tarfile, tempfile
from pathlib import Path
from urllib.parse import urljoin
import yaml
from nbdev.config import get_config
from nbdev.doclinks import nbglob
from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
from nbdev.serve import proc_nbs
from sphinx.cmd.build import build_main

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "docs" / "_build"
SRC, HTML, MATHJAX = BUILD / "src", BUILD / "html", BUILD / "static" / "mathjax"

DIRECTIVE = re.compile(r"#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")     # a Quarto cell option, `#| echo: false`
HIDE = {"echo": "remove-input", "output": "remove-output", "include": "remove-cell"}   # `#| option: false` -> tag
LINK_ATTRS = re.compile(r"(\]\([^)\s]*\))\{[^}]*\}")           # `[source](url){target="_blank" ...}`
WIDGET_VIEW, WIDGET_STATE = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"
ADDRESS = re.compile(r"(?:<|&lt;)(?:function|class|built-in function|bound method) ([\w.]+)(?: of [^<>&]*)? "
                     r"at 0x[0-9a-f]+(?:>|&gt;)")                # `<function f at 0x7f...>` -> `f`
OBJECT_AT = re.compile(r"(?:<|&lt;)([\w.]+) object at 0x[0-9a-f]+(?:>|&gt;)")  # `<x.Y object at 0x...>` -> `<x.Y>`
WIDGET_NOTE = ("*An interactive widget: a static page has no Python behind it. Run the notebook in Jupyter, "
               "or serve it as an app with Voila: `pip install voila && voila {nb}`.*")


def front_matter(nb):
    "nbdev's front matter (title, description, output-file), which its processor puts in a first raw cell"
    m = re.match(r"\s*---\n(.*?)\n---", "".join(nb["cells"][0]["source"]), re.S)
    return (yaml.safe_load(m[1]) or {}) if m and nb["cells"][0]["cell_type"] == "raw" else {}


def readable(text):
    "`text` without memory addresses, which change on every run and tell a reader nothing"
    return OBJECT_AT.sub(r"<\1>", ADDRESS.sub(r"\1", text))


def markdown(text, local_url):
    "Drop Pandoc link attributes (MyST has no `target`/`style`); nbdev's absolute symbol links -> this site's pages"
    text = readable(LINK_ATTRS.sub(r"\1", text))
    return re.sub(re.escape(local_url) + r"([^)#\s]+)\.html", r"/\1.ipynb", text)  # /page.ipynb#heading: MyST links it


CODE_LINK = re.compile(r"\[(`[^`\]]+`)\]\([^)\s]+\)")  # nbdev's symbol link, "[`State`](/state.ipynb#state)"


def unlinked_code(md):
    "`md` with the symbol links in its fenced code (a signature's comments) as plain `name`s: code shows links raw"
    return re.sub(r"```.*?```", lambda m: CODE_LINK.sub(r"\1", m[0]), md, flags=re.S)


def show_doc_markdown(cell, local_url):
    "A `show_doc` cell (`#| output: asis`) as the markdown its output is, so its heading is a section of the page"
    md = unlinked_code("\n\n".join("".join(o["data"]["text/markdown"]) for o in cell["outputs"]
                                    if "text/markdown" in o.get("data", {})))
    md = re.sub(r"\A\s*---\s*\n", "", md)     # nbdev's rule above each entry: docutils refuses one opening a section
    md = LINK_ATTRS.sub(r"\1", md)   # `[source](url){style=...}`: attributes off first, or the link below stays put
    # the source link goes under the heading (Quarto floats it beside it; above it, it would end the previous section)
    md = re.sub(r"\A\s*(\[source\]\(.*?\)\S*)\s*\n+(#+ .*)", r"\2\n\n\1", md)
    if m := re.match(r"#+ +`?([\w.]+)`?\s*$", md.lstrip().split("\n", 1)[0]):  # the name documented: index, anchor
        name = m[1]
        anchor = f'<span id="{name.lower()}"></span>\n\n' if "." in name else ""
        md = f"```{{index}} single: {name}\n```\n\n{anchor}{md}"
    return {"cell_type": "markdown", "id": cell["id"], "metadata": {}, "source": markdown(md, local_url)}


def prepare(nb, nb_path, local_url):
    "A processed notebook made readable by myst-nb: Quarto's cell options, link syntax and extra keys translated"
    # notebooks written by jupytext carry no kernel metadata, and myst-nb needs the language to highlight code
    nb["metadata"].setdefault("language_info", {"name": "python"})
    if fm := front_matter(nb):          # the front matter -> the page's title and description
        title = f"# {fm.get('title', Path(nb_path).stem)}"
        if fm.get("description"): title += f"\n\n*{fm['description']}*"
        nb["cells"][0] = {"cell_type": "markdown", "id": nb["cells"][0]["id"], "metadata": {}, "source": title}
    saved_widgets = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    cells = []
    for cell in nb["cells"]:
        cell.pop("has_sd", None)     # nbdev's mark on the show_doc cells it adds: not a notebook key (nbformat fails)
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown": cell["source"] = markdown(src, local_url)
        if cell["cell_type"] != "code": cells.append(cell); continue
        lines, options = src.splitlines(), {}
        while lines and (m := DIRECTIVE.match(lines[0])): options[m[1]] = m[2].lower(); lines.pop(0)
        if options.get("output") == "asis": cells.append(show_doc_markdown(cell, local_url)); continue
        cell["source"] = "\n".join(lines)
        cell["metadata"]["tags"] = cell["metadata"].get("tags", []) + [
            tag for option, tag in HIDE.items() if options.get(option) == "false"]
        for i, out in enumerate(cell.get("outputs", [])):
            data = out.get("data", {})
            for key in ("text/plain", "text/html"):
                if key in data: data[key] = readable("".join(data[key]))
            if "text" in out: out["text"] = readable("".join(out["text"]))
            if "text/markdown" in data: data["text/markdown"] = markdown("".join(data["text/markdown"]), local_url)
            if WIDGET_VIEW in data and data[WIDGET_VIEW]["model_id"] not in saved_widgets:
                # no saved state: the view would render as nothing, so say how to see it live
                cell["outputs"][i] = {"output_type": "display_data", "metadata": {},
                                      "data": {"text/markdown": WIDGET_NOTE.format(nb=nb_path)}}
        cells.append(cell)
    nb["cells"] = cells
    return nb


INDEXED = re.compile(r"```\{index\} single: ([\w.]+)")      # the names `show_doc_markdown` documented on a page
SYMBOL_LINK = re.compile(r"/([\w/]+)\.ipynb#([\w.]+)\)")


def retarget(pages):
    """A link to a method with no entry of its own (`season.html#seasonmodel.rested_score`: nbdev indexes every
    method, `show_doc` shows only some) goes to its class's entry instead, so that every link reaches an anchor"""
    documented = {name: {n.lower() for n in INDEXED.findall(json.dumps(nb))} for name, nb in pages.items()}
    def fix(m):
        page, anchor = m[1], m[2]
        known, owner = documented.get(page, set()), anchor.rsplit(".", 1)[0]
        return f"/{page}.ipynb#{owner})" if "." in anchor and anchor not in known and owner in known else m[0]
    for nb in pages.values():
        for cell in nb["cells"]:
            if cell["cell_type"] == "markdown": cell["source"] = SYMBOL_LINK.sub(fix, "".join(cell["source"]))
            for out in cell.get("outputs", []):
                if "text/markdown" in out.get("data", {}):
                    out["data"]["text/markdown"] = SYMBOL_LINK.sub(fix, "".join(out["data"]["text/markdown"]))


def sidebar_pages(contents):
    "Notebooks in sidebar.yml's order (sections flattened: one level of navigation is enough here)"
    for item in contents:
        if isinstance(item, dict): yield from sidebar_pages(item.get("contents", []))
        elif item.endswith(".ipynb"): yield item


def write_if_changed(path, text):
    "Leave unchanged sources alone so that Sphinx rebuilds only the pages that changed"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def fetch_mathjax():
    "MathJax 3's browser build from npm, unpacked once into the build folder"
    if (MATHJAX / "tex-mml-chtml.js").exists(): return
    if not shutil.which("npm"): return print("npm not found: the pages will load MathJax from its CDN")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent", "mathjax@3"], cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        with tarfile.open(next(Path(tmp).glob("mathjax-*.tgz"))) as tgz: tgz.extractall(tmp, filter="data")
        shutil.copytree(Path(tmp) / "package" / "es5", MATHJAX)


def main():
    cfg = get_config()
    nbs = cfg.nbs_path
    # 1. nbdev's steps before Quarto
    refresh_quarto_yml()
    nbdev_sidebar.__wrapped__()
    proc = proc_nbs()
    # 2. prepared notebooks, named after their pages
    local_url = urljoin(cfg.doc_host + "/", cfg.doc_baseurl) + "/"    # the prefix of nbdev's symbol links
    pages, names = {}, {}
    for path in nbglob(nbs, as_path=True):
        rel = path.relative_to(nbs)
        nb = json.loads((proc / rel).read_text(encoding="utf-8"))
        name = (rel.parent / Path(front_matter(nb).get("output-file", rel.stem)).stem).as_posix()
        pages[name], names[rel.as_posix()] = prepare(nb, path.relative_to(ROOT).as_posix(), local_url), name
    retarget(pages)
    sidebar = yaml.safe_load((nbs / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    order = [names[p] for p in sidebar_pages(sidebar) if p in names]
    toctree = "```{toctree}\n:hidden:\n\n" + "\n".join(n for n in order if n != "index") + "\n```"
    pages["index"]["cells"].append({"cell_type": "markdown", "id": "sphinx-toctree", "metadata": {}, "source": toctree})
    for stale in set(SRC.rglob("*.ipynb")) - {SRC / f"{n}.ipynb" for n in pages}: stale.unlink()
    for name, nb in pages.items(): write_if_changed(SRC / f"{name}.ipynb", json.dumps(nb, indent=1, ensure_ascii=False))
    if (nbs / "images").is_dir():  # pictures the notebooks link to (as images/...; the README's as nbs/images/...)
        for to in (SRC / "nbs" / "images", SRC / "images"): shutil.copytree(nbs / "images", to, dirs_exist_ok=True)
    # 3. Sphinx
    fetch_mathjax()
    return build_main(["-q", "-b", "html", "-c", str(ROOT / "docs"), "-d", str(BUILD / "doctrees"),
                       str(SRC), str(HTML)])


if __name__ == "__main__":
    sys.exit(main())
