"""The README's Python examples, run as users copy them (the code blocks of README.md), at 1 and 2 threads.

The sections "A first look" and "In Python" are one story: their code blocks run in order in a fresh interpreter
with `OMP_NUM_THREADS` and `torch.set_num_threads` at 1 and, side by side, at 2, and each result must be the one the README
claims in words, whatever the thread count (floating-point sums differ with the threads, so the numbers do too).
"""
import json, os, re, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECTIONS = ("A first look", "In Python")  # the README's sections whose code runs as one script
FENCE = re.compile(r"^```(?:python)?\n(.*?)^```$", re.S | re.M)  # code cells (```) and Python blocks (```python)
# runs the blocks as a notebook does (the value of a block's last expression is kept), then reports what the claims
# are about: the baselines the first block shows, athlete 0's textbook plan, the trained policy and its plan
RUNNER = """
import ast, json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
g, values = {"__name__": "__main__"}, []
for code in json.loads(sys.argv[2]):
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "README.md", "exec"), g)
    values.append(eval(compile(ast.Expression(last.value), "README.md", "eval"), g) if last else None)
plan, result = g["plan"], g["result"]
textbook = g["plan_season"]("textbook", g["athletes"][:1], days=28, catalog=g["EXAMPLE_CATALOG"], **g["example"])[0]
print("REPORT " + json.dumps(dict(first_look=values[0], textbook=textbook.competition, plan=plan.competition,
    best_score=float(result["best_score"]), episodes=int(result["episodes_completed"]), planner=plan.planner,
    names=[d["name"] for d in plan.days])))
"""
THREADS = (1, 2)


def section(text: str, title: str) -> str:
    "The text of the README's `## title` section, up to the next `## ` heading"
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README.md has no section '## {title}'"
    return match.group(1)


def readme_blocks() -> list[str]:
    "The code blocks of the README's `SECTIONS`, in order"
    text = README.read_text(encoding="utf-8")
    blocks = [b for title in SECTIONS for b in FENCE.findall(section(text, title))]
    assert len(blocks) >= 3, blocks
    return blocks


def test_readme_code_is_found():
    "The script is the README's text: the catalogue, the baselines, the textbook plan and the trained policy"
    code = "\n".join(readme_blocks())
    for needed in ("EXAMPLE_CATALOG", "baseline_returns", 'plan_season("textbook"', "agent.learn(", "plan.summary()"):
        assert needed in code, needed


@pytest.fixture(scope="module")
def runs():
    "The README's code at 1 and at 2 threads, side by side (two processes): each run's output, REPORT and seconds"
    blocks, start, procs = json.dumps(readme_blocks()), time.perf_counter(), {}
    for n in THREADS:
        env = {**os.environ, "OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n), "OMP_WAIT_POLICY": "PASSIVE"}
        procs[n] = subprocess.Popen([sys.executable, "-c", RUNNER, str(n), blocks], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    out = {}
    for n, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0, stderr[-3000:]
        out[n] = dict(stdout=stdout, report=json.loads(stdout.split("REPORT ", 1)[1]), threads=n,
                      seconds=time.perf_counter() - start)
    return out


@pytest.fixture(params=THREADS, ids=lambda n: f"{n}-thread{'s' * (n > 1)}")
def run(runs, request):
    return runs[request.param]


def test_first_look(run):
    "The baselines as the README reads them (0 = the habitual training, resting detrains), and athlete 0's plans"
    b = run["report"]["first_look"]
    assert b["habitual"] == 0 and b["rest"] < 0 < b["optimizer"] == max(b.values()), b
    c = run["report"]["textbook"]
    assert c["rest"] < c["textbook"] < c["forecast"], c  # "the textbook plan beats resting ... the forecast higher"


def test_trained_plan_beats_resting_and_the_textbook_plan(run):
    "The README's claims for the briefly trained policy: a plan (its own or the guard's) above resting and the textbook"
    r = run["report"]
    c = r["plan"]
    assert c["plan"] > c["rest"] and c["plan"] > c["textbook"], (run["threads"], c)
    assert r["episodes"] == 128 * 5, r["episodes"]  # "five rounds of 128 athletes"
    assert 0.5 <= r["best_score"] < 1, r["best_score"]  # "0.58 to 0.59 of the per-athlete optimiser"
    served = "policy plan kept" if r["planner"] == "policy" else f"policy plan replaced by the {r['planner']}"
    assert served in run["stdout"], run["stdout"][-600:]  # the summary says which plan is served
    assert not any("(unnamed)" in name for name in r["names"]), r["names"]  # the example catalogue names them
    print(f"{run['threads']} thread(s): {run['seconds']:.0f} s, best score {r['best_score']:.3f}, plan {c['plan']:.4f}"
          f" (rest {c['rest']:.4f}, textbook {c['textbook']:.4f}), served by {r['planner']}")
