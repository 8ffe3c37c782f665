"""The REST service's defences (issue #12), tested as deployed: `fitness-ppo serve` on 127.0.0.1, in its own
process (tests/servers.py), reached over real sockets.

One test per defence: bodies counted rather than trusted, lone surrogates refused everywhere, memory and disk
bounded over 20 jobs with 8 MiB bodies, training bounded in memory and time, values not echoed, strict types, the
checkpoint written inside the model directory even when a folder is swapped for a link during training, paths
shown relative to the model directory, only allowed Host names answered; and the JSON log lines (issue #13).
"""
import json, os, socket, sys, time
from datetime import datetime
from pathlib import Path
import pytest

if os.environ.get("CI") != "true":
    for module in ("fastapi", "uvicorn", "httpx"):
        pytest.importorskip(module, reason='the [api] extra is missing (pip install -e ".[api]"); CI installs it')
import httpx
from servers import free_port, running
from fitness_ppo.api import DEADLINE_SLACK_S, KEEP_CHECKPOINTS, MAX_ATHLETE_STEPS, MAX_BODY_BYTES
from fitness_ppo.model import NetConfig
from fitness_ppo.ppo import EnhancedPPOAgent

ATHLETE = dict(user_id="hardening", age=30, gender="M", fitness_level="intermediate",
               current_qualities=[i / 22 for i in range(23)], target_subjects=["C001", "C050"])
UNIFORM_CQ, UNIFORM_QX = [[1 / 23] * 23] * 93, [[1 / 44] * 44] * 23
TINY_JOB = dict(episodes=16, num_envs=8, max_steps_per_episode=5, time_budget_s=30, promote="always")
SECRET = "secret-athlete-4711"  # a user id that must never reach a log line


def serve(tmp: Path, *extra):
    "`fitness-ppo serve` of a small agent (outside the model directory) on a free port; yields (url, process)."
    EnhancedPPOAgent(config=NetConfig.small(), device="cpu").save_model(tmp / "agent.pt")
    port = free_port()
    cmd = [sys.executable, "-m", "fitness_ppo.cli", "serve", "--port", port, "--model", tmp / "agent.pt",
           "--model-dir", tmp / "models", "--device", "cpu", *extra]
    url = f"http://127.0.0.1:{port}"
    ready = lambda: httpx.get(f"{url}/health", timeout=2).json()["model_loaded"]
    return url, running(cmd, ready, tmp / "server.log", retry_on=(httpx.TransportError,), cwd=tmp,
                        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    "The server most tests share, logging JSON lines at INFO; yields (url, its folder)."
    tmp = tmp_path_factory.mktemp("hardening")
    url, context = serve(tmp, "--log-format", "json", "--log-level", "info")
    with context: yield url, tmp


def wait(url: str, job_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while (report := httpx.get(f"{url}/train/{job_id}", timeout=30).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"job {job_id} did not end in {timeout} s: {report}"
        time.sleep(0.1)
    return report


def post_json_text(url: str, path: str, text: str | bytes) -> httpx.Response:
    "POST a JSON body given as text (so that it may hold escapes such as \\udc80) or bytes."
    body = text.encode() if isinstance(text, str) else text
    return httpx.post(url + path, content=body, headers={"content-type": "application/json"}, timeout=60)


def raw_request(port: int, head: str, chunks=(), read_timeout: float = 30) -> int:
    "Send `head` and then `chunks` over a socket (stopping quietly if the server closes it); the status code."
    with socket.create_connection(("127.0.0.1", port), timeout=read_timeout) as s:
        s.sendall(head.encode())
        try:
            for chunk in chunks: s.sendall(chunk)
        except OSError: pass  # the server answered and closed: it did not read the rest
        answer = b""
        while b"\r\n" not in answer:
            data = s.recv(65536)
            if not data: break
            answer += data
    return int(answer.split(b" ")[1])


def test_1_body_size_counts_bytes_not_headers(server):
    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    mib = b"x" * 2**20
    chunked = [b"%x\r\n" % len(mib) + mib + b"\r\n"] * 20 + [b"0\r\n\r\n"]  # 20 MiB in chunks
    both = "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 10\r\n" \
           "Transfer-Encoding: chunked\r\n\r\n"
    for method, path in [("POST", "/optimize"), ("POST", "/train"), ("POST", "/plan"), ("GET", "/health"),
                         ("GET", "/catalog"), ("POST", "/no-such-route")]:
        assert raw_request(port, both.format(method, path), chunked) == 400, (method, path)
    no_length = "POST /optimize HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert raw_request(port, no_length, chunked) == 413  # chunks are counted as they arrive
    assert raw_request(port, "POST /optimize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\r\n") == 411
    too_long = f"POST /train HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    assert raw_request(port, too_long, [mib] * 9) == 413
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


def test_2_lone_surrogates_are_refused_and_health_stays_200(server):
    url, _ = server
    athlete = json.dumps(ATHLETE)
    bad = r'"\udc80"'
    bad_athlete = athlete.replace('"hardening"', bad)
    texts = [("/optimize", athlete.replace('"hardening"', bad)),                     # user_id
             ("/optimize", athlete.replace('"M"', bad)),                             # gender
             ("/optimize", athlete.replace('"intermediate"', bad)),                  # fitness_level
             ("/optimize", athlete.replace('"C050"', bad)),                          # a target subject
             ("/optimize", athlete[:-1] + f', {bad}: 1}}'),                          # a field name
             ("/optimize", athlete[:-1] + ', "performance_metrics": {"recent_improvement": 0.1, "injury_risk": 0.1, '
                                          f'"training_efficiency": 0.5, "consistency": 0.5, {bad}: 0.5}}}}'),
             ("/train", json.dumps(TINY_JOB)[:-1] + r', "save_path": "\udc80.pt"}'),
             ("/train", json.dumps(TINY_JOB)[:-1] + f', "training_data": [{bad_athlete}]}}'),
             ("/plan", json.dumps(dict(user_id="x", target_subjects=["C001"], current_qualities=[0.5] * 23,
                                       cq_matrix=UNIFORM_CQ, qx_matrix=UNIFORM_QX))[:-1] + f', "lang": {bad}}}'),
             ("/plan", json.dumps(dict(user_id="x", target_subjects=["C001"], current_qualities=[0.5] * 23,
                                       cq_matrix=UNIFORM_CQ, qx_matrix=UNIFORM_QX)).replace('"x"', bad))]
    for path, text in texts:
        assert r"\udc80" in text, text[:200]
        r = post_json_text(url, path, text)
        assert r.status_code == 422, (path, text[:200], r.status_code, r.text[:300])
    raw = athlete.encode().replace(b'"hardening"', b'"\xed\xb2\x80"')  # the same in UTF-8 bytes (invalid ones)
    assert post_json_text(url, "/optimize", raw).status_code == 422
    assert httpx.get(f"{url}/catalog?lang=%ED%B2%80", timeout=10).status_code == 200
    assert httpx.get(f"{url}/train/%ED%B2%80", timeout=10).status_code == 404
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    job = httpx.post(f"{url}/train", json=TINY_JOB, timeout=30).json()["job_id"]
    assert wait(url, job)["status"] == "succeeded"
    assert httpx.get(f"{url}/train/{job}", timeout=10).status_code == 200
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the server's memory from /proc")
def test_3_memory_and_checkpoints_stay_bounded_over_20_jobs(tmp_path):
    "The bounds documented in nbs/11_api.ipynb: RSS grows by at most 64 MiB from the 3rd to the 20th job (it grew"
    " 30 MiB per job), and at most KEEP_CHECKPOINTS job checkpoints stay (every job left one)."
    url, context = serve(tmp_path)
    athlete = {**ATHLETE, "current_qualities": [0.123456789] * 23, "subject_scores": [0.123456789] * 93,
               "performance_metrics": dict(recent_improvement=0.1, injury_risk=0.1, training_efficiency=0.5,
                                           consistency=0.5)}
    n = (MAX_BODY_BYTES - 1000) // (len(json.dumps(athlete)) + 2)
    body = json.dumps(dict(TINY_JOB, training_data=[athlete] * n)).encode()
    assert 0.99 * MAX_BODY_BYTES < len(body) <= MAX_BODY_BYTES  # 8 MiB of athletes
    with context as proc:
        rss, names = [rss_mib(proc.pid)], []
        for _ in range(20):
            r = post_json_text(url, "/train", body)
            assert r.status_code == 202, r.text[:300]
            report = wait(url, r.json()["job_id"])
            assert report["status"] == "succeeded", report
            names.append(report["result"]["model_path"])
            rss.append(rss_mib(proc.pid))
        files = sorted(p.name for p in (tmp_path / "models").iterdir())
    print(json.dumps(dict(rss_mib=[round(x) for x in rss], files=len(files))))
    assert rss[20] - rss[3] < 64, [round(x) for x in rss]
    assert files == sorted(names[-KEEP_CHECKPOINTS:]), (files, names)


def test_4_training_requests_are_bounded_in_memory_and_time(server):
    url, _ = server
    r = httpx.post(f"{url}/train", json=dict(num_envs=1024, max_steps_per_episode=1000, time_budget_s=1), timeout=30)
    assert r.status_code == 422 and f"the limit is {MAX_ATHLETE_STEPS}" in r.text, r.text
    for shape, budget in [((1024, 32), 1.0), ((32, 1000), 1.0), ((64, 20), 4.0)]:
        start = time.monotonic()
        job = httpx.post(f"{url}/train", timeout=30, json=dict(num_envs=shape[0], max_steps_per_episode=shape[1],
                                                               episodes=10**6, time_budget_s=budget))
        assert job.status_code == 202, job.text
        report = wait(url, job.json()["job_id"])
        started, finished = (datetime.fromisoformat(report[k]) for k in ("started_at", "finished_at"))
        wall = (finished - started).total_seconds()
        if report["status"] == "failed":  # refused at once (the least it can do would overrun), or stopped before
            # its first episode ended: it trained nothing, and says so
            assert ("cannot end within its time budget" in report["error"] or "trained 0 complete episodes" in
                    report["error"]) and wall < budget + DEADLINE_SLACK_S + 3, report
        else:  # ran, and stopped in time
            assert report["status"] == "succeeded" and wall < budget + DEADLINE_SLACK_S + 3, (wall, report)
        assert time.monotonic() - start < 60


def test_8_values_are_not_echoed(server):
    url, _ = server
    for path, body in [("/optimize", {**ATHLETE, "gender": "M" * (4 * 2**20)}),
                       ("/optimize", {**ATHLETE, "target_subjects": ["C001"] * 100_000}),
                       ("/optimize", {**ATHLETE, "k" * 2**20: 1}),
                       ("/train", dict(training_data=[{**ATHLETE, "age": 0}] * 5000))]:
        r = httpx.post(url + path, json=body, timeout=60)
        assert r.status_code == 422 and len(r.content) < 8000, (path, r.status_code, len(r.content))


def test_9_types_are_strict(server):
    url, _ = server
    for path, body in [("/optimize", {**ATHLETE, "age": True}), ("/optimize", {**ATHLETE, "age": "34"}),
                       ("/optimize", {**ATHLETE, "age": 34.0}), ("/optimize", {**ATHLETE, "optimization_steps": "5"}),
                       ("/optimize", {**ATHLETE, "current_qualities": [True] * 23}),
                       ("/train", {**TINY_JOB, "shuffle_data": 1}), ("/train", {**TINY_JOB, "episodes": "16"})]:
        r = httpx.post(url + path, json=body, timeout=30)
        assert r.status_code == 422, (body, r.text)
    assert httpx.post(f"{url}/optimize", json={**ATHLETE, "optimization_steps": 3}, timeout=60).status_code == 200


def test_10_a_folder_swapped_for_a_link_during_training_is_not_followed(server):
    url, tmp = server
    runs, outside = tmp / "models" / "runs", tmp / "outside"
    runs.mkdir(parents=True, exist_ok=True); outside.mkdir(exist_ok=True)
    served = httpx.get(f"{url}/health", timeout=10).json()["model_path"]
    r = httpx.post(f"{url}/train", timeout=30, json=dict(episodes=10**6, num_envs=16, max_steps_per_episode=10,
                                                         time_budget_s=6, save_path="runs/swapped.pt"))
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    while httpx.get(f"{url}/train/{job}", timeout=10).json()["status"] == "queued": time.sleep(0.05)
    runs.rmdir(); runs.symlink_to(outside)  # while the job trains
    report = wait(url, job)
    assert report["status"] == "failed" and "runs in the model directory is no longer a folder" in report["error"]
    assert list(outside.iterdir()) == [] and str(tmp) not in json.dumps(report), report
    assert httpx.get(f"{url}/health", timeout=10).json()["model_path"] == served  # the served model stayed
    runs.unlink()


def test_11_paths_are_relative_to_the_model_directory(server):
    url, tmp = server
    report = wait(url, httpx.post(f"{url}/train", json={**TINY_JOB, "save_path": "named/model.pth"},
                                  timeout=30).json()["job_id"])
    health = httpx.get(f"{url}/health", timeout=10).json()
    assert report["result"]["model_path"] == health["model_path"] == "named/model.pth", (report, health)
    assert (tmp / "models" / "named" / "model.pth").is_file() and "now serving named/model.pth" in report["result"]["message"]
    assert str(tmp) not in json.dumps(report) + json.dumps(health)


def test_13_only_allowed_hosts_are_answered(server):
    url, _ = server
    port = url.rsplit(":", 1)[1]
    for host, status in [("localhost", 200), (f"127.0.0.1:{port}", 200), (f"[::1]:{port}", 200),
                         ("rebound.example.com", 400), (f"evil.example:{port}", 400)]:
        assert httpx.get(f"{url}/health", headers={"host": host}, timeout=10).status_code == status, host


def test_health_reports_memory(server):
    url, _ = server
    memory = httpx.get(f"{url}/health", timeout=10).json()["memory"]
    assert memory["rss_bytes"] > 50 * 2**20 and memory["peak_rss_bytes"] >= memory["rss_bytes"]
    assert memory["cuda"] is None  # served on the CPU


def test_json_logs_have_timings_and_no_athlete_data(server):
    url, tmp = server
    assert httpx.post(f"{url}/optimize", json={**ATHLETE, "user_id": SECRET, "optimization_steps": 3},
                      timeout=60).status_code == 200
    job = httpx.post(f"{url}/train", json={**TINY_JOB, "training_data": [{**ATHLETE, "user_id": SECRET}]}, timeout=30)
    assert wait(url, job.json()["job_id"])["status"] == "succeeded"
    time.sleep(0.5)  # the log line of the last request
    lines = [json.loads(line) for line in (tmp / "server.log").read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    events = {}
    for line in lines: events.setdefault(line.get("event"), []).append(line)
    optimize = [r for r in events["request"] if r["path"] == "/optimize" and r["status"] == 200]
    assert optimize and all(r["method"] == "POST" and r["duration_ms"] > 0 for r in optimize)
    assert any(j["status"] == "succeeded" and j["duration_s"] > 0 for j in events["training_job"])
    assert all(b["duration_s"] > 0 and b["requests"] >= 1 for b in events["optimize_batch"])
    text = json.dumps(lines)
    for athlete_data in (SECRET, "user_id", "current_qualities", "target_subjects", "subject_scores",
                         "performance_metrics", "C050"):
        assert athlete_data not in text, athlete_data


def test_14_small_chunked_bodies_are_read_and_unreadable_bodies_say_why(server):
    "Issue #17, probe 5: a chunked body was refused with 411 whatever its size; unreadable JSON got a bare 400."
    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps({**ATHLETE, "optimization_steps": 3}).encode()
    head = "POST /optimize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunks = [b"%x\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100]) for i in range(0, len(body), 100)]
    assert raw_request(port, head, chunks + [b"0\r\n\r\n"], read_timeout=60) == 200
    for content, message in [(b"[" * 100_000 + b"]" * 100_000, "nests arrays or objects too deeply"),
                             (b'{"user_id": "caf\xe9"}', "not UTF-8 text (byte 0xe9 at position 16"),
                             (b'{"age": ' + b"9" * 5001 + b"}", "a number in the body has more than 4300 digits")]:
        r = post_json_text(url, "/optimize", content)
        assert r.status_code == 400 and message in r.json()["detail"], (r.status_code, r.text[:300])
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


def test_15_a_busy_train_says_when_to_retry_and_a_job_can_be_cancelled(server):
    "Issue #17, probes 1 and 5: a busy /train answered 409 without Retry-After, and no job could be cancelled."
    url, _ = server
    served = httpx.get(f"{url}/health", timeout=10).json()["model_path"]
    long_job = dict(episodes=10**6, num_envs=8, max_steps_per_episode=10, time_budget_s=120, save_path="long.pt")
    r = httpx.post(f"{url}/train", json=long_job, timeout=30)
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    busy = httpx.post(f"{url}/train", json=TINY_JOB, timeout=30)
    assert busy.status_code == 429 and 1 <= int(busy.headers["retry-after"]) <= 120, (busy.status_code, busy.headers)
    while httpx.get(f"{url}/train/{job}", timeout=10).json()["progress"]["episodes_done"] < 8: time.sleep(0.1)
    start = time.monotonic()
    cancel = httpx.delete(f"{url}/train/{job}", timeout=10)
    assert cancel.status_code == 202 and cancel.json()["cancel_requested"], cancel.text
    report = wait(url, job, timeout=30)
    assert report["status"] == "cancelled" and time.monotonic() - start < 10, report
    assert httpx.get(f"{url}/health", timeout=10).json()["model_path"] == served
    assert httpx.delete(f"{url}/train/{job}", timeout=10).status_code == 409
    assert httpx.delete(f"{url}/train/no-such-job", timeout=10).status_code == 404


def test_16_a_job_is_served_only_if_it_scores_at_least_the_served_policy(server):
    "Issue #17: a job with learning rate 1.0 replaced the served policy (it scored -1.89); season budgets overran."
    url, _ = server
    served = httpx.get(f"{url}/health", timeout=10).json()["model_path"]
    report = wait(url, httpx.post(f"{url}/train", json=dict(TINY_JOB, learning_rate=1.0, promote="if_better"),
                                  timeout=30).json()["job_id"])
    result = report["result"]
    assert report["status"] == "succeeded" and None not in (result["new_score"], result["served_score"]), report
    assert result["promoted"] == (result["new_score"] >= result["served_score"]), result
    assert f"{result['new_score']:.3f}" in result["message"] and f"{result['served_score']:.3f}" in result["message"]
    now = httpx.get(f"{url}/health", timeout=10).json()["model_path"]
    assert now == (result["model_path"] if result["promoted"] else served), (now, result)
    start = time.monotonic()  # a season job whose start-up baselines alone overrun its budget: refused at once
    season = dict(environment="season", days=182, num_envs=8, episodes=64, time_budget_s=1)
    report = wait(url, httpx.post(f"{url}/train", json=season, timeout=30).json()["job_id"])
    assert report["status"] == "failed" and "cannot end within its time budget of 1 s" in report["error"], report
    assert time.monotonic() - start < 15 and report["result"]["promoted"] is False
    assert httpx.get(f"{url}/health", timeout=10).json()["season_model_loaded"] is False
