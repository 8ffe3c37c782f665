"""Execute notebooks in place and keep their outputs (what Jupyter's "Run all" + save does).

Cells that `nbdev_test` would skip are skipped here too: `nbdev_export()` calls, `#| eval: false`,
and cells carrying a flag from `tst_flags` in settings.ini (`notest`, `gpu`).
Usage: python scripts/run_nbs.py [--run notest] nbs/02_env.ipynb [more notebooks]; then `nbdev_clean`.
`--run FLAG` runs the cells carrying FLAG too, e.g. `--run notest` for the long learning run of 06_ppo, whose
output is kept in the notebook. `--cells ID,ID` runs only those cells among the flagged ones (the others keep
their stored outputs), e.g. to regenerate one evidence cell.
"""
import argparse, os, re
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from nbdev.config import get_config

def directives(source):
    "Names of the `#|` directives at the top of a cell, with their values"
    found = {}
    for line in source.splitlines():
        m = re.match(r'\s*#\|\s*([\w-]+:?)\s*(.*)', line)
        if not m: break
        found[m.group(1)] = m.group(2).strip()
    return found

def skipped(cell, flags, run=(), only=None):
    if cell.cell_type != 'code' or 'nbdev_export' + '(' in cell.source: return True
    d = directives(cell.source)
    if only is not None and set(run) & d.keys() and cell.get('id') not in only: return True
    return d.get('eval:', '').lower() == 'false' or bool(flags & d.keys())

def run_notebook(path, flags, run=(), only=None):
    path = Path(path).resolve()
    nb = read_nb(path)
    shell = CaptureShell(path)
    cwd = os.getcwd()
    os.chdir(path.parent)
    try: shell.run_all(nb, exc_stop=True, preproc=lambda c: skipped(c, flags, run, only))
    finally: os.chdir(cwd)
    write_nb(nb, path)

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description="Execute notebooks in place, keeping their outputs.")
    parser.add_argument('notebooks', nargs='+')
    parser.add_argument('--run', action='append', default=[], help="a skip-flag whose cells run anyway, e.g. notest")
    parser.add_argument('--cells', help="comma-separated ids: of the flagged cells, run only these")
    args = parser.parse_args()
    flags = set(get_config().get('tst_flags', '').split()) - set(args.run)
    for p in args.notebooks:
        print('running', p, flush=True)
        run_notebook(p, flags, args.run, None if args.cells is None else set(args.cells.split(',')))
