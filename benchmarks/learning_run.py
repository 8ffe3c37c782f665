"""A learning run: train an agent for a wall-clock budget and print its learning curve as JSON.

The normalised score is measured on 64 held-out synthetic athletes (seed EVAL_SEED_OFFSET + agent seed, never used
in training), 50-step episodes, with the served (target) network, sampled and greedy.
Usage: python benchmarks/learning_run.py [--preset default|small|design] [--minutes 10] [--lr 1e-3] [--out run.pt]
       [--precision auto|fp32|bf16]
"""
import argparse, json, logging, sys
import torch
from fitness_ppo.env import TrainingEnvironment, normalised_score
from fitness_ppo.model import NetConfig
from fitness_ppo.ppo import EVAL_ATHLETES, EVAL_SEED_OFFSET, EnhancedPPOAgent

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--preset", choices=["default", "small", "design", "flat"], default="default")
p.add_argument("--minutes", type=float, default=10)
p.add_argument("--lr", type=float, default=None, help="actor (and trunk) learning rate; default: the agent's")
p.add_argument("--num-envs", type=int, default=256)
p.add_argument("--rollout-steps", type=int, default=5)
p.add_argument("--eval-every", type=int, default=2)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
p.add_argument("--out", default=None, help="save the trained agent here")
args = p.parse_args()

torch.set_num_threads(torch.get_num_threads())
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
config = {"default": NetConfig(), "small": NetConfig.small(), "design": NetConfig.design(),
          "flat": NetConfig(actor_head="flat")}[args.preset]  # flat: the design's head without its dropout
agent = EnhancedPPOAgent(config=config, device="cpu", seed=args.seed, precision=args.precision,
                         **({"lr_actor": args.lr} if args.lr else {}))
env = TrainingEnvironment(num_envs=args.num_envs, max_steps=50)
result = agent.train_optimized(env, episodes=10**9, time_budget_s=args.minutes * 60, rollout_steps=args.rollout_steps,
                               eval_every=args.eval_every, early_stop_patience=10**9, progress=False)
eval_x = env.sample_athletes(EVAL_ATHLETES, EVAL_SEED_OFFSET + args.seed)  # the held-out athletes of the evaluation
online = {mode: normalised_score(agent.evaluate_policy(env, eval_x, sample=mode == "sampled", net=agent.actor_critic),
                                 result["baselines"]) for mode in ("sampled", "greedy")}
if args.out: agent.save_model(args.out)
print(json.dumps(dict(preset=args.preset, lr=args.lr, precision=str(agent.amp_dtype or torch.float32), best_score=result["best_score"], online_net_at_end=online,
                      env_steps_per_s=round(agent.env_steps_done / result["training_time_seconds"]),
                      training_time_seconds=round(result["training_time_seconds"]), baselines=result["baselines"],
                      curve=[{k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.items()
                              if k in ("env_steps", "wall_s", "score", "greedy_score", "entropy", "approx_kl", "explained_variance", "cq_accuracy")}
                             for c in result["curve"]]), indent=None))
