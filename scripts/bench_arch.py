"""Training env-steps/s (design and default networks on the weights environment, the season network on seasons) and
module line counts, for this checkout and another one (e.g. a worktree of an earlier commit), in one run; prints JSON.

    python scripts/bench_arch.py --base /path/to/other/checkout [--rounds 2 6]

Each measurement runs in a fresh interpreter with `PYTHONPATH` set to the checkout; steps/s comes from the difference
of two runs (few and more rounds), so the start-up evaluation's cost cancels out. Base and this checkout alternate.
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
CONFIGS = ("design", "default", "season")
NUM_ENVS = int(os.environ.get("BENCH_NUM_ENVS", 64))  # athletes side by side (a round: NUM_ENVS episodes)


def one(config: str, rounds: int) -> dict:
    "Train `rounds` rounds of `NUM_ENVS` athletes with `config`; the seconds and environment steps it took."
    import torch
    from fitness_ppo.ppo import EnhancedPPOAgent, Evaluation
    torch.set_num_threads(1)
    if config == "season":
        from fitness_ppo.season import SeasonEnvironment, season_agent
        env = SeasonEnvironment(NUM_ENVS, 28)
        agent = season_agent(env, seed=0)
    else:
        from fitness_ppo.env import TrainingEnvironment
        from fitness_ppo.model import NetConfig
        env = TrainingEnvironment(NUM_ENVS, 50)
        agent = EnhancedPPOAgent(config=NetConfig.design() if config == "design" else NetConfig(), seed=0)
    start = time.perf_counter()
    agent.learn(env, None, NUM_ENVS * rounds, evaluation=Evaluation(env.sample_athletes(2, 1), every=10 ** 6),
                progress=False)
    return dict(seconds=time.perf_counter() - start, steps=agent.env_steps_done)


def measure(repo: Path, config: str, rounds: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(repo), OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    out = subprocess.run([sys.executable, __file__, "--one", config, "--rounds", str(rounds)], env=env, check=True,
                         capture_output=True, text=True, cwd=repo).stdout
    return json.loads(out.strip().splitlines()[-1])


def line_counts(repo: Path) -> dict:
    return {p.stem: len(p.read_text().splitlines()) for p in sorted((repo / "fitness_ppo").glob("*.py"))
            if p.stem not in ("_modidx", "__init__")}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--base", type=Path, help="the other checkout")
    p.add_argument("--one", choices=CONFIGS)
    p.add_argument("--rounds", type=int, nargs="+", default=[2, 6])
    a = p.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.rounds[0])))
        sys.exit(0)
    repos = {"base": a.base, "this": HERE} if a.base else {"this": HERE}
    result = {"load_before": os.getloadavg(), "steps_per_s": {}}
    for config in CONFIGS:
        for name, repo in repos.items():
            few, more = (measure(repo, config, r) for r in a.rounds)
            rate = (more["steps"] - few["steps"]) / (more["seconds"] - few["seconds"])
            result["steps_per_s"].setdefault(config, {})[name] = round(rate)
            print(json.dumps(dict(config=config, checkout=name, few=few, more=more, steps_per_s=round(rate),
                                  load=os.getloadavg())), file=sys.stderr, flush=True)  # partial results
    result["lines"] = {name: line_counts(repo) for name, repo in repos.items()}
    result["load_after"] = os.getloadavg()
    print(json.dumps(result, indent=1))
