"""The environment registry's proof: a tiny environment registered in this file, and nowhere else, shows up in
`fitness-ppo train --help`, in `/train`'s OpenAPI schema and validation, in `gymnasium.make`, and trains (through the
registry's training call, the CLI and a `/train` job)."""
import time
import gymnasium, pytest, torch
from fastapi.testclient import TestClient
import fitness_ppo.gym  # noqa: F401 (Gymnasium ids follow the registry from here on)
from fitness_ppo.api import TrainRequest, create_app
from fitness_ppo.cli import _parser, main
from fitness_ppo.registry import ENVIRONMENTS, EnvParam, EnvSpec, env_spec, register_env, unregister_env
from fitness_ppo.season import SEASON_ACTION_DIM, SEASON_OBS_DIM

COIN_ID = "test_registry/Coin-v0"


class Coin:
    "A tiny `BatchedEnv`: two numbers in, three actions; reward 1 for the action `sign(first number) + 1`."
    obs_dim, action_dim = 2, 3

    def __init__(self, num_envs: int = 1, length: int = 3, device=None):
        self.num_envs, self.max_steps, self.device, self.t = num_envs, length, torch.device(device or "cpu"), None
        self.g = torch.Generator().manual_seed(0)

    def reset(self, athletes):
        self.x, self.t, self.r = torch.as_tensor(athletes, dtype=torch.float32).clone(), 0, torch.zeros(self.num_envs)
        return self.x.clone()

    def step(self, actions):
        self.r = (torch.as_tensor(actions) == self.x[:, 0].sign().long() + 1).float()
        self.t += 1
        self.x = torch.randn(self.num_envs, 2, generator=self.g)
        done = torch.full((self.num_envs,), self.t >= self.max_steps)
        return self.x.clone(), self.r, done, dict(truncated=done, score=self.r, t=self.t)

    def objective(self): return self.r
    def sample_athletes(self, n, seed): return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    def encode_athletes(self, athletes): return torch.as_tensor(athletes, dtype=torch.float32)
    def spawn(self, num_envs=None, max_steps=None): return Coin(num_envs or self.num_envs, max_steps or self.max_steps)


@pytest.fixture
def coin():
    "The coin environment, registered for one test (and removed after it)."
    spec = register_env(EnvSpec("coin", "guess the sign of a number (a test's environment)",
                                lambda num_envs, device=None, length=3: Coin(num_envs, length, device),
                                (EnvParam("length", "steps per episode", "steps", (1, 20), 3),), "length",
                                gym_id=COIN_ID))
    yield spec
    unregister_env("coin")


def test_in_train_help(coin):
    train = _parser()._subparsers._group_actions[0].choices["train"]
    text = " ".join(train.format_help().split())  # the help's lines wrap where the descriptions' lengths say
    assert "{weights,season,adaptive,coin}" in text and "guess the sign of a number" in text, text
    assert "--length LENGTH" in text and "(--env coin; default 3)" in text, text
    assert "coin" not in _train_help_without_registering(coin)


def _train_help_without_registering(spec) -> str:
    "The same help with the coin unregistered for a moment: it came from the registry, nothing else."
    unregister_env(spec.name)
    try: return _parser()._subparsers._group_actions[0].choices["train"].format_help()
    finally: register_env(spec)


def test_in_openapi_and_validation(coin, tmp_path):
    schema = create_app(model_dir=tmp_path).openapi()["components"]["schemas"]
    environment = schema["TrainRequest"]["properties"]["environment"]
    assert environment["enum"] == ["weights", "season", "adaptive", "coin"], environment
    assert "coin: guess the sign of a number" in environment["description"], environment
    assert TrainRequest(environment="coin", num_envs=4).episode_steps == 3
    with pytest.raises(ValueError, match="Input should be 'weights', 'season', 'adaptive' or 'coin'"):
        TrainRequest(environment="dice")


def test_gymnasium_make(coin):
    env = gymnasium.make(COIN_ID, length=2)
    obs, _ = env.reset(seed=1)
    assert obs.shape == (2,) and env.action_space.n == 3
    _, reward, terminated, truncated, _ = env.step(int(obs[0] > 0) * 2)
    assert reward == 1.0 and not (terminated or truncated)
    assert env.step(0)[3]  # the second of two steps: the end of the episode (a time limit)
    envs = gymnasium.make_vec(COIN_ID, num_envs=4)
    assert envs.reset(seed=0)[0].shape == (4, 2) and envs.env.max_steps == 3


def test_trains_through_the_registry(coin):
    agent, record = env_spec("coin").fit(coin.new_env(16), episodes=64, seed=1)
    assert record["episodes_completed"] == 64 and (agent.state_dim, agent.action_dim) == (2, 3)
    assert ENVIRONMENTS["coin"] is coin


def test_trains_from_the_cli(coin, tmp_path, capsys):
    code = main(["train", "--env", "coin", "--length", "2", "--num-envs", "8", "--episodes", "16", "--quiet",
                 "--device", "cpu", "--out", str(tmp_path / "coin.pt")])
    out = capsys.readouterr()
    assert code == 0 and "trained 16 episodes" in out.out and (tmp_path / "coin.pt").is_file(), out
    assert main(["train", "--env", "coin", "--days", "28", "--quiet", "--out", str(tmp_path / "x.pt")]) == 2
    assert "--days is a setting of --env season, not of --env coin" in capsys.readouterr().err


def _finished(client, r) -> dict:
    "The report of the `/train` job `r` started, once it has ended (within a minute)."
    assert r.status_code == 202, r.text
    for _ in range(600):
        report = client.get(f"/train/{r.json()['job_id']}").json()
        if report["status"] not in ("queued", "running"): return report
        time.sleep(0.1)
    raise AssertionError(f"the job did not end: {report}")


def test_trains_as_a_rest_job(coin, tmp_path):
    with TestClient(create_app(model_dir=tmp_path), base_url="http://localhost") as client:
        r = client.post("/train", json=dict(environment="coin", num_envs=8, episodes=16, time_budget_s=120))
        assert r.json()["environment"] == "coin", r.text
        report = _finished(client, r)
    assert report["status"] == "succeeded" and report["result"]["episodes_completed"] == 16, report


def test_rest_takes_its_own_parameters(coin, tmp_path):
    "`/train` takes coin's `length` in `env_params`: used by the job, checked against its bounds (a 422 naming them)."
    schema = create_app(model_dir=tmp_path).openapi()["components"]["schemas"]["TrainRequest"]["properties"]
    assert "coin: length (steps per episode, 1-20 steps, default 3)" in schema["env_params"]["description"], schema
    with TestClient(create_app(model_dir=tmp_path), base_url="http://localhost") as client:
        too_long = client.post("/train", json=dict(environment="coin", env_params=dict(length=21)))
        assert too_long.status_code == 422 and "length must be a whole number of steps in [1, 20], got 21" in \
            too_long.text, too_long.text
        report = _finished(client, client.post("/train", json=dict(
            environment="coin", env_params=dict(length=20), num_envs=8, episodes=16, time_budget_s=120)))
    # a 3-step episode (the default length) earns at most 3; 20 steps of even random guesses earn about 20 / 3
    assert report["status"] == "succeeded" and report["result"]["average_reward"] > 3, report


def test_the_adaptive_environment_is_registered(tmp_path, capsys):
    "`fitness_ppo.adaptive` registers through `ENV_MODULES`: the CLI trains it, Gymnasium makes it, /train takes it."
    assert list(ENVIRONMENTS)[:3] == ["weights", "season", "adaptive"]
    code = main(["train", "--env", "adaptive", "--days", "28", "--num-envs", "4", "--episodes", "8", "--quiet",
                 "--device", "cpu", "--out", str(tmp_path / "adaptive.pt")])
    out = capsys.readouterr()
    assert code == 0 and "trained 8 episodes" in out.out and (tmp_path / "adaptive.pt").is_file(), out
    env = gymnasium.make("fitness_ppo/AdaptiveSeason-v0", days=28)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (SEASON_OBS_DIM,) and env.action_space.n == SEASON_ACTION_DIM
    assert TrainRequest(environment="adaptive", env_params=dict(days=35)).episode_steps == 35
