"""The `fitness-ppo` command line end to end: every command in a subprocess, on tiny settings, in temporary folders.

What nbs/10_cli.ipynb tests in-process is tested here the way a user runs it: a fresh interpreter, the installed
console script and `python -m fitness_ppo.cli`, real exit codes, stdout and stderr.
"""
import csv, io, json, os, re, shutil, subprocess, sys, time, urllib.request
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
import pytest
from servers import free_port, running

TINY = ["--num-envs", "8", "--max-steps", "5", "--quiet", "--device", "cpu"]
SHORT_SEASON = ["--days", "28", "--num-envs", "16", "--episodes", "32", "--quiet", "--device", "cpu", "--no-imitate"]
COMMANDS = ("demo", "train", "optimize", "plan", "season", "bench", "serve")


def cli(*args, check=True, timeout=300, threads=None):
    "Run `python -m fitness_ppo.cli ARGS` (on `threads` OpenMP threads if given); with `check`, fail on a non-zero exit"
    env = None if threads is None else os.environ | {"OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, "-m", "fitness_ppo.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if check: assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def fails(*args, code=2):
    "Run a command that must fail with `code`, without a traceback; returns its stderr"
    done = cli(*args, check=False)
    assert done.returncode == code, f"exit {done.returncode}, expected {code}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    "A folder with example athletes (JSON, one athlete, CSV) and a tiny trained checkpoint"
    d = tmp_path_factory.mktemp("cli")
    from fitness_ppo.cli import write_athletes
    from fitness_ppo.state import synthetic_athletes
    athletes = synthetic_athletes(3, seed=5)
    write_athletes(athletes, d / "athletes.json")
    write_athletes(athletes, d / "athletes.csv")
    (d / "one.json").write_text(json.dumps(json.loads((d / "athletes.json").read_text())[0]))
    done = cli("train", "--episodes", "16", "--out", d / "agent.pt", *TINY)
    assert "trained 16 episodes" in done.stdout and (d / "agent.pt").is_file()
    return d


def test_console_script_and_help():
    script = shutil.which("fitness-ppo")
    assert script, "the fitness-ppo console script is not installed (pip install -e .)"
    done = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and all(c in done.stdout for c in COMMANDS)
    assert cli("--version").stdout.startswith("fitness_ppo ")
    for command in COMMANDS:
        assert "usage: fitness-ppo " + command in cli(command, "--help").stdout


def test_usage_errors():
    assert "COMMAND" in fails()
    assert "argument --episodes: must be a positive integer, got '0'" in fails("train", "--episodes", "0")
    assert "argument --preset: invalid choice" in fails("train", "--preset", "huge")
    assert "the following arguments are required: --model, --athletes" in fails("optimize")
    assert "plan needs either --result FILE, or --athletes FILE with --model" in fails("plan")


def test_train_resume_and_csv_data(work):
    done = cli("train", "--resume", work / "agent.pt", "--data", work / "athletes.csv", "--episodes", "8",
               "--out", work / "resumed.pt", *TINY)
    assert "checkpoint:" in done.stdout and (work / "resumed.pt").is_file()
    from fitness_ppo.ppo import EnhancedPPOAgent
    assert EnhancedPPOAgent.from_checkpoint(work / "resumed.pt", device="cpu").episodes_done == 24


def test_train_bad_inputs(work, tmp_path):
    assert "checkpoint not found" in fails("train", "--resume", tmp_path / "none.pt", *TINY)
    bad = tmp_path / "bad.csv"
    bad.write_text((work / "athletes.csv").read_text().replace(",intermediate,", ",elite,").replace(",beginner,", ",elite,")
                   .replace(",advanced,", ",elite,"))
    err = fails("train", "--data", bad, *TINY)
    assert "bad.csv" in err and "fitness_level must be one of" in err, err
    (tmp_path / "cols.csv").write_text("user_id,age\nx,30\n")
    assert "missing columns ['gender'" in fails("train", "--data", tmp_path / "cols.csv", *TINY)


def test_optimize(work):
    one = json.loads(cli("optimize", "--model", work / "agent.pt", "--athletes", work / "one.json", "--steps", "10",
                         "--device", "cpu").stdout)
    assert len(one["actions"]) == 10 and len(one["cq_matrix"]) == 93 and len(one["qx_matrix"][0]) == 44
    assert one["performance_metrics"] == json.loads((work / "one.json").read_text())["performance_metrics"]
    out = work / "results.json"
    cli("optimize", "--model", work / "agent.pt", "--athletes", work / "athletes.csv", "--steps", "10",
        "--qx-prior", "reference", "--out", out, "--device", "cpu")
    results = json.loads(out.read_text())
    assert [r["user_id"] for r in results] == [a["user_id"] for a in json.loads((work / "athletes.json").read_text())]
    heads = json.loads(cli("optimize", "--model", work / "agent.pt", "--athletes", work / "one.json", "--mode", "heads",
                           "--device", "cpu").stdout)
    assert heads["method"] == "heads" and heads["actions"] == []


def test_optimize_bad_inputs(work, tmp_path):
    assert "model file not found" in fails("optimize", "--model", tmp_path / "none.pt", "--athletes", work / "one.json")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert "not a loadable fitness_ppo checkpoint" in fails("optimize", "--model", tmp_path / "junk.pt", "--athletes", work / "one.json")
    athlete = json.loads((work / "one.json").read_text())
    for field, value, message in (("gender", "X", "gender must be one of ['M', 'F']"),
                                  ("target_subjects", ["C200"], "target_subjects must be codes C001..C093"),
                                  ("current_qualities", [0.5] * 22, "current_qualities must have 23 values")):
        (tmp_path / "a.json").write_text(json.dumps({**athlete, field: value}))
        err = fails("optimize", "--model", work / "agent.pt", "--athletes", tmp_path / "a.json")
        assert message in err and "a.json" in err, err
    (tmp_path / "b.json").write_text("{oops")
    assert "not valid JSON" in fails("optimize", "--model", work / "agent.pt", "--athletes", tmp_path / "b.json")
    assert "steps must be an integer in [1, 10000]" in fails("optimize", "--model", work / "agent.pt", "--athletes",
                                                            work / "one.json", "--steps", "20000")
    (tmp_path / "qx.json").write_text("[[1.0, 0.0]]")
    assert "qx_prior must have shape (23, 44)" in fails("optimize", "--model", work / "agent.pt", "--athletes",
                                                       work / "one.json", "--qx-prior", tmp_path / "qx.json")


def test_plan(work):
    results = work / "plan_results.json"
    cli("optimize", "--model", work / "agent.pt", "--athletes", work / "athletes.json", "--steps", "10",
        "--qx-prior", "reference", "--out", results, "--device", "cpu")
    text = cli("plan", "--result", results, "--top", "5").stdout
    assert text.count("Training plan for") == 3 and "rank" in text
    rows = list(csv.DictReader(io.StringIO(cli("plan", "--result", results, "--format", "csv").stdout)))
    assert len(rows) == 3 * 44 and rows[0]["rank"] == "1"
    assert abs(sum(float(r["share"]) for r in rows[:44]) - 1) < 1e-4
    plans = json.loads(cli("plan", "--model", work / "agent.pt", "--athletes", work / "one.json", "--steps", "10",
                           "--qx-prior", "reference", "--format", "json", "--top", "3", "--device", "cpu").stdout)
    assert len(plans) == 1 and [r["rank"] for r in plans[0]["rows"]] == [1, 2, 3]
    uniform = cli("plan", "--model", work / "agent.pt", "--athletes", work / "one.json", "--steps", "10", "--device", "cpu")
    assert "QX is (nearly) uniform" in uniform.stderr
    assert "result is missing the fields" in fails("plan", "--result", work / "one.json")


def test_bench():
    report = json.loads(cli("bench", "--sizes", "1", "4", "--env-steps", "3", "--athletes", "4", "--steps", "3",
                            "--repeat", "1", "--device", "cpu").stdout)
    assert [e["num_envs"] for e in report["environment"]] == [1, 4]
    assert [o["athletes"] for o in report["optimization"]] == [1, 4] and all(o["seconds"] > 0 for o in report["optimization"])


def test_demo(tmp_path):
    out, figure = tmp_path / "demo", tmp_path / "images" / "demo_season.png"
    done = cli("demo", "--time-budget", "3", "--num-envs", "32", "--max-steps", "10", "--season-time-budget", "3",
               "--days", "28", "--out", out, "--figure", figure, "--device", "cpu")
    # the two progress bars (time bars: the budgets are set) end full at the seconds training took (the summaries'
    # seconds, also past the budget) and count the episodes the summaries report
    bars = [[line for line in re.split(r"[\r\n]", bar) if " s time budget" in line][-1]  # each bar's last state
            for bar in re.split(r"(?=PPO on \w+: +0%\|)", done.stderr)[1:]]
    counts = re.findall(r"\btrained (\d+) (?:episodes|seasons)(?: by PPO)? in (\d+) s", done.stdout)
    assert len(bars) == len(counts) == 2, (bars, counts)
    # the season's PPO has what the optimiser's imitation (the default) left of its 3 s
    for bar, (count, seconds), budget in zip(bars, counts, ("3", r"[0-9.e+-]+")):
        shown = re.search(rf": 100%\|.*\| (\d+) s of a {budget} s time budget, episodes={count}\b", bar)
        assert shown and abs(int(shown[1]) - int(seconds)) <= 1, (bar, count, seconds)  # rounded apart at most
    assert re.search("imitating the optimiser (first reached|was skipped)", done.stdout), done.stdout
    listed = done.stdout.split(f"files written to {out}/: ")[1].splitlines()[0].split(", ")
    assert sorted(listed) == sorted(p.name for p in out.iterdir()), listed  # every file written, and only those
    assert "Training plan for" in done.stdout and f"files written to {out}" in done.stdout
    assert "first two weeks:" in done.stdout and "the taper (last 7 days):" in done.stdout
    # the example catalogue by default, said so; the schedule names its sessions (never a bare code such as XL009)
    assert "the example catalogue, an illustration, not the design's catalogue" in done.stdout.splitlines()[0]
    schedule = done.stdout.split("first two weeks:")[1].split("weekly loads:")[0].splitlines()
    sessions = [line for line in schedule if re.match(r"^ *\d+  XL\d{3}", line)]
    assert sessions and all(re.match(r"^ *\d+  XL\d{3} [A-Za-z0-9]", line) for line in sessions), schedule
    assert "resting:" in done.stdout and "the textbook plan:" in done.stdout and "not a prediction of progress" in done.stdout
    for name in ("agent.pt", "season_agent.pt", "athlete.json", "result.json", "plan.json", "cq.json", "season_plan.json",
                 "rules.json", "training.json", "season.png", "season_calendar.png", "season_comparison.png", "cq_change.png",
                 "qx.png", "plan.png", "training_curves.png", "season_replan.json", "season_replan.png"):
        assert (out / name).stat().st_size > 0, name
    assert figure.read_bytes()[:8] == (out / "season.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the season is planned within the demo's coach's rules (defaults, Sundays off), and says so in one line
    from fitness_ppo.cli import DEMO_RULES
    from fitness_ppo.rules import CoachRules
    rules_line = next(line for line in done.stdout.splitlines() if line.startswith("coach's rules: "))
    assert "weekdays mon/tue/wed/thu/fri/sat" in rules_line and "rule violations: 0;" in rules_line, rules_line
    assert 0 < float(re.search(r"peak ACWR ([0-9.]+) \(EWMA\)", rules_line).group(1)) <= DEMO_RULES.acwr_cap, rules_line
    assert CoachRules.from_json((out / "rules.json").read_text()) == DEMO_RULES
    assert f"--rules {out / 'rules.json'}" in done.stdout
    season = json.loads((out / "season_plan.json").read_text())
    assert season["load_risk"]["summary"]["rule_violations"] == 0
    assert season["load_risk"]["summary"]["max_monotony"] <= DEMO_RULES.max_monotony == 2.0  # Foster's cap, by default
    days = season["days"]
    assert {d["action"] for d in days[6::7]} == {"rest"}, days  # Sundays off (day 1 a Monday)
    replanned = json.loads((out / "season_replan.json").read_text())  # the in-season adjustment: days 22..28
    assert [d["day"] for d in replanned["days"]] == list(range(22, 29)) and "in-season adjustment: after day 21" in \
        done.stdout, done.stdout
    assert {d["action"] for d in replanned["days"] if d["day"] % 7 == 0} == {"rest"}  # still Sundays off
    for k in range(len(days) - 2):  # at most 2 hard days in a row
        assert any(d["intensity"] != "hard" for d in days[k:k + 3]), days[k:k + 3]
    for k in range(len(days) - 3):  # the same training action at most 3 days running
        assert len({d["action"] for d in days[k:k + 4]}) > 1 or days[k]["action"] == "rest", days[k:k + 4]
    assert "Training plan for" in cli("plan", "--result", out / "result.json", "--top", "3").stdout
    assert "--figure" in fails("demo", "--figure", tmp_path, "--out", tmp_path / "o")


def test_season(work, tmp_path):
    out = tmp_path / "season"
    done = cli("season", "--athletes", work / "athletes.csv", "--response", '{"tau_fat": [6, 7, 8]}', "--out", out,
               "--format", "json", *SHORT_SEASON)
    assert "trained 32 seasons" in done.stderr and done.stdout == ""
    plans = json.loads((out / "plans.json").read_text())
    assert [p["user_id"] for p in plans] == [a["user_id"] for a in json.loads((work / "athletes.json").read_text())]
    assert all(len(p["days"]) == 28 and len(p["weeks"]) == 4 and p["guard"] is not None for p in plans)  # policy plans, guarded
    for name in ("season_agent.pt", "season_1.png", "calendar_3.png"):
        assert (out / name).stat().st_size > 0, name
    again = json.loads(cli("season", "--model", out / "season_agent.pt", "--athletes", work / "athletes.json",
                           "--response", '{"tau_fat": [6, 7, 8]}', "--format", "json", "--days", "28",
                           "--device", "cpu").stdout)
    assert [p["days"] for p in again] == [p["days"] for p in plans]  # the saved policy plans the same
    rows = list(csv.DictReader(io.StringIO(cli("season", "--planner", "textbook", "--athletes", work / "one.json",
                                               "--format", "csv", "--days", "28").stdout)))
    assert len(rows) == 28 and {r["user_id"] for r in rows} == {json.loads((work / "one.json").read_text())["user_id"]}


def test_season_bad_inputs(work, tmp_path):
    assert "argument --days: must be an integer in [28, 182]" in fails("season", "--days", "200")
    assert "--response: neither a JSON object nor a .json file" in fails("season", "--response", "{oops",
                                                                         *SHORT_SEASON)
    assert "response file not found" in fails("season", "--response", tmp_path / "none.json", *SHORT_SEASON)
    assert "agent must be trained for seasons" in fails("season", "--model", work / "agent.pt", *SHORT_SEASON)
    assert "model file not found" in fails("season", "--model", tmp_path / "none.pt", *SHORT_SEASON)
    (tmp_path / "file").write_text("x")
    assert "is a file, not a folder" in fails("season", "--out", tmp_path / "file", *SHORT_SEASON)


def test_season_that_trained_nothing_plans_with_the_best_baseline(tmp_path):
    "Issue #17: `season --time-budget 0.001` trained 0 seasons and presented the untrained policy's plans (exit 0)."
    from fitness_ppo.season import GUARD_BASELINES
    done = cli("season", "--time-budget", "0.001", "--days", "28", "--num-envs", "16", "--format", "json", "--quiet",
               "--device", "cpu", "--out", tmp_path, "--no-imitate")  # PPO alone: imitation would learn in one round
    assert "trained 0 seasons" in done.stderr and "no season was trained (--time-budget 0.001 s" in done.stderr
    best = done.stderr.split("planning with the ")[1].split(" planner instead")[0]
    assert best in GUARD_BASELINES, done.stderr
    assert {p["planner"] for p in json.loads((tmp_path / "plans.json").read_text())} == {best}
    assert not (tmp_path / "season_agent.pt").exists()  # no untrained policy is saved as if it were one


def test_season_imitate(tmp_path):
    "`season` (`--imitate` by default): the policy first clones the optimiser's plans; the summary gives that score."
    done = cli("season", "--time-budget", "20", "--days", "28", "--num-envs", "16", "--format", "json",
               "--quiet", "--device", "cpu", "--out", tmp_path)
    assert "imitating the optimiser first reached" in done.stderr, done.stderr
    plans = json.loads((tmp_path / "plans.json").read_text())
    assert len(plans) == 3 and all(len(p["days"]) == 28 for p in plans)
    assert (tmp_path / "season_agent.pt").exists()  # a policy was learned, even if PPO had no time left

def test_season_rules(work, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"weekdays": ["mon", "wed", "fri"], "max_hard_in_row": 1, "min_rest_per_7": 2,
                                 "max_monotony": 1.2}))
    plans = json.loads(cli("season", "--planner", "forecast", "--athletes", work / "athletes.json", "--rules", rules,
                           "--format", "json", "--days", "28").stdout)
    assert len(plans) == 3
    for p in plans:  # day 1 is a Monday: sessions only on days 1, 3, 5 of each week
        assert {(d["day"] - 1) % 7 for d in p["days"] if d["action"] != "rest"} <= {0, 2, 4}, p["days"]
        assert p["load_risk"]["summary"]["rule_violations"] == 0
        assert all(m is None or m <= 1.2 for m in p["load_risk"]["weekly"]["monotony"]), p["load_risk"]["weekly"]
    text = cli("season", "--planner", "textbook", "--athletes", work / "one.json", "--rules", rules, "--days", "28")
    assert "days breaking a coach's rule: 0" in text.stdout
    for bad, message in (('{"max_hard_in_a_row": 1}', "--rules: unknown rule 'max_hard_in_a_row'"),
                         ('{"max_hard_in_row": -1}', "--rules: max_hard_in_row must be an integer >= 0"),
                         ('{"weekdays": ["funday"]}', "--rules: weekdays must be 0 (Monday) .. 6 (Sunday)"),
                         ('{"max_monotony": 0.2}', "--rules: max_monotony must be a finite number in [0.378")):
        err = fails("season", "--planner", "textbook", "--rules", bad, "--days", "28")
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_train_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    cli("train", "--episodes", "16", "--out", tmp_path / "a.pt", "--tensorboard", tmp_path / "tb", *TINY)
    assert list((tmp_path / "tb").glob("events.out.tfevents.*")), list((tmp_path / "tb").iterdir())
    (tmp_path / "file").write_text("x")
    assert "--tensorboard" in fails("train", "--tensorboard", tmp_path / "file", *TINY)


def test_train_and_optimize_under_torchrun(work, tmp_path):
    "Two processes (gloo): train writes one checkpoint that records both; optimize prints each athlete once, in order."
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    run = lambda *args: subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "fitness_ppo.cli",
                                        *map(str, args)], capture_output=True, text=True, timeout=180, env=env)
    done = run("train", "--episodes", "16", "--out", tmp_path / "two.pt", *TINY)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("checkpoint:") == 1 and "(2 processes)" in done.stdout, done.stdout
    from fitness_ppo.checkpoint import read_checkpoint
    checkpoint = read_checkpoint(tmp_path / "two.pt", "cpu")  # one round: 8 athletes on each of the 2 processes
    assert (checkpoint["progress"]["episodes_done"], checkpoint["world_size"]) == (16, 2)
    done = run("optimize", "--model", work / "agent.pt", "--athletes", work / "athletes.json", "--steps", "5",
               "--device", "cpu")
    assert done.returncode == 0, done.stderr[-3000:]
    sharded = json.loads(done.stdout)  # rank 0 alone prints, all three athletes
    single = json.loads(cli("optimize", "--model", work / "agent.pt", "--athletes", work / "athletes.json", "--steps",
                            "5", "--device", "cpu").stdout)
    assert [r["cq_matrix"] for r in sharded] == [r["cq_matrix"] for r in single]


def test_serve(work):
    pytest.importorskip("uvicorn"); pytest.importorskip("fastapi")
    port = free_port()
    cmd = [sys.executable, "-m", "fitness_ppo.cli", "serve", "--port", port, "--model", work / "agent.pt", "--device", "cpu"]
    health = lambda: json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2))
    with running(cmd, health, work / "serve.log", timeout=120):
        assert health()["model_loaded"] is True


def test_serve_without_the_api_extra():
    code = ("import sys; sys.modules['uvicorn'] = None; from fitness_ppo.cli import main; "
            "sys.exit(main(['serve']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "needs the [api] extra" in done.stderr and "pip install" in done.stderr, done.stderr
    assert "model file not found" in fails("serve", "--model", "/nonexistent/agent.pt")


@pytest.fixture(scope="module")
def corpus(work, tmp_path_factory):
    "Bad inputs of every kind the command line reads: tampered checkpoints, broken JSON, CSV and catalogue files."
    import torch
    from fitness_ppo.io import ATHLETE_CSV_COLUMNS
    d = tmp_path_factory.mktemp("corpus")
    ck = torch.load(work / "agent.pt", weights_only=True)
    v1 = {**{k: v for k, v in ck.items() if k not in ("net_config", "ppo_config", "progress")},
          "format": "fitness_ppo.agent/1", "config": ck["net_config"], "optim_settings": {},
          "hparams": {**ck["ppo_config"], **ck["progress"], "device": "cuda:7"}}
    for name, contents in {"mismatch.pt": {**ck, "net_config": {**ck["net_config"], "shared_width": 128}},
                           "lacking.pt": {k: v for k, v in ck.items() if k != "optimizer"},
                           "device.pt": v1,
                           "huge.pt": {**ck, "net_config": {**ck["net_config"], "feature_widths": [8192] * 16}},
                           "negative.pt": {**ck, "progress": {**ck["progress"], "episodes_done": -5}},
                           "epochs.pt": {**ck, "ppo_config": {**ck["ppo_config"], "update_epochs": 10**6}},
                           "nan.pt": {**ck, "actor_critic": {k: v * float("nan") for k, v in ck["actor_critic"].items()}},
                           }.items():
        torch.save(contents, d / name)
    (d / "empty.pt").write_bytes(b""); (d / "folder.pt").mkdir(); (d / "junk.pt").write_bytes(b"junk")
    deep = "[" * 200_000 + "]" * 200_000
    result = json.loads(cli("optimize", "--model", work / "agent.pt", "--athletes", work / "one.json", "--steps", "2",
                            "--device", "cpu").stdout)
    files = {"deep.json": deep, "strings.json": json.dumps({**result, "cq_matrix": [["a"] * 23] * 93}),
             "catalog.json": '{"qualities":5}', "broken.json": "{oops", "empty.json": "", "empty.csv": "",
             "header.csv": ",".join(ATHLETE_CSV_COLUMNS) + "\n", "list.json": "[1, 2]",
             "digits.json": '{"age": 1' + "0" * 5000 + "}"}
    for name, text in files.items(): (d / name).write_text(text)
    (d / "latin1.json").write_bytes(b'{"user_id": "\xe9"}')
    (d / "a_file").write_text("x")  # a path below it cannot be written
    return d


def corpus_cases(work, d):
    "(arguments, what the one line must name): each a bad input that must end with exit code 2."
    model, athletes = ("--model", work / "agent.pt"), ("--athletes", work / "one.json")
    cases = [(("optimize", "--model", d / name, *athletes), name) for name in
             ("mismatch.pt", "lacking.pt", "device.pt", "huge.pt", "negative.pt", "epochs.pt", "nan.pt", "empty.pt",
              "folder.pt", "junk.pt")]
    cases += [(("plan", "--model", d / "device.pt", *athletes), "device.pt"),
              (("train", "--resume", d / "mismatch.pt", *TINY), "mismatch.pt")]
    cases += [(("bench", "--model", d / "huge.pt", "--device", "cpu"), "huge.pt")]
    cases += [(("optimize", *model, "--athletes", d / name), name)
              for name in ("deep.json", "empty.json", "empty.csv", "header.csv", "latin1.json", "list.json",
                           "digits.json")]
    cases += [(("plan", "--result", d / name), name) for name in ("deep.json", "strings.json", "empty.json")]
    cases += [(("optimize", *model, *athletes, "--qx-prior", d / name), name) for name in ("deep.json", "strings.json")]
    cases += [(("plan", "--result", work / "plan_results.json", "--catalog", d / name), name)
              for name in ("catalog.json", "broken.json", "deep.json", "empty.json")]
    cases += [(("train", "--data", d / name, *TINY), name) for name in ("empty.csv", "header.csv", "empty.json")]
    cases += [(("train", "--out", d / "folder.pt", *TINY), "--out"), (("serve", "--port", "70000"), "--port"),
              (("serve", "--port", "0"), "--port"), (("optimize", *model, *athletes, "--steps", "0"), "steps"),
              (("plan", "--result", work / "plan_results.json", "--top", "45"), "--top")]
    cases += [(("season", "--response", response, *SHORT_SEASON), "--response")
              for response in ('{"tau_fit": "x"}', '{"tau_fit": null}', '{"tau_fit": {}}', "null", "[1]", "{}x",
                             '{"tau_fit": 1' + "0" * 5000 + "}")]  # more digits than Python reads (4300)
    cases += [(("season", "--time-budget", budget, *SHORT_SEASON), "--time-budget") for budget in ("inf", "nan", "-1")]
    cases += [((command, "--time-budget", "inf", *TINY), "--time-budget") for command in ("train", "demo")]
    cases += [(("season", "--out", d / "a_file" / "plans", *SHORT_SEASON), "--out"),
              (("train", "--out", d / "a_file" / "agent.pt", *TINY), "--out"),
              (("bench", "--out", d / "a_file" / "bench.json"), "--out")]
    return cases


def test_bad_inputs_end_in_one_line_and_exit_code_2(work, corpus):
    cli("optimize", "--model", work / "agent.pt", "--athletes", work / "athletes.json", "--steps", "3",
        "--out", work / "plan_results.json", "--device", "cpu")
    cases = corpus_cases(work, corpus)
    assert len(cases) > 30
    with ThreadPoolExecutor(3) as pool:  # each case is a fresh interpreter: mostly waiting for imports
        runs = list(pool.map(lambda case: cli(*case[0], check=False, timeout=180), cases))
    for (args, named), done in zip(cases, runs):
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (args, done.returncode, done.stderr[-2000:])
        assert "Traceback" not in done.stdout + done.stderr, (args, done.stderr[-2000:])
        assert len(lines) == 1 and named in lines[0], (args, done.stderr)


def test_unwritable_out_is_found_before_training(corpus):
    "season's default training is 60 s: an --out that cannot be written must be refused before it, not after."
    start = time.time()
    err = fails("season", "--out", corpus / "a_file" / "plans", "--days", "28", "--quiet", "--device", "cpu")
    assert "cannot write there" in err and time.time() - start < 45, (err, time.time() - start)


def test_uvicorn_with_a_bad_model_variable_says_one_line(corpus):
    "`uvicorn fitness_ppo.api:app` with FITNESS_PPO_SEASON_MODEL (or _MODEL) naming a bad file: exit 2, one line."
    pytest.importorskip("uvicorn"); pytest.importorskip("fastapi")
    for variable in ("FITNESS_PPO_SEASON_MODEL", "FITNESS_PPO_MODEL"):
        env = {**os.environ, variable: str(corpus / "junk.pt"), "FITNESS_PPO_MODEL_DIR": str(corpus / "models"),
               "FITNESS_PPO_DEVICE": "cpu"}
        done = subprocess.run([sys.executable, "-m", "uvicorn", "fitness_ppo.api:app", "--port", str(free_port())],
                              capture_output=True, text=True, env=env, timeout=180)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and "Traceback" not in done.stderr, (done.returncode, done.stderr[-2000:])
        assert len(lines) == 1 and variable in lines[0] and "junk.pt" in lines[0], done.stderr


def test_serve_checks_the_model_before_starting(corpus):
    pytest.importorskip("uvicorn"); pytest.importorskip("fastapi")
    for name in ("empty.pt", "mismatch.pt", "huge.pt", "junk.pt"):
        err = fails("serve", "--model", corpus / name, "--port", str(free_port()), "--device", "cpu")
        assert len(err.strip().splitlines()) == 1 and name in err, err
    help_text = " ".join(cli("serve", "--help").stdout.split())
    assert "no authentication" in help_text and "--allowed-host" in help_text and "reverse proxy" in help_text


def test_a_season_policy_with_nan_weights_is_not_served(tmp_path):
    "Issue #17, probe 3: with NaN in the actor's output layer, /season answered 200 with every day rest."
    pytest.importorskip("uvicorn"); pytest.importorskip("fastapi")
    import math, torch
    from fitness_ppo.season import SeasonEnvironment, season_agent
    season_agent(SeasonEnvironment(days=28)).save_model(tmp_path / "season.pt")
    ckpt = torch.load(tmp_path / "season.pt", weights_only=True)
    ckpt["actor_critic"]["actor_out.train_weights.bias"] *= math.nan
    torch.save(ckpt, tmp_path / "nan_season.pt")
    err = fails("serve", "--season-model", tmp_path / "nan_season.pt", "--port", str(free_port()), "--device", "cpu",
                "--model-dir", tmp_path / "models")
    assert len(err.strip().splitlines()) == 1 and "actor_out.train_weights.bias holds NaN" in err, err


def test_json_logs_of_a_command(work, tmp_path):
    from fitness_ppo.state import synthetic_athletes
    from fitness_ppo.cli import write_athletes
    secret = synthetic_athletes(2, seed=9)
    for a in secret: a.user_id = "secret-" + a.user_id
    write_athletes(secret, tmp_path / "secret.json")
    done = cli("train", "--data", tmp_path / "secret.json", "--episodes", "8", "--out", tmp_path / "a.pt", *TINY,
               "--log-level", "info", "--log-format", "json")
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    train = [line for line in lines if line.get("event") == "train"]
    assert len(train) == 1 and train[0]["episodes"] == 8 and train[0]["duration_s"] > 0, done.stderr
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert "secret-" not in done.stderr and "user_id" not in done.stderr


def test_demo_season_is_guarded(tmp_path):
    """The demo's season plan beats resting and the textbook plan on competition day, and says how the guard decided,
    across seeds, catalogues and thread counts (1 and 2)"""
    import re
    for seed in (0, 1):
        catalog = ("example", "design")[seed]  # the default catalogue, and the design's one option away
        done = cli("demo", "--time-budget", "3", "--num-envs", "32", "--max-steps", "10", "--season-time-budget", "5",
                   "--days", "28", "--quiet", "--out", tmp_path / f"demo{seed}", "--device", "cpu", "--seed", seed,
                   "--catalog", catalog, threads=seed + 1)
        assert done.stdout.startswith(f"names and matrices: the {catalog}"), done.stdout[:200]
        line = next(line for line in done.stdout.splitlines() if line.startswith("predicted mean target score"))
        plan, rest, textbook = (float(re.search(rf"{key}(-?[0-9.]+)", line).group(1))
                                for key in (r"\(day 28\): ", "resting: ", "the textbook plan: "))
        assert plan > rest and plan > textbook, line
        assert re.search(r"^policy plan (kept: |replaced by )", done.stdout, re.M), done.stdout


@pytest.fixture(scope="module")
def fit_files(tmp_path_factory):
    "Clarke & Skiba's cyclist as CSV files, a log with a bad row, and a simulated two-athlete squad as JSON"
    from fitness_ppo.fit import load_clarke_skiba, simulate_squad
    d = tmp_path_factory.mktemp("fit")
    log, tests = load_clarke_skiba()
    log.to_csv(d / "log.csv", index=False)
    tests.to_csv(d / "tests.csv", index=False)
    bad = log.astype({"load": object})
    bad.loc[7, "load"] = "lots"
    bad.to_csv(d / "bad.csv", index=False)
    squad_log, squad_tests, _ = simulate_squad(2, weeks=8, seed=3)
    squad_log.to_json(d / "squad_log.json", orient="records")
    squad_tests.to_json(d / "squad_tests.json", orient="records")
    return d


def test_fit(fit_files, tmp_path):
    out, chart = tmp_path / "fit.json", tmp_path / "fit.png"
    done = cli("fit", "--log", fit_files / "log.csv", "--tests", fit_files / "tests.csv", "--out", out, "--chart", chart)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("clarke_skiba: banister fit of 9 tests, SSE 20.46, R^2 0.979"), done.stdout
    assert sum(line.split()[0] in ("p0", "k_fit", "k_fat", "tau_fit", "tau_fat", "k_fat/k_fit") for line in lines) == 6
    assert "k_fit" in done.stdout and "NOT determined by the tests" in done.stdout  # nine tests cannot split the gains
    assert re.search(r"tau_fit +34\.2\d* +95%: 2\d\.\d+ \.\. 5\d\.\d+ +determined", done.stdout), done.stdout
    assert "today (165): modelled result" in done.stdout
    saved = json.loads(out.read_text())
    assert saved["model"] == "banister" and len(saved["parameters"]) == 6 and saved["state"][0]["n_tests"] == 9
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    squad = cli("fit", "--log", fit_files / "squad_log.json", "--tests", fit_files / "squad_tests.json",
                "--model", "busso").stdout
    assert "sim0000: busso fit of 16 tests" in squad and "sim0001: busso fit of 16 tests" in squad
    assert "tau_gain" in squad


def test_fit_bad_inputs(fit_files, tmp_path):
    err = fails("fit", "--log", fit_files / "bad.csv", "--tests", fit_files / "tests.csv")
    assert err.strip().count("\n") == 0 and "training log: row 7, column 'load': 'lots' is not a finite number" in err
    assert "the following arguments are required: --tests" in fails("fit", "--log", fit_files / "log.csv")
    assert "--out" in fails("fit", "--log", fit_files / "log.csv", "--tests", fit_files / "tests.csv",
                            "--out", tmp_path / "fit.txt")
    assert "argument --model: invalid choice" in fails("fit", "--log", "a.csv", "--tests", "b.csv", "--model", "x")
    assert "No such file" in fails("fit", "--log", tmp_path / "none.csv", "--tests", fit_files / "tests.csv")


def test_season_from_fit(fit_files):
    plans = json.loads(cli("season", "--log", fit_files / "log.csv", "--tests", fit_files / "tests.csv",
                           "--planner", "forecast", "--days", "28", "--format", "json").stdout)
    plans = plans if isinstance(plans, list) else [plans]
    assert [p["user_id"] for p in plans] == ["clarke_skiba"] and len(plans[0]["days"]) == 28
    c = plans[0]["competition"]
    assert c["plan"] >= c["textbook"] - 1e-6, c
    err = fails("season", "--log", fit_files / "log.csv", "--tests", fit_files / "tests.csv")
    assert "--log and --tests plan with a planner" in err
    assert "--log and --tests go together" in fails("season", "--log", fit_files / "log.csv", "--planner", "rest")


def test_season_replanned_from_a_season_log(work, tmp_path):
    "`season --planner adaptive --log --tests`: the plan's own CSV cut at day 14 and a low test re-plan days 15..28."
    rows = list(csv.DictReader(io.StringIO(cli("season", "--planner", "optimizer", "--athletes", work / "athletes.json",
                                               "--format", "csv", "--days", "28").stdout)))
    with open(tmp_path / "log.csv", "w", newline="") as f:
        log = csv.DictWriter(f, fieldnames=list(rows[0]))
        log.writeheader(); log.writerows(r for r in rows if int(r["day"]) <= 14)
    tests = [f"{r['user_id']},14,{float(r['score']) * 0.97}" for r in rows if r["day"] == "14"]
    (tmp_path / "tests.csv").write_text("user_id,day,value\n" + "\n".join(tests) + "\n")
    done = cli("season", "--planner", "adaptive", "--log", tmp_path / "log.csv", "--tests", tmp_path / "tests.csv",
               "--athletes", work / "athletes.json", "--days", "28", "--format", "json")
    plans = json.loads(done.stdout)
    assert len(plans) == 3 and all([d["day"] for d in p["days"]] == list(range(15, 29)) for p in plans), plans
    assert done.stderr.count("re-planned after day 14 of 28 from 1 test") == 3, done.stderr
    text = cli("season", "--planner", "adaptive", "--log", tmp_path / "log.csv", "--athletes", work / "athletes.json",
               "--days", "28").stdout
    assert text.count("from 0 tests") == 3 and text.count("Season plan for ") == 3, text
    ruled = json.loads(cli("season", "--planner", "adaptive", "--log", tmp_path / "log.csv", "--athletes",
                           work / "athletes.json", "--days", "28", "--format", "json", "--rules",
                           '{"weekdays": ["mon", "tue", "wed", "thu", "fri", "sat"]}').stdout)
    assert all(d["action"] == "rest" for p in ruled for d in p["days"] if d["day"] % 7 == 0), ruled  # Sundays
    (tmp_path / "bad.csv").write_text("day,action,load\n1,XL001,0.7\n")
    for argv, message in [(("--log", tmp_path / "bad.csv"), "season log: day 1: load 0.7 is not a session's load"),
                          (("--log", tmp_path / "tests.csv"), "season log: no session column"),
                          ((), "--planner adaptive re-plans a season under way: give --log"),
                          (("--log", tmp_path / "log.csv", "--response", '{"tau_fat": 6}'),
                           "--response does not go with --planner adaptive")]:
        err = fails("season", "--planner", "adaptive", "--athletes", work / "athletes.json", "--days", "28", *argv)
        assert message in err and len(err.strip().splitlines()) == 1, err
