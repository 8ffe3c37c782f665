"""Environment throughput: athlete-steps per second (slots x steps / s) for several batch sizes.

Prints one JSON object. Usage: python benchmarks/bench_env.py [--env design] [--sizes 1 64 1024 4096] [--steps 200]
Measures `step` with random actions (the agent's cost is not included), and, for environments that have it,
`objective_after_each_action` (the greedy baseline's one-step lookahead), on CPU and on CUDA when present.
Environments come from ENVIRONMENTS (a name -> factory registry: add another environment there).
"""
import argparse, json, platform, time
import torch
from fitness_ppo.env import TrainingEnvironment

# name -> factory(num_envs, max_steps, device): the environments the benchmark can step
ENVIRONMENTS = {"design": lambda num_envs, max_steps, device: TrainingEnvironment(num_envs, max_steps, device=device)}

def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()

def bench(env_name, num_envs, steps, device, lookahead=False):
    env = ENVIRONMENTS[env_name](num_envs, steps + 10, device)
    env.reset(env.sample_athletes(num_envs, 0))
    g = torch.Generator().manual_seed(0)
    actions = torch.randint(0, env.action_dim, (steps + 10, num_envs), generator=g).to(device)
    work = (lambda a: env.objective_after_each_action()) if lookahead else env.step
    for a in actions[:10]: work(a)  # warm-up
    sync(device); start = time.perf_counter()
    for a in actions[10:]: work(a)
    sync(device); seconds = time.perf_counter() - start
    return {"num_envs": num_envs, "athlete_steps_per_s": round(num_envs * steps / seconds),
            "ms_per_call": round(1000 * seconds / steps, 4)}

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", choices=list(ENVIRONMENTS), default="design")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 1024, 4096])
    p.add_argument("--steps", type=int, default=200)
    args = p.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
           "env": args.env, "results": {}}
    has_lookahead = hasattr(ENVIRONMENTS[args.env](1, 1, "cpu"), "objective_after_each_action")
    for d in devices:
        out["results"][d.type] = {"step": [bench(args.env, n, args.steps, d) for n in args.sizes]}
        if has_lookahead:
            out["results"][d.type]["lookahead"] = [bench(args.env, n, max(args.steps // 10, 5), d, lookahead=True)
                                                   for n in args.sizes]
        if d.type == "cuda": out["results"]["cuda"]["device_name"] = torch.cuda.get_device_name()
    print(json.dumps(out, indent=1))
