"""The README's Python examples, run as users copy them (the code blocks of README.md), at 1 and 2 threads.

The sections "A first look" and "In Python" are one story: their code blocks run in order in a fresh interpreter
with `OMP_NUM_THREADS` and `torch.set_num_threads` at 1, then at 2, and each result must be the one the README
claims in words, whatever the thread count (floating-point sums differ with the threads, so the numbers do too).
"""
import json, os, re, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECTIONS = ("A first look", "In Python")  # the README's sections whose code runs as one script
FENCE = re.compile(r"^```(?:python)?\n(.*?)^```$", re.S | re.M)  # code cells (```) and Python blocks (```python)
# printed by the script after the README's code: the numbers each claim is about
REPORT = """
import json
print("REPORT " + json.dumps(dict(first_look={k: float(v) for k, v in env.baseline_returns(athletes).items()},
    textbook=plan_season("textbook", athletes[:1], days=28, catalog=EXAMPLE_CATALOG, **example)[0].competition,
    best_score=float(result["best_score"]), episodes=int(result["episodes_completed"]), plan=plan.competition,
    planner=plan.planner, names=[d["name"] for d in plan.days])))
"""


def section(text: str, title: str) -> str:
    "The text of the README's `## title` section, up to the next `## ` heading"
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README.md has no section '## {title}'"
    return match.group(1)


def readme_code() -> str:
    "The code blocks of the README's `SECTIONS`, in order, as one script"
    text = README.read_text(encoding="utf-8")
    blocks = [b for title in SECTIONS for b in FENCE.findall(section(text, title))]
    assert len(blocks) >= 3, blocks
    return "\n".join(blocks)


def test_readme_code_is_found():
    "The script is the README's text: the catalogue, the baselines, the textbook plan and the trained policy"
    code = readme_code()
    for needed in ("EXAMPLE_CATALOG", "baseline_returns", 'plan_season("textbook"', "agent.learn(", "plan.summary()"):
        assert needed in code, needed


@pytest.fixture(scope="module", params=[1, 2], ids=lambda n: f"{n}-thread{'s' * (n > 1)}")
def run(request):
    "The README's code run at `n` threads: what it printed, its REPORT, and its wall time"
    n = request.param
    script = f"import torch\ntorch.set_num_threads({n})\n" + readme_code() + REPORT
    env = {**os.environ, "OMP_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n), "OMP_WAIT_POLICY": "PASSIVE"}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900, env=env,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.split("REPORT ", 1)[1])
    return dict(stdout=done.stdout, report=report, seconds=time.perf_counter() - start, threads=n)


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
