"""`POST /season` latency on loopback, in a real uvicorn server process; prints one JSON object.

For each athlete count of `--athletes` (default 1 and 100) and `--days` days (default 56): `--repeat` requests one
after another (after one untimed warm-up), each planning every athlete with the served season policy (one
`plan_season` call per request), p50 and max latency in ms and the answer's size; also the same with the baseline
planner `forecast`. The policy is untrained (a plan's cost does not depend on the weights). Other processes on the
machine change the figures: the load averages before and after are printed with them.

With `--concurrent N`: instead, one request of `--athletes` (the first count) alone, then N such requests at once
(one thread each), while another thread polls `/health` every 50 ms: the latencies (p50, p95, max) of the N requests
and of `/health`, and the server's resident memory (from `/health`) before, at the end of the load and 5 s after.

Usage: OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_season_api.py [--athletes 1 100] [--days 56] [--repeat 10]
       OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_season_api.py --athletes 100 --concurrent 40 [--width 16]
"""
import argparse, json, os, platform, statistics, tempfile, threading, time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
import httpx
import torch
import fitness_ppo
from fitness_ppo.season import SEASON_NET, SeasonEnvironment, season_agent
from fitness_ppo.state import synthetic_athletes
from bench_api import start_server  # run as a script, this folder is on sys.path


def athletes(n: int) -> list[dict]:
    "`n` synthetic athletes as /season JSON (fixed seed), without the optional fields."
    keep = ("user_id", "age", "gender", "fitness_level", "current_qualities", "target_subjects")
    return [{k: getattr(a, k) for k in keep} for a in synthetic_athletes(n, seed=7)]


def measure(url: str, n: int, days: int, planner: str, repeat: int) -> dict:
    body = dict(athletes=athletes(n), days=days, planner=planner)
    times = []
    with httpx.Client(base_url=url, timeout=300) as c:
        for i in range(repeat + 1):
            start = time.perf_counter()
            r = c.post("/season", json=body)
            r.raise_for_status()
            if i: times.append(time.perf_counter() - start)  # the first is a warm-up
    return dict(athletes=n, days=days, planner=planner, requests=len(times),
                p50_ms=round(1000 * statistics.median(times), 1), max_ms=round(1000 * max(times), 1),
                ms_per_athlete=round(1000 * statistics.median(times) / n, 2), answer_kib=round(len(r.content) / 1024))


def percentile(values: list[float], q: float) -> float:
    "The `q` quantile of `values` (nearest rank)."
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def rss_mib(url: str) -> float:
    return round(httpx.get(f"{url}/health", timeout=60).json()["memory"]["rss_bytes"] / 2**20, 1)


def concurrent(url: str, n: int, days: int, count: int) -> dict:
    "One request of `n` athletes alone, then `count` at once with /health polled meanwhile."
    body = dict(athletes=athletes(n), days=days, planner="policy")
    post = lambda: (time.perf_counter(), httpx.post(f"{url}/season", json=body, timeout=600))
    post()  # warm-up
    memory_before = rss_mib(url)
    start, r = post(); r.raise_for_status(); alone = time.perf_counter() - start
    health, done = [], threading.Event()
    def poll():
        while not done.is_set():
            t = time.perf_counter(); httpx.get(f"{url}/health", timeout=60).raise_for_status()
            health.append(time.perf_counter() - t); time.sleep(0.05)
    poller = threading.Thread(target=poll); poller.start()
    def timed(_):
        start, r = post(); r.raise_for_status()
        return time.perf_counter() - start
    wall = time.perf_counter()
    with ThreadPoolExecutor(count) as pool: times = list(pool.map(timed, range(count)))
    wall = time.perf_counter() - wall
    done.set(); poller.join()
    memory_loaded = rss_mib(url); time.sleep(5); memory_after = rss_mib(url)
    ms = lambda x: round(1000 * x, 1)
    return dict(athletes=n, days=days, concurrent=count, alone_ms=ms(alone), p50_ms=ms(statistics.median(times)),
                p95_ms=ms(percentile(times, 0.95)), max_ms=ms(max(times)), wall_s=round(wall, 2),
                p95_over_alone=round(percentile(times, 0.95) / alone, 2), health_requests=len(health),
                health_p50_ms=ms(statistics.median(health)), health_max_ms=ms(max(health)),
                rss_mib=dict(before=memory_before, after_load=memory_loaded, five_s_later=memory_after))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--athletes", type=int, nargs="+", default=[1, 100])
    p.add_argument("--days", type=int, default=56)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--concurrent", type=int, default=0, help="requests sent at once (0: one after another)")
    p.add_argument("--width", type=int, default=0, help="a tiny policy of this width (0: the season network)")
    args = p.parse_args()
    load_before = os.getloadavg()
    w = args.width
    config = SEASON_NET if not w else replace(SEASON_NET, feature_widths=(w,), shared_width=w, actor_widths=(w,),
                                              critic_widths=(w,), predictor_widths=(w,))
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "season.pt"
        season_agent(SeasonEnvironment(days=args.days), config).save_model(model)
        proc, url = start_server(Path(tmp) / "server.log", "season_model_loaded", season_model=model,
                                 model_dir=model.parent / "models")
        try:
            if args.concurrent: rows = [concurrent(url, args.athletes[0], args.days, args.concurrent)]
            else: rows = [measure(url, n, args.days, planner, args.repeat) for planner in ("policy", "forecast")
                          for n in args.athletes]
        finally:
            proc.terminate(); proc.wait(15)
    print(json.dumps(dict(fitness_ppo=fitness_ppo.__version__, torch=torch.__version__, machine=platform.machine(),
                          cpus=os.cpu_count(), server="uvicorn, 1 process, cpu", season=rows,
                          policy_width=args.width or "season network", load_average_before=load_before,
                          load_average_after=os.getloadavg()), indent=1))


if __name__ == "__main__": main()
