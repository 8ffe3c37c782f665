"""The adaptive policy's documented training call, timed and scored: `train_adaptive(AdaptiveSeasonEnvironment(256,
56), 600, seed)`, then the served policy, open loop and model-predictive control played on 17_adaptive's 64
held-out athletes (`HELD_OUT_SEED`) in the same run, as its table plays them (`planner_returns`, `adaptive_table`):
the mean, 10th percentile and worst of each one's true improvement over the oracle's, and its planning seconds per
athlete-season; one JSON line per seed, with MPC's time over the policy's and the load average before and after.

    python scripts/bench_adaptive_call.py [--seeds 0 1] [--budget 600] [--threads 1] [--wide]

Issue #22 asks for a mean at least MPC's and at least 0.95 of the oracle, a 10th percentile above open loop's, no
athlete below resting (a score below 0), and planning at least 100 times faster than MPC. The call is time-bound,
so what it learns depends on the machine's load: run it on a quiet machine and report the load it prints. The
policy's mean varies by about 0.03 from one run of the call to the next (17_adaptive): compare several seeds.
"""
import argparse, json, os, time, warnings

import torch

from fitness_ppo.adaptive import (HELD_OUT_SEED, AdaptiveSeasonEnvironment, adaptive_table, mpc_policy,
                                  open_loop_policy, planner_returns, train_adaptive, widen)

HELD_OUT_ATHLETES = 64  # 17_adaptive's table


def run(seed: int, budget: float, wide: bool) -> dict:
    "One documented call with `seed` and a `budget` in seconds, then the table's planners on its held-out athletes."
    load_before, started = os.getloadavg()[0], time.time()
    env = AdaptiveSeasonEnvironment(256, 56, seed=0)
    agent, record = train_adaptive(env, budget, seed=seed)
    trained_s = time.time() - started
    rounds = record.get("warm_start", {}).get("rounds", [])
    held = env.sample_athletes(HELD_OUT_ATHLETES, HELD_OUT_SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # widened responses lie outside the usual ranges: on purpose
        returns = planner_returns(env, widen(held) if wide else held,
                                  {"open loop": open_loop_policy(), "MPC": mpc_policy(), "policy": agent.policy()})
    rows = {row.pop("planner"): row for row in adaptive_table(returns)}
    return dict(seed=seed, budget_s=budget, wide=wide, trained_s=round(trained_s, 1), rounds=len(rounds),
                athletes_imitated=sum(r["athletes"] for r in rounds),
                served_on_its_held_out=round(record["best_score"], 4),
                table=rows, mpc_over_policy=round(rows["MPC"]["seconds"] / max(rows["policy"]["seconds"], 1e-9), 1),
                wall_s=round(time.time() - started, 1), load=(round(load_before, 2), round(os.getloadavg()[0], 2)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--budget", type=float, default=600.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--wide", action="store_true", help="athletes 1.5 times as spread as the prior (`widen`)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for seed in args.seeds: print(json.dumps(run(seed, args.budget, args.wide)), flush=True)
