"""Environment throughput: athlete-steps per second (slots x steps / s) for several batch sizes.

Prints one JSON object. Usage: python benchmarks/bench_env.py [--sizes 1 64 1024 4096] [--steps 200]
Measures `step` with random actions (the agent's cost is not included), and `objective_after_each_action`
(the greedy baseline's one-step lookahead), on CPU and on CUDA when present.
"""
import argparse, json, platform, time
import torch
from fitness_ppo.catalog import ACTION_DIM
from fitness_ppo.env import TrainingEnvironment
from fitness_ppo.state import synthetic_batch

def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()

def bench(num_envs, steps, device, lookahead=False):
    env = TrainingEnvironment(num_envs=num_envs, max_steps=steps + 10, device=device)
    env.reset(synthetic_batch(num_envs, seed=0, device=device))
    actions = torch.randint(0, ACTION_DIM, (steps + 10, num_envs), generator=torch.Generator().manual_seed(0)).to(device)
    work = (lambda a: env.objective_after_each_action()) if lookahead else env.step
    for a in actions[:10]: work(a)  # warm-up
    sync(device); start = time.perf_counter()
    for a in actions[10:]: work(a)
    sync(device); seconds = time.perf_counter() - start
    return {"num_envs": num_envs, "athlete_steps_per_s": round(num_envs * steps / seconds),
            "ms_per_call": round(1000 * seconds / steps, 4)}

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024, 4096])
    p.add_argument("--steps", type=int, default=200)
    args = p.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(), "results": {}}
    for d in devices:
        out["results"][d.type] = {"step": [bench(n, args.steps, d) for n in args.sizes],
                                  "lookahead": [bench(n, max(args.steps // 10, 5), d, lookahead=True) for n in args.sizes]}
        if d.type == "cuda": out["results"]["cuda"]["device_name"] = torch.cuda.get_device_name()
    print(json.dumps(out, indent=1))
