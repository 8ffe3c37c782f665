"""Sphinx configuration of the docs site. `python scripts/build_docs.py` prepares the notebooks and runs Sphinx
with it; that script's docstring says how the build works and why it is Sphinx and not Quarto."""
from pathlib import Path
from nbdev.config import get_config

cfg = get_config()
project, author, copyright, release = cfg.title, cfg.author, cfg.copyright, cfg.version

extensions = ["myst_nb"]
nb_execution_mode = "off"            # notebooks are committed with their outputs, and nbdev rendered the show_docs
myst_enable_extensions = ["dollarmath"]     # $...$ math, as Jupyter shows it
myst_heading_anchors = 3             # heading ids, so nbdev's symbol links (`env.html#step`) reach their show_doc
html_theme = "furo"
html_title = project
html_static_path = ["_static"]
html_css_files = ["custom.css"]      # readable at 1280 px: both menus shown, 120-character code lines fit
# Sphinx 9.0 search throws when a matched section has no text (appendChild(null) in searchtools.js), which
# breaks the result list: results are shown without their text excerpt.
html_show_search_summary = False

# MathJax from the copy build_docs.py unpacked from npm, so pages render math offline (else Sphinx's CDN default)
if (Path(__file__).parent / "_build" / "static" / "mathjax" / "tex-mml-chtml.js").exists():
    html_static_path += ["_build/static"]
    mathjax_path = "mathjax/tex-mml-chtml.js"
