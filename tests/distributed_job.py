"""A small data-parallel job that tests/test_distributed.py runs under `torchrun --nproc_per_node=2` on CPU (gloo).

Usage: torchrun --standalone --nproc_per_node=2 tests/distributed_job.py OUT_DIR
Every rank writes OUT_DIR/rank{k}.pt; rank 0 also writes the checkpoint OUT_DIR/agent.pt. What each part checks is
said in tests/test_distributed.py. The settings shared with the single-process reference are in SETTINGS.
"""
import sys
from pathlib import Path
import torch
from fitness_ppo.distributed import all_gather_objects, init_distributed, map_sharded, shutdown_distributed
from fitness_ppo.env import TrainingEnvironment
from fitness_ppo.model import NetConfig
from fitness_ppo.optimize import optimize_weights
from fitness_ppo.ppo import EnhancedPPOAgent, Evaluation, Rollout
from fitness_ppo.state import synthetic_batch

TINY = NetConfig(feature_widths=(64, 64), shared_width=64, actor_widths=(64,), critic_widths=(64,),
                 predictor_widths=(32,))
# per rank: 32 athletes of 20-step episodes, rollouts of 2 steps (64 samples), minibatches of 64: two ranks make the
# job of one process with 64 athletes and minibatches of 128 (the same number of gradient steps). With these rates
# the small network learns within 16 rounds (normalised score about 0.87).
SETTINGS = dict(num_envs=32, max_steps=20, rounds=16, batch_size=64, rollout_steps=2, lr_actor=3e-3, lr_trunk=3e-4,
                epsilon=1.0, precision="fp32", eval_every=8)
FIXED_SAMPLES = 64  # the fixed batch of the one-step check: rank k takes its k-th half


def fixed_batch(agent: EnhancedPPOAgent, n: int = FIXED_SAMPLES):
    "A fixed batch of `n` samples (the same on every rank and in the reference): observations, actions, log-probs."
    g = torch.Generator().manual_seed(123)
    obs = synthetic_batch(n, seed=5)
    actions = torch.randint(0, agent.action_dim, (n,), generator=g)
    with torch.no_grad(): logits, values = agent.actor_critic.policy_value(obs)
    log_probs = logits.log_softmax(-1).gather(1, actions[:, None])[:, 0] + 0.1 * torch.randn(n, generator=g)
    advantages, returns = torch.randn(n, generator=g), values + torch.randn(n, generator=g)
    return obs, actions, log_probs, values, advantages, returns


def new_agent(**changes) -> EnhancedPPOAgent:
    s = {**SETTINGS, **changes}
    return EnhancedPPOAgent(config=TINY, device="cpu", seed=0, lr_actor=s["lr_actor"], lr_trunk=s["lr_trunk"],
                            epsilon=s["epsilon"], rollout_steps=s["rollout_steps"], batch_size=s["batch_size"],
                            precision=s["precision"])


def flat(net) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


if __name__ == "__main__":
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    world = init_distributed("cpu")
    assert world.distributed and world.backend == "gloo", world
    report = {}

    # 1. one gradient step on rank k's half of a fixed batch (one epoch, one minibatch per rank)
    agent = new_agent(batch_size=FIXED_SAMPLES // 2)
    obs, actions, log_probs, values, advantages, returns = fixed_batch(agent)
    half = slice(world.rank * FIXED_SAMPLES // 2, (world.rank + 1) * FIXED_SAMPLES // 2)
    t = lambda x: x[half][None]  # a rollout of one step of 32 athletes
    rollout = Rollout(t(obs), t(actions), t(log_probs), t(values), torch.zeros(1, 32), torch.zeros(1, 32), None, None)
    with agent.overridden(update_epochs=1): agent.update(rollout, t(advantages), t(returns))
    report["one_step"] = flat(agent.actor_critic)

    # 2. training: each rank its own athletes, rank 0 evaluates; the weights must end identical on every rank
    agent = new_agent()
    env = TrainingEnvironment(num_envs=SETTINGS["num_envs"], max_steps=SETTINGS["max_steps"])
    result = agent.learn(env, episodes=SETTINGS["rounds"] * SETTINGS["num_envs"] * world.world_size, progress=False,
                         evaluation=Evaluation(every=SETTINGS["eval_every"]))
    report.update(online=flat(agent.actor_critic), target=flat(agent.target_actor_critic),
                  episodes_done=agent.episodes_done, env_steps_done=agent.env_steps_done, epsilon=agent.epsilon,
                  stop_reason=result["stop_reason"], curve=result["curve"], best_score=result.get("best_score"))
    if world.is_main: agent.save_model(out / "agent.pt")

    # 3. a time budget reached on one rank only stops both, after the same update
    stopper = new_agent()
    budget = 0.01 if world.rank == 1 else 10**6
    r = stopper.learn(TrainingEnvironment(num_envs=8, max_steps=20), episodes=10**6, time_budget_s=budget,
                      evaluation=Evaluation(athletes=synthetic_batch(2, seed=1)), progress=False)
    report.update(budget_stop=r["stop_reason"], budget_steps=stopper.env_steps_done)

    # 4. sharded batch work: each rank its share, the results in input order on every rank
    report["sharded"] = map_sharded(lambda xs: [(x, world.rank) for x in xs], list(range(7)))
    athletes = synthetic_batch(5, seed=9)
    sharded = map_sharded(lambda xs: [r.cq_matrix for r in optimize_weights(agent, xs, steps=5)], athletes)
    report["optimize_sharded"] = torch.stack(sharded)
    report["ranks_seen"] = all_gather_objects(world.rank)
    torch.save(report, out / f"rank{world.rank}.pt")
    shutdown_distributed()
