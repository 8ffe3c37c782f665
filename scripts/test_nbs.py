"""Run every notebook the way `nbdev_test` does (same skip flags), one line per notebook, and a count.

Usage: python scripts/test_nbs.py [--flags "gpu"] [notebooks...]  (default: every notebook in nbs/)
Writes the counts to the file named by $NB_COUNTS, if set, as "passed failed".
"""
import argparse, os, sys, time
from pathlib import Path
from nbdev.config import get_config
from nbdev.test import test_nb

p = argparse.ArgumentParser()
p.add_argument("notebooks", nargs="*")
p.add_argument("--flags", default="", help="skip-flags to run anyway, e.g. 'gpu'")
args = p.parse_args()

cfg = get_config()
notebooks = [Path(n) for n in args.notebooks] or sorted(cfg.nbs_path.glob("*.ipynb"))
skip = set(cfg.get("tst_flags", "").split()) - set(args.flags.split())
passed, failed = 0, 0
for nb in notebooks:
    start = time.time()
    ok, _ = test_nb(nb.resolve(), skip_flags=skip, basepath=cfg.config_path)
    print(f"{'PASS' if ok else 'FAIL'} {nb.name} ({time.time() - start:.1f}s)", flush=True)
    passed, failed = passed + ok, failed + (not ok)
if os.environ.get("NB_COUNTS"): Path(os.environ["NB_COUNTS"]).write_text(f"{passed} {failed}\n")
print(f"notebooks: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
