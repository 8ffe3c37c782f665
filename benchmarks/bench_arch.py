"""Architecture check (issue 18): training env-steps/s of the design and default networks on the weights environment
and of the season network, the season agent's parameter count (and how many are CQ/QX heads), and each module's line
count, for this checkout and, with `--before ROOT`, for another copy of the package measured in the same run.

Prints one JSON object. Usage: python benchmarks/bench_arch.py [--before /path/to/old/checkout] [--seconds 1.0]
[--repeat 3] [--alternations 2] (the checkouts run in turn, the best rate of each kept).
Each figure is the best of a few timed `learn` calls of `--seconds` each after a warm-up, without held-out
evaluation (only training's own work) (other processes on the
machine change them: the 1-minute load average is printed).
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def measure(seconds: float, repeat: int) -> dict:
    "The figures of the package `fitness_ppo` that Python imports (run in a subprocess per checkout)."
    import torch
    import fitness_ppo
    from fitness_ppo.env import TrainingEnvironment
    from fitness_ppo.model import NetConfig
    from fitness_ppo.ppo import EnhancedPPOAgent, Evaluation
    from fitness_ppo.season import SeasonEnvironment, season_agent
    torch.set_num_threads(1)
    class Unscored(Evaluation):  # training only: no baselines, no held-out scoring (they are not training's cost)
        def before_fit(self, run): self.best_weights = None; run.summary.update(best_score=None, stopped_early=False)
        def after_round(self, run): pass
    def steps_per_s(agent, env):
        best = 0.0
        agent.learn(env, episodes=env.num_envs, progress=False, evaluation=Unscored())  # warm-up
        for _ in range(repeat):
            before, start = agent.env_steps_done, time.perf_counter()
            agent.learn(env, episodes=10 ** 9, time_budget_s=seconds, progress=False, evaluation=Unscored())
            best = max(best, (agent.env_steps_done - before) / (time.perf_counter() - start))
        return round(best)
    design_env = lambda: TrainingEnvironment(num_envs=64, max_steps=50)
    out = {"package": str(Path(fitness_ppo.__file__).parent)}
    for name, config in (("design", NetConfig.design()), ("default", NetConfig())):
        env = design_env()
        out[f"{name}_env_steps_per_s"] = steps_per_s(EnhancedPPOAgent.for_env(env, config), env)
    env = SeasonEnvironment(num_envs=64, days=28)
    agent = season_agent(env)
    out["season_env_steps_per_s"] = steps_per_s(agent, env)
    names = [n for n, _ in agent.actor_critic.named_parameters()]
    out["season_parameters"] = sum(p.numel() for p in agent.actor_critic.parameters())
    out["season_head_parameters"] = sum(p.numel() for n, p in agent.actor_critic.named_parameters()
                                        if n.startswith(("cq_predictor.", "qx_predictor.")))
    out["season_parameter_tensors"] = len(names)
    from fitness_ppo.model import EnhancedActorCritic
    from fitness_ppo.season import SEASON_ACTION_DIM, SEASON_NET, SEASON_OBS_DIM
    direct = EnhancedActorCritic(SEASON_OBS_DIM, SEASON_ACTION_DIM, SEASON_NET)  # the preset built without `for_env`
    out["season_net_direct_parameters"] = sum(p.numel() for p in direct.parameters())
    folder = Path(fitness_ppo.__file__).parent
    out["module_lines"] = {p.stem: len(p.read_text().splitlines()) for p in sorted(folder.glob("*.py"))
                           if p.stem not in ("__init__", "_modidx")}
    return out

def run(root: Path, seconds: float, repeat: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    code = f"import sys, json; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import bench_arch; " \
           f"print(json.dumps(bench_arch.measure({seconds}, {repeat})))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])

if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--before", type=Path, help="a checkout of the package before the change (measured first)")
    p.add_argument("--seconds", type=float, default=1.0, help="seconds of each timed training call")
    p.add_argument("--repeat", type=int, default=3, help="timed calls per figure (the best is kept)")
    p.add_argument("--alternations", type=int, default=2, help="runs of each checkout, alternating (the best is kept)")
    a = p.parse_args()
    result = {"load_before": os.getloadavg()[0]}
    roots = {"before": a.before.resolve()} if a.before else {}
    for _ in range(a.alternations):  # before, after, before, after...: both meet the machine's changing load alike
        for name, root in {**roots, "after": ROOT}.items():
            got, best = run(root, a.seconds, a.repeat), result.get(name)
            result[name] = got if best is None else {k: max(v, best[k]) if k.endswith("_per_s") else v
                                                     for k, v in got.items()}
    result["load_after"] = os.getloadavg()[0]
    print(json.dumps(result, indent=1))
