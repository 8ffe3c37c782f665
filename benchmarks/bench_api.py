"""`POST /optimize` latency (p50, p99) and throughput on loopback, for 1 and 16 concurrent clients, on CPU.

Prints one JSON object. Usage: python benchmarks/bench_api.py [--net design|small] [--steps 100] [--requests 160]
Starts a real uvicorn server on 127.0.0.1 (a free port) in its own process, serving an untrained agent of the chosen
network size (the cost of a request does not depend on the weights), then runs each client count for `--requests`
requests in all (bounded by `--timeout` seconds) and stops the server. The server batches concurrent requests; the
mean batch size it reports comes from its /health counters. Other processes on the machine change the figures:
the 1-minute load average at the end is printed with them.
"""
import argparse, json, os, platform, socket, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import httpx
import torch
from fitness_ppo.model import NetConfig
from fitness_ppo.ppo import EnhancedPPOAgent

ATHLETE = dict(user_id="bench", age=30, gender="F", fitness_level="intermediate",
               current_qualities=[i / 22 for i in range(23)], target_subjects=["C003", "C017"])

def start_server(model: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    env = {**os.environ, "FITNESS_PPO_MODEL": str(model), "FITNESS_PPO_MODEL_DIR": str(model.parent), "FITNESS_PPO_DEVICE": "cpu"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "fitness_ppo.api:app", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}", time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=2).json()["model_loaded"]: return proc, url
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
        latencies = [x for f in [pool.submit(client, url, body, requests // clients, deadline) for _ in range(clients)] for x in f.result()]
    wall = time.perf_counter() - start
    after = counters()
    batches = after["batches"] - before["batches"]
    return {"clients": clients, "requests": len(latencies), "p50_ms": round(1000 * percentile(latencies, 0.5), 1),
            "p99_ms": round(1000 * percentile(latencies, 0.99), 1), "requests_per_s": round(len(latencies) / wall, 2),
            "mean_batch_size": round((after["requests"] - before["requests"]) / max(batches, 1), 2)}

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", choices=["design", "small"], default="design", help="network size served")
    p.add_argument("--steps", type=int, default=100, help="optimization_steps of each request")
    p.add_argument("--requests", type=int, default=160, help="requests per client count")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    p.add_argument("--timeout", type=float, default=300, help="seconds at most per client count")
    args = p.parse_args()
    body = {**ATHLETE, "optimization_steps": args.steps}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "agent.pt"
        EnhancedPPOAgent(config=NetConfig() if args.net == "design" else NetConfig.small(), device="cpu").save_model(model)
        proc, url = start_server(model, Path(tmp) / "server.log")
        try:
            run(url, 1, 3, body, 60)  # warm-up
            results = [run(url, c, args.requests, body, args.timeout) for c in args.clients]
        finally:
            proc.terminate(); proc.wait(timeout=15)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                      "machine": platform.machine(), "load_average_1min": os.getloadavg()[0], "net": args.net,
                      "optimization_steps": args.steps, "results": results}, indent=1))
