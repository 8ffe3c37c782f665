#!/usr/bin/env bash
# Every check CI makes, in order. Ends with one line "N passed, N failed" (notebooks + pytest tests).
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
# PyTorch's OpenMP threads busy-wait by default; the tests run servers and CLI subprocesses beside the test
# process, and on 2 cores two spinning processes slowed each other 10-50x (measured). Passive waiting avoids it.
export OMP_WAIT_POLICY=PASSIVE
fail() { echo "FAILED: $*"; status=1; }

# 1. the nbdev CI recipe: notebooks clean, package in sync, README in sync
changed() { git status --porcelain --untracked-files=all -- "$@"; }
before=$(changed nbs fitness_ppo)
nbdev_clean >/dev/null 2>&1 || fail "nbdev_clean"
[ "$before" == "$(changed nbs fitness_ppo)" ] || { fail "notebooks not clean: run nbdev_clean and commit"; git diff --stat -- nbs; }
before=$(changed nbs fitness_ppo)
nbdev_export >/dev/null 2>&1 || fail "nbdev_export"
[ "$before" == "$(changed nbs fitness_ppo)" ] || { fail "library and notebooks out of sync: run nbdev_export and commit"; git diff --stat -- fitness_ppo; }
tmp=$(mktemp -d)
bash scripts/make_readme.sh "$tmp" && cmp -s "$tmp/README.md" README.md || fail "README.md is stale: run bash scripts/make_readme.sh and commit"

# 2. the linter on the package (ruff.toml), and lines of at most 120 characters but nbdev's own `__all__` line
ruff check --quiet fitness_ppo || fail "ruff: fix the notebooks, then nbdev_export"
long=$(awk 'length > 120 && !/^__all__ = / {print FILENAME ":" FNR}' fitness_ppo/*.py | grep -v _modidx)
[ -z "$long" ] || fail "lines over 120 characters: $long"

# 3. every notebook (nbdev_test's runner and skip flags)
NB_COUNTS="$tmp/nb_counts" python scripts/test_nbs.py || fail "notebook tests"
read -r nb_passed nb_failed < "$tmp/nb_counts" 2>/dev/null || { nb_passed=0; nb_failed=1; }

# 4. pytest tests (browser, server, CLI), if any
py_passed=0; py_failed=0
if ls tests/test_*.py >/dev/null 2>&1; then
  python -m pytest -q tests --junitxml="$tmp/junit.xml"; rc=$?
  [ $rc -eq 0 ] || fail "pytest (exit $rc)"
  read -r py_passed py_failed < <(python - "$tmp/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try: s = ET.parse(sys.argv[1]).getroot()
except Exception: print(0, 1); raise SystemExit
s = s if s.tag == "testsuite" else s.find("testsuite")
t, f, e, k = (int(s.get(a, 0)) for a in ("tests", "failures", "errors", "skipped"))
print(t - f - e - k, f + e)
PY
)
fi

passed=$((nb_passed + py_passed)); failed=$((nb_failed + py_failed))
[ $status -eq 0 ] || [ $failed -gt 0 ] || failed=1  # a failed check counts as a failure
echo "$passed passed, $failed failed"
exit $status
