"""Season planner timings: the environment's day step, and planning many athletes with a policy or the optimiser.

Prints one JSON object. Usage: python benchmarks/bench_season.py [--sizes 1 64 1024 4096] [--athletes 1000]
- `environment`: athlete-days per second of `SeasonEnvironment.step` (the model's day, the reward and the season
  observation) with random actions, of the same within the default `CoachRules` (each day's action mask and the
  rules' counts in the observation; a random action the mask forbids becomes rest), and of the model's day alone
  (`SeasonModel.step`), at several batch sizes;
- `planning`: seconds to plan `--athletes` athletes for a 56-day season with a season policy (one forward pass per day
  for all of them; an untrained policy costs the same as a trained one) and with the per-athlete optimiser
  (`optimize_schedule`: gradient ascent, rounding, one polishing sweep), and the ratio;
- `baselines`: seconds of each baseline planner for 64 athletes.
"""
import argparse, json, platform, time
import torch
from fitness_ppo.env import play_episode
from fitness_ppo.rules import CoachRules
from fitness_ppo.season import PLANNERS, SeasonEnvironment, baseline_schedule, season_agent

def seconds(fn, repeat=1):
    "Best wall time of `repeat` calls."
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter(); fn(); best = min(best, time.perf_counter() - start)
    return best

def environment(n, days=56):
    env = SeasonEnvironment(num_envs=n, days=days)
    x = env.sample_athletes(n, seed=0)
    actions = torch.randint(0, env.action_dim, (days, n), generator=torch.Generator().manual_seed(0))
    def season():
        env.reset(x)
        for a in actions: env.step(a)
    ruled = SeasonEnvironment(num_envs=n, days=days, rules=CoachRules.default())
    def ruled_season():
        ruled.reset(x)
        for a in actions: ruled.step(torch.where(ruled.action_mask().gather(1, a[:, None])[:, 0], a, 0))
    model = env.model(x)
    def model_days():
        s = model.start()
        for a in actions: s = model.step(s, a)
    season(); ruled_season(); model_days()  # warm-up
    return dict(num_envs=n, athlete_days_per_s=round(n * days / seconds(season, 3)),
                ruled_athlete_days_per_s=round(n * days / seconds(ruled_season, 3)),
                model_only_athlete_days_per_s=round(n * days / seconds(model_days, 3)))

def planning(n, days=56):
    env = SeasonEnvironment(num_envs=n, days=days)
    x = env.sample_athletes(n, seed=1)
    agent = season_agent(env)
    policy_s = seconds(lambda: play_episode(env, agent.policy(), x), 2)
    optimizer_s = seconds(lambda: baseline_schedule("optimizer", env.model(x), days))
    return dict(athletes=n, days=days, policy_s=round(policy_s, 3), optimizer_s=round(optimizer_s, 2),
                optimizer_over_policy=round(optimizer_s / policy_s, 1))

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024, 4096])
    p.add_argument("--athletes", type=int, default=1000)
    args = p.parse_args()
    env64 = SeasonEnvironment(num_envs=64)
    model64 = env64.model(env64.sample_athletes(64, seed=2))
    out = dict(torch=torch.__version__, threads=torch.get_num_threads(), machine=platform.machine(),
               environment=[environment(n) for n in args.sizes], planning=planning(args.athletes),
               baselines={name: round(seconds(lambda: baseline_schedule(name, model64, 56)), 3) for name in PLANNERS})
    print(json.dumps(out, indent=1))
