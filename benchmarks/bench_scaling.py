"""Data-parallel scaling: training env-steps/s of one process against `torchrun --nproc_per_node=P` on this machine,
with the same total athletes and the same cores.

Prints one JSON object. Usage: python benchmarks/bench_scaling.py [--procs 2] [--threads 2] [--num-envs 256]
                                                                  [--preset default] [--rounds 2] [--precision auto]
One process runs with `--threads` threads, `--num-envs` athletes and minibatches of `--batch-size`; the job runs P
ranks of threads/P threads, num_envs/P athletes and minibatches of batch_size/P each (gloo): the same work, the same
gradient steps (each averaging P ranks' minibatches), on the same cores. `scaling` is the job's env-steps/s over the
single process's. Each configuration trains one warm-up round, then `--rounds` rounds of 50-step episodes timed
(evaluation on one athlete: its cost is not training's). The 1-minute load average is printed with the figures.
"""
import argparse, json, os, shutil, subprocess, sys, time
from pathlib import Path
import torch

def worker(args):
    "Run inside each process (or the single one): train, and print the env-steps/s as JSON from rank 0."
    from fitness_ppo.distributed import init_distributed, shutdown_distributed
    from fitness_ppo.env import TrainingEnvironment
    from fitness_ppo.model import NetConfig
    from fitness_ppo.ppo import EnhancedPPOAgent, Evaluation
    torch.set_num_threads(args.threads)
    world = init_distributed("cpu")
    config = {"default": NetConfig, "small": NetConfig.small, "design": NetConfig.design}[args.preset]()
    agent = EnhancedPPOAgent(config=config, device="cpu", seed=0, lr_actor=1e-3, precision=args.precision,
                             batch_size=args.batch_size // world.world_size)
    env = TrainingEnvironment(num_envs=args.num_envs // world.world_size, max_steps=50)
    one = Evaluation(athletes=env.sample_athletes(1, 1), every=10**6)
    agent.learn(env, episodes=args.num_envs, evaluation=one, progress=False)  # warm-up round
    steps, start = agent.env_steps_done, time.perf_counter()
    agent.learn(env, episodes=args.rounds * args.num_envs, evaluation=one, progress=False)
    seconds = time.perf_counter() - start
    if world.is_main:
        print(json.dumps(dict(processes=world.world_size, threads_per_process=args.threads,
                              athletes_per_process=env.num_envs, env_steps_per_s=round((agent.env_steps_done - steps)
                                                                                       / seconds))), flush=True)
    shutdown_distributed()

def run(cmd, threads):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if out.returncode: raise RuntimeError(out.stdout[-2000:] + out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of the single process, in all")
    p.add_argument("--num-envs", type=int, default=256, help="athletes of a round, in all")
    p.add_argument("--batch-size", type=int, default=512, help="minibatch size of a gradient step, in all")
    p.add_argument("--preset", choices=["default", "small", "design"], default="default")
    p.add_argument("--precision", default="auto")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker: sys.exit(worker(args))
    common = ["--preset", args.preset, "--precision", args.precision, "--rounds", str(args.rounds),
              "--num-envs", str(args.num_envs), "--batch-size", str(args.batch_size), "--worker"]
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    load_before = os.getloadavg()[0]
    single = run([sys.executable, __file__, "--threads", str(args.threads), *common], args.threads)
    per_rank = max(1, args.threads // args.procs)
    job = run([torchrun, "--standalone", f"--nproc_per_node={args.procs}", __file__, "--threads", str(per_rank),
               *common], per_rank)
    print(json.dumps(dict(torch=torch.__version__, cpus=os.cpu_count(), preset=args.preset, precision=args.precision,
                          load_average_1min_before=load_before, single=single, data_parallel=job,
                          scaling=round(job["env_steps_per_s"] / single["env_steps_per_s"], 2),
                          load_average_1min_after=os.getloadavg()[0]), indent=1))
