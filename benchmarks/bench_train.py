"""Training throughput: env-steps/s of `learn`, the rollout's and the update's achieved FLOP/s as fractions of a
matrix product's FLOP/s in the same precision, and the ratio to the design's own trainer, measured in one run.

Prints one JSON object. Usage:
    python benchmarks/bench_train.py [--env design] [--preset design default] [--precision fp32 bf16]
                                     [--num-envs 256] [--threads 2] [--no-reference]
Environments come from ENVIRONMENTS (a name -> factory registry: add another environment there). Presets are network
sizes (`NetConfig`); on an environment other than the design's, every preset uses the flat actor head.
FLOPs are counted with torch.utils.flop_counter (matrix products: the model's FLOPs). The reference for the
fractions is the faster of a (256 x 1024) @ (1024 x 1024) product (the network's widest layer at batch 256) and a
2048^3 product, in the precision of the row, measured just before the row. Times are the best of several calls. When the design's literal trainer is found
(../shared/reference/design_literal.py beside the repository, or /work/shared/reference), its `bench` runs in the
same run and `ratio_to_design_literal` divides our training env-steps/s by its own; without it that is omitted.
Other processes on the machine change the figures: the 1-minute load average before and after is printed.
"""
import argparse, json, os, platform, subprocess, sys, time
from pathlib import Path
import torch
from torch.utils.flop_counter import FlopCounterMode
from fitness_ppo.env import TrainingEnvironment
from fitness_ppo.gae import compute_gae
from fitness_ppo.model import NetConfig
from fitness_ppo.ppo import EnhancedPPOAgent, Evaluation, resolve_precision

# name -> factory(num_envs, max_steps, device): the environments the benchmark can train on
ENVIRONMENTS = {"design": lambda num_envs, max_steps, device: TrainingEnvironment(num_envs, max_steps, device=device)}
PRESETS = {"default": NetConfig, "small": NetConfig.small, "design": NetConfig.design}
REFERENCE = [Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "design_literal.py",
             Path("/work/shared/reference/design_literal.py")]
EPISODE_STEPS = 50  # steps of each training episode (the evidence run's)

def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()

def best_time(fn, device, repeat=5):
    "Best wall time of `repeat` calls after one warm-up call (the least disturbed by other processes)."
    fn(); best = float("inf")
    for _ in range(repeat):
        sync(device); start = time.perf_counter(); fn(); sync(device)
        best = min(best, time.perf_counter() - start)
    return best

def flops_of(fn):
    with FlopCounterMode(display=False) as counter: fn()
    return counter.get_total_flops()

def matmul_flops_per_s(device, dtype, m, k, n, repeat=20):
    a, b = torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype)
    return 2 * m * k * n / best_time(lambda: a @ b, device, repeat)

def config_for(env_name, preset):
    config = PRESETS[preset]()
    if env_name != "design": config = NetConfig(**{**config.__dict__, "actor_head": "flat"})
    return config

def bench(env_name, preset, precision, num_envs, rollout_steps, batch_size, device, train_rounds):
    make_env = ENVIRONMENTS[env_name]
    env = make_env(num_envs, 10**6, device)
    agent = EnhancedPPOAgent.for_env(env, config_for(env_name, preset), seed=0, rollout_steps=rollout_steps,
                                     batch_size=batch_size, precision=precision)
    state = dict(obs=env.reset(env.sample_athletes(num_envs, 0)))
    state["prev"] = env.objective()
    def rollout():
        r, state["obs"], state["prev"] = agent.collect_rollout(env, state["obs"], rollout_steps, state["prev"])
        return r
    rollout_s = best_time(rollout, device)
    r = rollout()
    advantages, returns = compute_gae(r.rewards, r.values, r.dones, r.last_value)
    update = lambda: agent.update(r, advantages, returns)
    update_s = best_time(update, device, repeat=5)
    rollout_flops, update_flops = flops_of(rollout), flops_of(update)
    steps = num_envs * rollout_steps
    # training as `learn` runs it (head fitting included); a one-athlete evaluation: its cost is not training's
    train_env = make_env(num_envs, EPISODE_STEPS, device)
    one_athlete = Evaluation(athletes=train_env.sample_athletes(1, 1), every=10**6)
    agent.learn(train_env, episodes=num_envs, evaluation=one_athlete, progress=False)  # warm-up round
    start_steps = agent.env_steps_done
    result = agent.learn(train_env, episodes=train_rounds * num_envs, evaluation=one_athlete, progress=False)
    return dict(env=env_name, preset=preset, precision=precision, num_envs=num_envs, rollout_steps=rollout_steps,
                batch_size=batch_size, train_env_steps_per_s=round((agent.env_steps_done - start_steps)
                                                                   / result["training_time_seconds"]),
                rollout_athlete_steps_per_s=round(steps / rollout_s),
                update_samples_per_s=round(steps * agent.ppo_config.update_epochs / update_s),
                rollout_gflop_per_s=round(rollout_flops / rollout_s / 1e9, 1),
                update_gflop_per_s=round(update_flops / update_s / 1e9, 1))

def design_literal(threads: int, episodes: int, max_steps: int):
    "The design's own trainer's bench, run as a subprocess (its env-steps/s), or None when it is not found."
    script = next((p for p in REFERENCE if p.is_file()), None)
    if script is None: return None
    out = subprocess.run([sys.executable, str(script), "bench", "--episodes", str(episodes), "--max-steps",
                          str(max_steps), "--threads", str(threads)], capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    if out.returncode: return {"error": out.stderr[-500:]}
    r = json.loads(out.stdout)
    return {k: r[k] for k in ("env_steps_per_s", "total_env_steps", "train_wall_s", "param_count")} | {"script": str(script)}

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", choices=list(ENVIRONMENTS), nargs="+", default=["design"])
    p.add_argument("--preset", choices=list(PRESETS), nargs="+", default=["design", "default"])
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16", "auto"], nargs="+", default=None,
                   help="default: fp32 and bf16 on the CPU; fp32, fp16 and bf16 on CUDA")
    p.add_argument("--num-envs", type=int, default=256)
    p.add_argument("--rollout-steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--train-rounds", type=int, default=2, help="rounds of 50-step episodes timed in `learn`")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--no-reference", action="store_true", help="skip the design's literal trainer")
    p.add_argument("--reference-episodes", type=int, default=3)
    p.add_argument("--device", choices=["cpu", "cuda"], nargs="+", default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device(d) for d in (args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))]
    out = dict(torch=torch.__version__, threads=args.threads, cpus=os.cpu_count(), machine=platform.machine(),
               load_average_1min_before=os.getloadavg()[0], results=[])
    if not args.no_reference:
        out["design_literal"] = design_literal(args.threads, args.reference_episodes, 100)
    for device in devices:
        precisions = args.precision or (["fp32", "fp16", "bf16"] if device.type == "cuda" else ["fp32", "bf16"])
        shapes = {f"{args.num_envs}x1024x1024": (args.num_envs, 1024, 1024), "2048x2048x2048": (2048,) * 3}
        for env_name in args.env:
            for preset in args.preset:
                for precision in precisions:
                    # the matrix products are measured just before each row: other processes' load changes
                    dtype = resolve_precision(precision, device) or torch.float32
                    rates = {name: matmul_flops_per_s(device, dtype, *shape) for name, shape in shapes.items()}
                    matmul = max(rates.values())  # the fractions are of the faster of the two
                    row = bench(env_name, preset, precision, args.num_envs, args.rollout_steps, args.batch_size,
                                device, args.train_rounds)
                    row.update(device=device.type, matmul_gflop_per_s={k: round(v / 1e9, 1) for k, v in rates.items()},
                               rollout_fraction_of_matmul=round(row["rollout_gflop_per_s"] * 1e9 / matmul, 3),
                               update_fraction_of_matmul=round(row["update_gflop_per_s"] * 1e9 / matmul, 3))
                    reference = out.get("design_literal") or {}
                    if "env_steps_per_s" in reference:
                        row["ratio_to_design_literal"] = round(row["train_env_steps_per_s"]
                                                               / reference["env_steps_per_s"], 1)
                    out["results"].append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    out["load_average_1min_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))
