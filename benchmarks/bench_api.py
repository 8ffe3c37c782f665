"""The REST service measured on loopback, in its own uvicorn process; prints one JSON object.

Three measurements (pick with --measure, default `optimize`):

- `optimize`: `POST /optimize` latency (p50, p99) and throughput for 1 and 16 concurrent clients, on CPU. The
  server batches concurrent requests; the mean batch size comes from its /health counters.
- `jobs`: the server's resident memory (from /proc/<pid>/statm) and the model directory (files, MiB) after each
  of `--jobs` training jobs whose requests carry `--body-mib` MiB of training_data (tiny trainings: the bodies are
  what is measured), and how long each job's request took.
- `budget`: how far training jobs end past their `time_budget_s`, for request shapes `--shapes` (num_envs x
  max_steps_per_episode), each training a copy of the served (untrained) agent of the chosen network: the job's
  wall time from start to finish, its status, and its error when the service refused to start it.

Usage: python benchmarks/bench_api.py [--measure optimize|jobs|budget] [--net design|default|small] ...
Starts a real uvicorn server on 127.0.0.1 (a free port) serving an untrained agent of the chosen network size (the
cost of a request does not depend on the weights) and stops it at the end. Other processes on the machine change
the figures: the 1-minute load average at the end is printed with them.
"""
import argparse, json, os, platform, socket, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
import httpx
import torch
from fitness_ppo.model import NetConfig
from fitness_ppo.ppo import EnhancedPPOAgent

ATHLETE = dict(user_id="bench", age=30, gender="F", fitness_level="intermediate",
               current_qualities=[i / 22 for i in range(23)], target_subjects=["C003", "C017"])
NETS = {"design": NetConfig.design, "default": NetConfig, "small": NetConfig.small}


def start_server(log: Path, ready: str = "model_loaded", **variables) -> tuple[subprocess.Popen, str]:
    "uvicorn serving fitness_ppo.api:app on a free port (FITNESS_PPO_<NAME> `variables`); up once /health has `ready`."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    env = {**os.environ, "FITNESS_PPO_DEVICE": "cpu", "OMP_WAIT_POLICY": "PASSIVE",
           **{f"FITNESS_PPO_{k.upper()}": str(v) for k, v in variables.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "fitness_ppo.api:app", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}", time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=2).json()[ready]: return proc, url
        except httpx.TransportError: time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the server did not start:\n{log.read_text()}")


def client(url: str, body: dict, n: int, deadline: float) -> list[float]:
    "Send up to `n` requests one after another; the latency of each, in seconds."
    latencies = []
    with httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(n):
            if time.time() > deadline: break
            start = time.perf_counter()
            r = c.post("/optimize", json=body)
            r.raise_for_status()
            latencies.append(time.perf_counter() - start)
    return latencies


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def run(url: str, clients: int, requests: int, body: dict, timeout: float) -> dict:
    counters = lambda: httpx.get(f"{url}/health", timeout=10).json()["optimizations"]
    before, deadline = counters(), time.time() + timeout
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, url, body, requests // clients, deadline) for _ in range(clients)]
        latencies = [x for f in futures for x in f.result()]
    wall = time.perf_counter() - start
    after = counters()
    batches = after["batches"] - before["batches"]
    return {"clients": clients, "requests": len(latencies), "p50_ms": round(1000 * percentile(latencies, 0.5), 1),
            "p99_ms": round(1000 * percentile(latencies, 0.99), 1), "requests_per_s": round(len(latencies) / wall, 2),
            "mean_batch_size": round((after["requests"] - before["requests"]) / max(batches, 1), 2)}


def wait(url: str, job_id: str, timeout: float = 900) -> dict:
    deadline = time.time() + timeout
    while (report := httpx.get(f"{url}/train/{job_id}", timeout=30).json())["status"] in ("queued", "running"):
        if time.time() > deadline: raise RuntimeError(f"job {job_id} did not end in {timeout} s")
        time.sleep(0.1)
    return report


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure_jobs(proc, url: str, models: Path, jobs: int, body_mib: float) -> dict:
    "Memory and files of the server after each of `jobs` tiny training jobs with `body_mib` MiB of athletes."
    athlete = {**ATHLETE, "current_qualities": [0.123456789] * 23, "subject_scores": [0.123456789] * 93,
               "performance_metrics": dict(recent_improvement=0.1, injury_risk=0.1, training_efficiency=0.5,
                                           consistency=0.5)}
    n = int(body_mib * 2**20 - 1000) // (len(json.dumps(athlete)) + 2)
    body = json.dumps(dict(episodes=8, num_envs=8, max_steps_per_episode=5, time_budget_s=30,
                           training_data=[athlete] * n)).encode()
    rss, files, disk, seconds = [round(rss_mib(proc.pid))], [], [], []
    for _ in range(jobs):
        start = time.perf_counter()
        r = httpx.post(f"{url}/train", content=body, headers={"content-type": "application/json"}, timeout=300)
        r.raise_for_status()
        report = wait(url, r.json()["job_id"])
        assert report["status"] == "succeeded", report
        seconds.append(round(time.perf_counter() - start, 2))
        rss.append(round(rss_mib(proc.pid)))
        checkpoints = [p for p in models.rglob("*") if p.is_file()]
        files.append(len(checkpoints)); disk.append(round(sum(p.stat().st_size for p in checkpoints) / 2**20))
    return dict(jobs=jobs, body_mib=round(len(body) / 2**20, 2), athletes_per_body=n, rss_mib=rss,
                checkpoint_files=files, checkpoints_mib=disk, job_seconds=seconds)


def measure_budget(url: str, shapes: list[tuple[int, int]], budget: float) -> list[dict]:
    "How long jobs of each shape run past `budget` seconds (each trains a copy of the served agent)."
    out = []
    for num_envs, max_steps in shapes:
        r = httpx.post(f"{url}/train", timeout=30, json=dict(episodes=10**6, num_envs=num_envs, resume=True,
                                                             max_steps_per_episode=max_steps, time_budget_s=budget))
        if r.status_code != 202:
            out.append(dict(num_envs=num_envs, max_steps=max_steps, status=r.status_code, detail=r.json()["detail"]))
            continue
        report = wait(url, r.json()["job_id"])
        started, finished = (datetime.fromisoformat(report[k]) for k in ("started_at", "finished_at"))
        wall = (finished - started).total_seconds()
        out.append(dict(num_envs=num_envs, max_steps=max_steps, budget_s=budget, status=report["status"],
                        wall_s=round(wall, 2), overrun_s=round(wall - budget, 2),
                        episodes=report["progress"]["episodes_done"], error=report["error"]))
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--measure", choices=["optimize", "jobs", "budget"], default="optimize")
    p.add_argument("--net", choices=list(NETS), default="design", help="network size served (and trained)")
    p.add_argument("--steps", type=int, default=100, help="optimize: optimization_steps of each request")
    p.add_argument("--requests", type=int, default=160, help="optimize: requests per client count")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 16], help="optimize: concurrent clients")
    p.add_argument("--timeout", type=float, default=300, help="optimize: seconds at most per client count")
    p.add_argument("--jobs", type=int, default=20, help="jobs: training jobs to run")
    p.add_argument("--body-mib", type=float, default=8, help="jobs: MiB of training_data in each request")
    p.add_argument("--shapes", nargs="+", default=["1024x32", "32x1000", "256x50", "64x50"],
                   help="budget: num_envs x max_steps_per_episode of each job")
    p.add_argument("--budget", type=float, default=5, help="budget: time_budget_s of each job")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "agent.pt"
        EnhancedPPOAgent(config=NETS[args.net](), device="cpu").save_model(model)
        proc, url = start_server(Path(tmp) / "server.log", model=model, model_dir=model.parent / "models")
        try:
            if args.measure == "optimize":
                body = {**ATHLETE, "optimization_steps": args.steps}
                run(url, 1, 3, body, 60)  # warm-up
                results = [run(url, c, args.requests, body, args.timeout) for c in args.clients]
                report = {"optimization_steps": args.steps, "results": results}
            elif args.measure == "jobs":
                report = measure_jobs(proc, url, Path(tmp) / "models", args.jobs, args.body_mib)
            else:
                shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes]
                report = {"results": measure_budget(url, shapes, args.budget)}
        finally:
            proc.terminate(); proc.wait(timeout=15)
    print(json.dumps({"measure": args.measure, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "cpus": os.cpu_count(), "machine": platform.machine(), "net": args.net, **report,
                      "load_average_1min": os.getloadavg()[0]}, indent=1))
