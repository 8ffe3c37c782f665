"""Throughput of `/season` on a real server (issue 17): one request alone, then many at once; prints JSON.

Starts `uvicorn fitness_ppo.api:app` on a free loopback port (through `tests/servers.py`, the one way the tests start a
server) with an untrained season policy (plan quality does not matter here: the guard and the baselines run as usual),
then measures:
- one `/season` request of `--athletes` athletes x `--days` days, alone (the median of `--repeats`);
- `--clients` such requests sent at once from threads: each one's latency (p50, p95, max) and the wall time;
- `/health` latency, polled every `--poll` s while they run (p50, max);
- the server's resident memory from `/health` before the load (after the single requests) and after it.

Usage: python scripts/bench_season_service.py [--clients 40] [--athletes 100] [--days 56] [--threads 1]
The targets: p95 within 3x of one request, /health under 0.1 s, memory back within 10% of its level before the load.
The server runs with `--threads` OpenMP threads; the load average is printed beside the timings (a shared CPU).
"""
import argparse, json, multiprocessing, os, statistics, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import httpx  # noqa: E402
from servers import free_port, running  # noqa: E402


def athletes(n: int, seed: int) -> list[dict]:
    "`n` request athletes drawn from the package's synthetic athletes (seeded), as `/season` takes them."
    from fitness_ppo.state import synthetic_athletes
    rows = []
    for k, a in enumerate(synthetic_athletes(n, seed=seed)):
        rows.append(dict(user_id=f"s{seed}-{k}", age=int(a.age), gender=a.gender, fitness_level=a.fitness_level,
                         current_qualities=[round(float(q), 6) for q in a.current_qualities],
                         target_subjects=list(a.target_subjects)))
    return rows


def quantile(xs: list[float], q: float) -> float:
    "The `q` quantile of `xs` (linear interpolation, as numpy's default)."
    xs = sorted(xs)
    at = (len(xs) - 1) * q
    lo = int(at)
    return xs[lo] + (xs[min(lo + 1, len(xs) - 1)] - xs[lo]) * (at - lo)


def poll_health(url: str, every: float, stop, results):
    "In a process of its own: GET `url`/health every `every` s until `stop` is set; the first latency, then the rest."
    with httpx.Client(base_url=url, timeout=60) as client:
        start = time.perf_counter(); client.get("/health").raise_for_status()
        results.put(time.perf_counter() - start)
        polls = []
        while not stop.is_set():
            time.sleep(every)
            start = time.perf_counter(); client.get("/health").raise_for_status()
            polls.append(time.perf_counter() - start)
    results.put(polls)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=40)
    p.add_argument("--athletes", type=int, default=100)
    p.add_argument("--days", type=int, default=56)
    p.add_argument("--repeats", type=int, default=3, help="single requests measured (the median is reported)")
    p.add_argument("--threads", type=int, default=1, help="the server's OpenMP threads")
    p.add_argument("--poll", type=float, default=0.05, help="seconds between /health polls during the load")
    p.add_argument("--settle", type=float, default=2.0, help="seconds after the load before memory is read")
    args = p.parse_args()

    import torch
    from fitness_ppo.season import SeasonEnvironment, season_agent
    tmp = Path(tempfile.mkdtemp(prefix="bench_season_"))
    torch.manual_seed(0)
    season_agent(SeasonEnvironment(days=args.days)).save_model(tmp / "season.pt")
    port, url = free_port(), None
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FITNESS_PPO_MODEL_DIR": str(tmp / "models"), "FITNESS_PPO_DEVICE": "cpu",
           "FITNESS_PPO_SEASON_MODEL": str(tmp / "season.pt"), "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": str(args.threads), "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, "-m", "uvicorn", "fitness_ppo.api:app", "--host", "127.0.0.1", "--port", port,
           "--log-level", "warning"]
    bodies = [dict(athletes=athletes(args.athletes, seed), days=args.days) for seed in range(args.clients)]
    ready = lambda: httpx.get(f"{url}/health", timeout=2).json()["season_model_loaded"]
    # long-lived clients: a new httpx client per call builds an SSL context, tens of ms of this CPU each time
    clients = httpx.Client(base_url=url, timeout=600, limits=httpx.Limits(max_connections=None))
    health = lambda: clients.get("/health").json()

    def post(body) -> float:
        start = time.perf_counter()
        answer = clients.post("/season", json=body)
        assert answer.status_code == 200, answer.text[:300]
        return time.perf_counter() - start

    with running(cmd, ready, tmp / "server.log", timeout=120, retry_on=(httpx.TransportError,), cwd=tmp, env=env):
        rss_start = health()["memory"]["rss_bytes"]
        post(bodies[0])  # warm-up: first use of the network and the planners
        single = [post(bodies[k % len(bodies)]) for k in range(args.repeats)]
        before = health()

        idle = []
        for _ in range(10):
            start = time.perf_counter(); health(); idle.append(time.perf_counter() - start)

        load_before = os.getloadavg()
        # the poller is a process of its own: in a thread beside the 40 clients it waited on their GIL (encoding the
        # bodies, reading the answers), and its latencies were the client's as much as the server's
        spawn = multiprocessing.get_context("spawn")
        stop, results = spawn.Event(), spawn.Queue()
        poller = spawn.Process(target=poll_health, args=(url, args.poll, stop, results)); poller.start()
        started = results.get(timeout=120)  # the poller's first answer: it is polling
        start = time.perf_counter()
        try:
            with ThreadPoolExecutor(args.clients) as pool: latencies = list(pool.map(post, bodies))
        finally:
            wall = time.perf_counter() - start
            stop.set(); polls = results.get(timeout=120); poller.join()
        polls = [started] + polls
        load_after = os.getloadavg()
        time.sleep(args.settle)
        after = health()

    one = statistics.median(single)
    p95 = quantile(latencies, 0.95)
    rss_before, rss_after = before["memory"]["rss_bytes"], after["memory"]["rss_bytes"]
    mib = lambda b: None if b is None else round(b / 2**20, 1)
    report = dict(
        athletes=args.athletes, days=args.days, clients=args.clients, server_threads=args.threads,
        single_s=[round(s, 3) for s in single], single_median_s=round(one, 3),
        concurrent=dict(wall_s=round(wall, 3), p50_s=round(quantile(latencies, 0.5), 3), p95_s=round(p95, 3),
                        max_s=round(max(latencies), 3), p95_over_single=round(p95 / one, 2)),
        batches=dict(requests=after["seasons"]["requests"] - before["seasons"]["requests"],
                     plan_season_calls=after["seasons"]["batches"] - before["seasons"]["batches"]),
        health=dict(idle_p50_ms=round(1e3 * statistics.median(idle), 1), polls=len(polls),
                    p50_ms=round(1e3 * statistics.median(polls), 1) if polls else None,
                    max_ms=round(1e3 * max(polls), 1) if polls else None),
        memory_mib=dict(start=mib(rss_start), before_load=mib(rss_before), after_load=mib(rss_after),
                        peak=mib(after["memory"]["peak_rss_bytes"]),
                        after_over_before=round(rss_after / rss_before, 3) if rss_before and rss_after else None),
        load_average=dict(before=[round(x, 2) for x in load_before], after=[round(x, 2) for x in load_after]),
        cpus=os.cpu_count())
    report["targets"] = dict(p95_within_3x=report["concurrent"]["p95_over_single"] <= 3,
                             health_under_100ms=bool(polls) and max(polls) < 0.1,
                             memory_within_10pct=report["memory_mib"]["after_over_before"] is not None
                             and report["memory_mib"]["after_over_before"] <= 1.1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
