"""Gymnasium interface throughput: athlete-steps per second of each way to step many athletes, and of SB3's PPO.

Prints one JSON object. Usage: python benchmarks/bench_gym.py [--sizes 8 64 256] [--steps 100] [--sb3-steps 32768]
For each environment (the design's, 50-step episodes; seasons of 56 days) and batch size, with random actions:
- `batched`: the batched environment's own `step` (torch in and out);
- `vector`: `fitness_ppo.gym`'s native vector environment (one batched step, NumPy in and out);
- `sync`: Gymnasium's `SyncVectorEnv` over single-athlete environments (a Python loop over athletes).
With `--sb3-steps N` (0 to skip), also Stable-Baselines3's PPO with its defaults training for N steps on 8 athletes,
fed by `sb3_vec_env` (one batched step) and by SB3's usual `DummyVecEnv` of single environments: training steps/s.
CPU only.
"""
import argparse, json, os, platform, time
import numpy as np
import torch
import gymnasium
from fitness_ppo.gym import SeasonEnv, SeasonVectorEnv, WeightsEnv, WeightsVectorEnv, sb3_vec_env

ENVS = {"weights": (WeightsEnv, WeightsVectorEnv, dict(max_steps=50)), "season": (SeasonEnv, SeasonVectorEnv, dict(days=56))}

def timed(step, actions) -> float:
    for a in actions[:5]: step(a)  # warm-up
    start = time.perf_counter()
    for a in actions[5:]: step(a)
    return time.perf_counter() - start

def bench(name: str, n: int, steps: int) -> dict:
    single, vector, settings = ENVS[name]
    venv = vector(n, autoreset_mode="SameStep", **settings)
    actions = np.random.default_rng(0).integers(0, venv.single_action_space.n, (steps + 5, n))
    out = {"num_envs": n}
    venv.reset(seed=0)
    batched = venv.env
    out["batched"] = n * steps / timed(lambda a: batched.step(torch.as_tensor(a)) if batched.t < batched.max_steps
                                       else batched.reset(batched.sample_athletes(n, 0)), actions)
    venv.reset(seed=0)
    out["vector"] = n * steps / timed(venv.step, actions)
    sync = gymnasium.vector.SyncVectorEnv([lambda: single(**settings) for _ in range(n)],
                                          autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)
    sync.reset(seed=0)
    out["sync"] = n * steps / timed(sync.step, actions)
    return {k: round(v) if k != "num_envs" else v for k, v in out.items()}

def bench_sb3(name: str, total: int, n: int = 8) -> dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    single, vector, settings = ENVS[name]
    out = {"num_envs": n, "total_steps": total}
    for way, make in (("sb3_vec_env", lambda: sb3_vec_env(vector(n, autoreset_mode="SameStep", **settings))),
                      ("DummyVecEnv", lambda: make_vec_env(single, n_envs=n, env_kwargs=settings, seed=0))):
        model = PPO("MlpPolicy", make(), seed=0, device="cpu")
        start = time.perf_counter()
        model.learn(total)
        out[way] = round(model.num_timesteps / (time.perf_counter() - start))
    return out

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 256])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--sb3-steps", type=int, default=32768)
    args = p.parse_args()
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
           "load_before": os.getloadavg()[0], "athlete_steps_per_s": {}}
    for name in ENVS:
        out["athlete_steps_per_s"][name] = [bench(name, n, args.steps) for n in args.sizes]
        if args.sb3_steps: out["athlete_steps_per_s"][name].append({"sb3_ppo_training": bench_sb3(name, args.sb3_steps)})
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))
