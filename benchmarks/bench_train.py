"""Training throughput: env-steps/s with updates, rollout athlete-steps/s, and achieved FLOP/s of the update and
the rollout as a fraction of a large fp32 matmul's FLOP/s measured in the same run.

Prints one JSON object. Usage: python benchmarks/bench_train.py [--preset default|small|design] [--num-envs 256]
FLOPs are counted with torch.utils.flop_counter (matrix products: the model FLOPs). On CUDA the figures are
given with mixed precision (AMP) on and off.
"""
import argparse, json, time
import torch
from torch.utils.flop_counter import FlopCounterMode
from fitness_ppo.env import TrainingEnvironment
from fitness_ppo.model import NetConfig
from fitness_ppo.gae import compute_gae
from fitness_ppo.ppo import EnhancedPPOAgent, Evaluation
from fitness_ppo.state import synthetic_batch

def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()

def timed(fn, device, repeat=3):
    "Best wall time of `repeat` calls (after one warm-up call), and the last result."
    out = fn(); best = float("inf")
    for _ in range(repeat):
        sync(device); start = time.perf_counter(); out = fn(); sync(device)
        best = min(best, time.perf_counter() - start)
    return best, out

def flops_of(fn):
    with FlopCounterMode(display=False) as counter: fn()
    return counter.get_total_flops()

def matmul_flops_per_s(device, n=4096):
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    seconds, _ = timed(lambda: a @ b, device, repeat=5)
    return 2 * n ** 3 / seconds

def bench(preset, num_envs, rollout_steps, batch_size, device, use_amp):
    config = {"default": NetConfig(), "small": NetConfig.small(), "design": NetConfig.design()}[preset]
    agent = EnhancedPPOAgent(config=config, device=device, seed=0, rollout_steps=rollout_steps, batch_size=batch_size,
                             precision="auto" if use_amp else "fp32")
    env = TrainingEnvironment(num_envs=num_envs, max_steps=10**6, device=device)
    obs = env.reset(synthetic_batch(num_envs, device=device))
    state = dict(obs=obs, prev=env.objective())
    def rollout():
        r, state["obs"], state["prev"] = agent.collect_rollout(env, state["obs"], rollout_steps, state["prev"])
        return r
    rollout_s, r = timed(rollout, device)
    advantages, returns = compute_gae(r.rewards, r.values, r.dones, r.last_value)
    update = lambda: agent.update(r, advantages, returns)
    update_s, _ = timed(update, device)
    rollout_flops, update_flops = flops_of(rollout), flops_of(update)
    steps = num_envs * rollout_steps
    train_env = TrainingEnvironment(num_envs=num_envs, max_steps=50, device=device)
    one_athlete = Evaluation(athletes=synthetic_batch(1, seed=1), every=10**6)  # evaluation's cost is not training's
    result = agent.learn(train_env, episodes=2 * num_envs, evaluation=one_athlete, progress=False)
    return dict(preset=preset, num_envs=num_envs, rollout_steps=rollout_steps, batch_size=batch_size, amp=agent.use_amp,
                train_env_steps_per_s=round(2 * num_envs * 50 / result["training_time_seconds"]),
                rollout_athlete_steps_per_s=round(steps / rollout_s),
                update_samples_per_s=round(steps * agent.update_epochs / update_s),
                rollout_gflop_per_s=round(rollout_flops / rollout_s / 1e9, 1),
                update_gflop_per_s=round(update_flops / update_s / 1e9, 1))

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=["default", "small", "design"], nargs="+", default=["default", "small"])
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--rollout-steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=512)
    args = p.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    out = dict(torch=torch.__version__, threads=torch.get_num_threads(), results=[])
    for device in devices:
        matmul = matmul_flops_per_s(device)
        out[f"{device.type}_matmul_gflop_per_s"] = round(matmul / 1e9, 1)
        for preset in args.preset:
            for amp in ([False, True] if device.type == "cuda" else [False]):
                row = bench(preset, args.num_envs, args.rollout_steps, args.batch_size, device, amp)
                row.update(device=device.type, update_fraction_of_matmul=round(row["update_gflop_per_s"] * 1e9 / matmul, 3),
                           rollout_fraction_of_matmul=round(row["rollout_gflop_per_s"] * 1e9 / matmul, 3))
                out["results"].append(row)
    print(json.dumps(out, indent=1))
