"""The trainer knows no environment (issue 18): the season network has no CQ/QX heads, old season checkpoints still
load, a head's checkpoint names the module that registers it, lower modules name no upper one, agents leave torch's
global generator alone, and `code_label` lives in the catalogue (still importable from `fitness_ppo.optimize`)."""
import inspect, logging, subprocess, sys
from dataclasses import replace
import torch
import fitness_ppo.catalog, fitness_ppo.env, fitness_ppo.gae, fitness_ppo.layers, fitness_ppo.model, fitness_ppo.ppo
import fitness_ppo.state
from fitness_ppo.model import EnhancedActorCritic
from fitness_ppo.ppo import EnhancedPPOAgent
from fitness_ppo.season import SEASON_ACTION_DIM, SEASON_NET, SEASON_OBS_DIM, SeasonEnvironment, season_agent

SEASON_HEAD_PARAMETERS = 221_583     # what the CQ/QX heads added before (12e checks the network's own count)


def count(net): return sum(p.numel() for p in net.parameters())


SEASON_PARAMETERS = count(EnhancedActorCritic(SEASON_OBS_DIM, SEASON_ACTION_DIM, SEASON_NET))  # trunk, actor, critic


def test_season_agent_has_no_matrix_heads():
    agent = season_agent(SeasonEnvironment(days=28))
    assert [n for n, _ in agent.actor_critic.named_parameters() if "predictor" in n] == []
    assert (agent.actor_critic.has_matrix_heads, agent.matrix_optimizer) == (False, None)
    assert count(agent.actor_critic) == SEASON_PARAMETERS
    assert SEASON_NET.matrix_heads is False  # the preset itself asks for none
    with_heads = EnhancedActorCritic(SEASON_OBS_DIM, SEASON_ACTION_DIM, replace(SEASON_NET, matrix_heads=True))  # as before
    assert count(with_heads) == SEASON_PARAMETERS + SEASON_HEAD_PARAMETERS
    assert repr(agent).startswith(f"EnhancedPPOAgent(state_dim={SEASON_OBS_DIM}, action_dim={SEASON_ACTION_DIM}, actor_head='season', "
                                  f"matrix_heads=False, parameters={SEASON_PARAMETERS:,}")
    assert repr(SeasonEnvironment(days=28)) == (f"SeasonEnvironment(num_envs=1, max_steps=28, obs_dim={SEASON_OBS_DIM}, "
                                                f"action_dim={SEASON_ACTION_DIM}, device=cpu, t=None)")


def test_old_season_checkpoint_loads_without_its_untrained_heads(tmp_path, caplog):
    env = SeasonEnvironment(num_envs=8, days=28)
    old = EnhancedPPOAgent(SEASON_OBS_DIM, SEASON_ACTION_DIM, replace(SEASON_NET, matrix_heads=True), seed=1)  # as before
    assert old.actor_critic.has_matrix_heads  # the old network had head weights (never trained)
    old.save_model(tmp_path / "season.pt")
    ckpt = torch.load(tmp_path / "season.pt", weights_only=True)
    ckpt["net_config"].pop("matrix_heads"); ckpt.pop("action_head_module")  # as written before this change
    torch.save(ckpt, tmp_path / "old.pt")
    with caplog.at_level(logging.INFO, logger="fitness_ppo"):
        loaded = EnhancedPPOAgent.from_checkpoint(tmp_path / "old.pt")
    assert "CQ/QX head weights were never trained: ignored" in caplog.text  # the note
    assert (loaded.actor_critic.has_matrix_heads, count(loaded.actor_critic)) == (False, SEASON_PARAMETERS)
    athletes = env.sample_athletes(8, 5)
    assert loaded.evaluate_policy(env, athletes) == old.evaluate_policy(env, athletes)


def test_checkpoint_names_the_module_of_its_actor_head(tmp_path):
    season_agent(SeasonEnvironment(days=28)).save_model(tmp_path / "season.pt")
    assert torch.load(tmp_path / "season.pt", weights_only=True)["action_head_module"] == "fitness_ppo.season_policy"
    code = ("from fitness_ppo.ppo import EnhancedPPOAgent\n"
            f"try: EnhancedPPOAgent.from_checkpoint({str(tmp_path / 'season.pt')!r})\n"
            "except ValueError as e: print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "got 'season': import fitness_ppo.season_policy first" in out.stdout, out.stdout + out.stderr


def test_lower_modules_name_no_upper_module():
    upper = ("season", "optimize", "api", "cli", "widgets", "gym", "plots")
    for module in (fitness_ppo.catalog, fitness_ppo.state, fitness_ppo.env, fitness_ppo.layers, fitness_ppo.model,
                   fitness_ppo.gae, fitness_ppo.ppo):
        source = inspect.getsource(module)
        named = [u for u in upper if f"fitness_ppo.{u}" in source or f"from .{u} import" in source]
        assert named == [], (module.__name__, named)


def test_building_agents_leaves_the_global_generator_alone():
    state = torch.random.get_rng_state()
    a, b = season_agent(seed=3), season_agent(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p, q in zip(a.actor_critic.parameters(), b.actor_critic.parameters()): assert torch.equal(p, q)


def test_code_label_lives_in_the_catalogue():
    from fitness_ppo.optimize import code_label as old_home
    assert old_home is fitness_ppo.catalog.code_label  # importable from optimize, documented in catalog
