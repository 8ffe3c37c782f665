"""`POST /season` latency on loopback, in a real uvicorn server process; prints one JSON object.

For each athlete count of `--athletes` (default 1 and 100) and `--days` days (default 56): `--repeat` requests one
after another (after one untimed warm-up), each planning every athlete with the served season policy (one
`plan_season` call per request), p50 and max latency in ms and the answer's size; also the same with the baseline
planner `forecast`. The policy is untrained (a plan's cost does not depend on the weights). Other processes on the
machine change the figures: the 1-minute load average at the end is printed with them.

Usage: OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_season_api.py [--athletes 1 100] [--days 56] [--repeat 10]
"""
import argparse, json, os, platform, statistics, tempfile, time
from pathlib import Path
import httpx
import torch
import fitness_ppo
from fitness_ppo.season import SeasonEnvironment, season_agent
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


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--athletes", type=int, nargs="+", default=[1, 100])
    p.add_argument("--days", type=int, default=56)
    p.add_argument("--repeat", type=int, default=10)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "season.pt"
        season_agent(SeasonEnvironment(days=args.days)).save_model(model)
        proc, url = start_server(Path(tmp) / "server.log", "season_model_loaded", season_model=model,
                                 model_dir=model.parent / "models")
        try:
            rows = [measure(url, n, args.days, planner, args.repeat) for planner in ("policy", "forecast")
                    for n in args.athletes]
        finally:
            proc.terminate(); proc.wait(15)
    print(json.dumps(dict(fitness_ppo=fitness_ppo.__version__, torch=torch.__version__, machine=platform.machine(),
                          cpus=os.cpu_count(), server="uvicorn, 1 process, cpu", season=rows,
                          load_average_1min=round(os.getloadavg()[0], 2)), indent=1))


if __name__ == "__main__": main()
