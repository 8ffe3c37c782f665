"""The REST service's OpenAPI schema states every constraint the service enforces.

A small schema-to-example builder makes requests from `/openapi.json` alone (no knowledge of the service): the
smallest valid request of each endpoint and one with every optional field, which the service must accept. Then
every constraint the schema states (type, range, length, enumeration, pattern, uniqueness, required and unknown
fields) is broken in turn, at every place it applies, and the service must refuse each request with 422.
"""
import copy, json, os, random, re, string, time
import pytest

if os.environ.get("CI") != "true":
    for module in ("fastapi", "httpx"):
        pytest.importorskip(module, reason='the [api] extra is missing (pip install -e ".[api]"); CI installs it')
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from fitness_ppo.api import create_app
from fitness_ppo.model import NetConfig
from fitness_ppo.ppo import EnhancedPPOAgent
from fitness_ppo.season import RESPONSE_BOUNDS, SeasonEnvironment, season_agent

MAX_GENERATED_ITEMS = 1000  # longer arrays (training_data's 100,000) are not built to break maxItems


def resolve(schema: dict, root: dict) -> dict:
    "`schema` with its `$ref` followed, and a nullable `anyOf` merged into its non-null branch (siblings kept)."
    while "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"): target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") != "null"]
        if len(branches) > 1:  # one of several types (`/season`'s rules: one object, or a list of one per athlete)
            assert {b.get("type") for b in branches} <= set(WRONG_TYPE) and "examples" in schema, schema
            return {**{k: v for k, v in schema.items() if k not in ("default", "title")}, "anyOf": branches}
        siblings = {k: v for k, v in schema.items() if k not in ("anyOf", "default", "title")}
        schema = {**resolve(branches[0], root), **siblings}
    return schema


def example(schema: dict, root: dict, full: bool = False):
    "A value valid under `schema`: its example, else its default, else one built from its constraints."
    schema = resolve(schema, root)
    if schema.get("examples"): return copy.deepcopy(schema["examples"][0])
    if schema.get("default") is not None: return copy.deepcopy(schema["default"])
    if "enum" in schema: return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        names = schema.get("properties", {}) if full else schema.get("required", [])
        return {n: example(schema["properties"][n], root, full) for n in names}
    if kind == "array":
        return [example(schema["items"], root, full) for _ in range(max(schema.get("minItems", 0), 1))]
    if kind in ("number", "integer"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + (1 if "exclusiveMinimum" in schema else 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 2) - (1 if "exclusiveMaximum" in schema else 0))
        value = (low + high) / 2
        return int(value) if kind == "integer" else value
    if kind == "string":
        assert "pattern" not in schema, f"a pattern needs an example: {schema}"
        return "x" * max(schema.get("minLength", 1), 1)
    if kind == "boolean": return True
    raise AssertionError(f"no example for {schema}")


WRONG_TYPE = {"number": "0.5", "integer": "1", "string": 5, "boolean": 1, "array": {}, "object": []}


def violations(schema: dict, value, root: dict, path=()):
    "(path, bad value, constraint) for every constraint `schema` states about `value` and the values inside it."
    schema = resolve(schema, root)
    if "anyOf" in schema:  # a value of none of the types; then the constraints of the branch `value` is of
        yield path, True, "type (none of anyOf)"
        kinds = {"object": dict, "array": list}
        yield from violations(next(b for b in schema["anyOf"] if isinstance(value, kinds.get(b["type"], ()))), value,
                              root, path)
        return
    kind = schema.get("type")
    if "contains" in schema: yield path, [0] * len(value), "contains"
    if kind in WRONG_TYPE: yield path, WRONG_TYPE[kind], "type"
    if kind == "integer": yield path, True, "type (a boolean is not an integer)"
    if kind == "number": yield path, True, "type (a boolean is not a number)"
    for key, bad in (("minimum", lambda b: b - 1), ("maximum", lambda b: b + 1), ("exclusiveMinimum", lambda b: b),
                     ("exclusiveMaximum", lambda b: b)):
        if key in schema: yield path, bad(schema[key]), key
    if "enum" in schema: yield path, "not-one-of-them", "enum"
    if "pattern" in schema:
        bad = "../not a match!"
        assert not re.search(schema["pattern"], bad)
        yield path, bad, "pattern"
    if "minLength" in schema and schema["minLength"] > 0: yield path, "", "minLength"
    if "maxLength" in schema: yield path, "x" * (schema["maxLength"] + 1), "maxLength"
    if kind == "array":
        if schema.get("minItems", 0) > 0: yield path, value[:schema["minItems"] - 1], "minItems"
        if schema.get("maxItems", MAX_GENERATED_ITEMS + 1) <= MAX_GENERATED_ITEMS:
            yield path, value + value[-1:] * (schema["maxItems"] + 1 - len(value)), "maxItems"
        if schema.get("uniqueItems") and value: yield path, value + value[:1], "uniqueItems"
        if value: yield from violations(schema["items"], value[0], root, (*path, 0))
    if kind == "object":
        for name in schema.get("required", []):
            yield path, {k: v for k, v in value.items() if k != name}, f"required {name}"
        if schema.get("additionalProperties") is False: yield path, {**value, "unexpected_field": 1}, "additionalProperties"
        for name, sub in schema.get("properties", {}).items():
            if name in value: yield from violations(sub, value[name], root, (*path, name))


def put(value, path, new):
    "A copy of `value` with `new` at `path`."
    if not path: return copy.deepcopy(new)
    out = copy.deepcopy(value)
    target = out
    for part in path[:-1]: target = target[part]
    target[path[-1]] = copy.deepcopy(new)
    return out


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schema")
    EnhancedPPOAgent(config=NetConfig.small(), device="cpu").save_model(tmp / "agent.pt")
    season_agent(SeasonEnvironment(days=28)).save_model(tmp / "season.pt")
    app = create_app(model_path=tmp / "agent.pt", model_dir=tmp / "models", device="cpu", max_training_seconds=5,
                     season_model_path=tmp / "season.pt")
    with TestClient(app, base_url="http://localhost") as c:
        yield c


def body_schemas(schema: dict) -> dict:
    "Each POST path's request body schema."
    return {path: ops["post"]["requestBody"]["content"]["application/json"]["schema"]
            for path, ops in schema["paths"].items() if "post" in ops}


def test_examples_from_the_schema_are_accepted(client):
    root = client.get("/openapi.json").json()
    bodies = body_schemas(root)
    assert sorted(bodies) == ["/fit", "/optimize", "/plan", "/season", "/train"]
    for full in (False, True):
        for path in ("/fit", "/optimize", "/plan", "/season", "/train"):
            body = example(bodies[path], root, full)
            if path == "/optimize": body["optimization_steps"] = 3  # keep it quick
            r = client.post(path, json=body)
            assert r.status_code in (200, 202), (path, full, r.text[:500])
            if path == "/train":  # let the job end: one at a time
                deadline = time.monotonic() + 60
                while client.get(f"/train/{r.json()['job_id']}").json()["status"] in ("queued", "running"):
                    assert time.monotonic() < deadline, "the training job did not end"
                    time.sleep(0.2)
    assert client.get("/catalog", params={"lang": example(
        root["paths"]["/catalog"]["get"]["parameters"][0]["schema"], root)}).status_code == 200


def test_every_constraint_in_the_schema_is_enforced(client):
    root = client.get("/openapi.json").json()
    tested = {}
    for path, schema in body_schemas(root).items():
        valid = example(schema, root, full=True)
        if path == "/optimize": valid["optimization_steps"] = 3
        for where, bad, constraint in violations(schema, valid, root):
            r = client.post(path, json=put(valid, where, bad))
            assert r.status_code == 422, (path, where, constraint, json.dumps(bad)[:200], r.status_code, r.text[:300])
            key = constraint.split(" ")[0]
            tested[key] = tested.get(key, 0) + 1
    lang = root["paths"]["/catalog"]["get"]["parameters"][0]["schema"]
    assert client.get("/catalog", params={"lang": "x" * (lang["maxLength"] + 1)}).status_code == 422
    # every kind of constraint the schema uses was broken at least once, and hundreds were tried in all
    assert set(tested) >= {"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "pattern",
                           "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "required",
                           "additionalProperties"}, tested
    assert sum(tested.values()) > 200, tested


def test_the_schema_states_the_service_limits(client):
    root = client.get("/openapi.json").json()
    schemas = root["components"]["schemas"]
    train = schemas["TrainRequest"]["properties"]
    assert "32768" in train["num_envs"]["description"] and "32768" in train["max_steps_per_episode"]["description"]
    assert train["batch_size"]["maximum"] == 4096 and train["save_path"]["pattern"].startswith("^")
    prior = resolve(schemas["OptimizeRequest"]["properties"]["qx_prior"], root)
    assert (prior["minItems"], prior["maxItems"], prior["items"]["minItems"], prior["items"]["maxItems"]) == (23, 23, 44, 44)
    assert prior["items"]["items"] == {"type": "number", "minimum": 0, "maximum": 1} and "sum" in prior["description"]
    season = schemas["SeasonRequest"]["properties"]
    assert season["athletes"]["maxItems"] == 1024 and "32768" in season["days"]["description"]
    assert (season["days"]["minimum"], season["days"]["maximum"]) == (28, 182)
    assert season["planner"]["enum"] == ["policy", "forecast", "textbook", "greedy", "rest"]
    tau_fat = resolve(resolve(schemas["SeasonAthlete"]["properties"]["response"], root)["properties"]["tau_fat"], root)
    assert (tau_fat["minimum"], tau_fat["maximum"]) == RESPONSE_BOUNDS["tau_fat"] and "under 0.5 times as long as fitness" in tau_fat["description"]
    assert resolve(schemas["TrainRequest"]["properties"]["environment"], root)["enum"] == ["weights", "season", "adaptive"]


CODE_LIKE = [f"{letter}{i:03d}" for letter in "CQX" for i in range(1000)]  # strings tried for a `pattern`


def random_value(schema: dict, root: dict, rng: random.Random):
    "A random value that `schema` allows (arrays short, optional fields sometimes left out)."
    schema = resolve(schema, root)
    if "enum" in schema: return rng.choice(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        required = schema.get("required", [])
        names = required + [n for n in schema.get("properties", {}) if n not in required and rng.random() < 0.5]
        return {n: random_value(schema["properties"][n], root, rng) for n in names}
    if kind == "array":
        low = schema.get("minItems", 0)
        n = rng.randint(low, min(schema.get("maxItems", low + 4), low + 4))
        if schema.get("uniqueItems"):
            out = []
            while len(out) < n:
                if (v := random_value(schema["items"], root, rng)) not in out: out.append(v)
            return out
        return [random_value(schema["items"], root, rng) for _ in range(n)]
    if kind in ("number", "integer"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1e6))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 1e6))
        if kind == "integer":
            return rng.randint(int(low) + ("exclusiveMinimum" in schema), int(high) - ("exclusiveMaximum" in schema))
        return rng.uniform(low, high)
    if kind == "string":
        if "pattern" in schema:
            matching = [c for c in CODE_LIKE if re.search(schema["pattern"], c)]
            assert matching, f"no generator for the pattern {schema['pattern']}"
            return rng.choice(matching)
        n = rng.randint(schema.get("minLength", 0), min(schema.get("maxLength", 12), 12))
        return "".join(rng.choice(string.ascii_letters + "é中 ") for _ in range(n))
    if kind == "boolean": return rng.random() < 0.5
    raise AssertionError(f"no random value for {schema}")


def test_plan_accepts_every_request_its_schema_allows(client):
    "Issue #17: a schema fuzzer's /plan requests were mostly refused (rows had to sum to 1, which no schema can say)."
    root = client.get("/openapi.json").json()
    schema = {**body_schemas(root)["/plan"], "components": root["components"]}
    validator, rng = Draft202012Validator(schema), random.Random(17)
    for i in range(25):
        body = random_value(schema, root, rng)
        validator.validate(body)  # the generator's own check: the body is valid under the schema
        r = client.post("/plan", json=body)
        assert r.status_code == 200, (i, r.text[:300])
        rows = r.json()["rows"]
        assert len(rows) == (body.get("top") or 44), (len(rows), body.get("top"))
    bad = {**random_value(schema, root, rng), "cq_matrix": [[0.0] * 23] * 93}  # the schema refuses it: so does /plan
    assert not validator.is_valid(bad) and client.post("/plan", json=bad).status_code == 422
