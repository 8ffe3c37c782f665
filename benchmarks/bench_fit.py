"""Fitting speed: a squad in one batched `fit` call vs the same athletes one by one with scipy's least_squares.

Prints one JSON object.
Usage: python benchmarks/bench_fit.py [--athletes 1000] [--weeks 16] [--scipy-subset 100] [--repeat 3]
Both sides minimise the same thing: the classic Banister model's MAP objective of `fitness_ppo.fit` (data residuals
over a given noise sd, 1% of the nominal test, then the prior's residuals, in the same scaled log-parameters).
`fit` (default settings) starts from its grid of time constants and also computes the Laplace covariance (scipy does
not). scipy (MINPACK Levenberg-Marquardt with the closed-form Jacobian) runs on the first `--scipy-subset` athletes,
twice: from four fixed starts per athlete (the prior centre and three spreads of the time constants, keeping the best:
what one would do one athlete at a time) and from the batched fit's own grid start (one start, given to it for free);
its times are extrapolated to the whole squad and both objectives are compared on that subset. `--repeat` rounds
(batched call, then both scipy runs) give the median times and the median of the rounds' speedups.
"""
import argparse, json, os, platform, time
import numpy as np
import torch
from scipy.optimize import least_squares
from fitness_ppo.fit import (MODELS, SIM_TEST_LOAD, _grid_starts, _lagged, _perf_jac, _prior, athlete_data, fit,
                             simulate_squad)

FIXED_STARTS = ((0.0, 0.0), (-0.6, -0.6), (0.5, 0.8), (-0.3, 1.0))  # log tau_fit, log tau_fat - the prior centre

def scipy_fit(data, sigma, subset, grid=False):
    """Each of the first `subset` athletes alone: least_squares from the four fixed starts (keeping the best), or from
    `fit`'s grid start (`grid=True`, computed beforehand, not timed); the objectives, SSEs and seconds."""
    mu, sd = _prior("banister", None, torch.float64, "cpu")
    scale = torch.where(data.test_mask, data.test_value, torch.nan).nanmedian(1).values
    mean_load = data.load.sum(1) / (data.today + 1)
    w, y = data.load / mean_load[:, None], data.test_value / scale[:, None]
    G = _lagged(data.test_day, w)
    fixed = np.zeros((len(FIXED_STARTS), 5)) + mu.numpy()
    fixed[:, 3:5] += np.array(FIXED_STARTS)
    if grid: from_grid = _grid_starts(G, G, data.test_mask, y, (sigma / scale) ** 2, mu, sd, 1)[:, 0].numpy()
    best, start = [], time.perf_counter()
    for a in range(subset):
        starts = from_grid[a:a + 1] if grid else fixed
        m, ya, s = data.test_mask[a:a + 1], y[a:a + 1], float(sigma / scale[a])
        Gn, mn, yn, mun, sdn = G[a].numpy(), m[0].numpy(), ya[0].numpy(), mu.numpy(), sd.numpy()
        lag = np.arange(Gn.shape[1])
        def res(th):
            fitness, fatigue = Gn @ np.exp(-lag / np.exp(th[3])), Gn @ np.exp(-lag / np.exp(th[4]))
            f = th[0] + np.exp(th[1]) * fitness - np.exp(th[2]) * fatigue
            return np.concatenate([np.where(mn, (yn - f) / s, 0.0), (th - mun) / sdn])
        def jac(th):
            e1, e2 = np.exp(-lag / np.exp(th[3])), np.exp(-lag / np.exp(th[4]))
            k1, k2 = np.exp(th[1]), np.exp(th[2])
            cols = [np.ones(len(yn)), k1 * Gn @ e1, -k2 * Gn @ e2, k1 * Gn @ (e1 * lag / np.exp(th[3])),
                    -k2 * Gn @ (e2 * lag / np.exp(th[4]))]
            Jd = -np.stack(cols, 1) / s * mn[:, None]
            return np.concatenate([Jd, np.diag(1 / sdn)])
        sol = min((least_squares(res, x0, jac=jac, method="lm") for x0 in starts), key=lambda o: o.cost)
        best.append((sol.cost, float(((res(sol.x)[:len(yn)] * s * float(scale[a])) ** 2).sum())))
    return np.array(best), time.perf_counter() - start

def torch_objective(result, data, sigma):
    "0.5 x the sum of squared residuals of `result` (scipy's `cost`), and the tests' SSE in test units."
    mu, sd = result.prior_mean, result.prior_sd
    w, y = data.load / result.mean_load[:, None], data.test_value / result.scale[:, None]
    f, _ = _perf_jac(result.theta, _lagged(data.test_day, w), data.test_day, w, "banister", 0)
    r = torch.where(data.test_mask, (y - f) / (sigma / result.scale)[:, None], 0.0)
    return 0.5 * ((r ** 2).sum(1) + (((result.theta - mu) / sd) ** 2).sum(1)), (r ** 2).sum(1) * sigma ** 2

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--athletes", type=int, default=1000)
    p.add_argument("--weeks", type=int, default=16)
    p.add_argument("--scipy-subset", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    load_start = os.getloadavg()[0]
    log, tests, truth = simulate_squad(args.athletes, weeks=args.weeks, noise=0.01, seed=0)
    data = athlete_data(log, tests, device=args.device)
    sigma = 0.01 * SIM_TEST_LOAD[0]
    fit(athlete_data(*simulate_squad(4, weeks=2, seed=1)[:2], device=args.device), sigma=sigma)  # warm-up
    cpu_data = athlete_data(log, tests)
    n = min(args.scipy_subset, args.athletes)
    runs, sp_runs, sg_runs = [], [], []
    for _ in range(args.repeat):  # rounds of batched, scipy, scipy from the grid: the machine may be shared
        start = time.perf_counter()
        result = fit(data, sigma=sigma)
        if args.device != "cpu": torch.cuda.synchronize()
        runs.append(time.perf_counter() - start)
        sp, sp_s = scipy_fit(cpu_data, sigma, n)
        sg, sg_s = scipy_fit(cpu_data, sigma, n, grid=True)
        sp_runs.append(sp_s * args.athletes / n); sg_runs.append(sg_s * args.athletes / n)
    torch_s, sp_total, sg_total = (float(np.median(x)) for x in (runs, sp_runs, sg_runs))
    ratio = lambda xs: round(float(np.median([x / t for x, t in zip(xs, runs)])), 1)  # per round, then the median
    obj, sse_t = (x.cpu() for x in torch_objective(result, data, sigma))
    sp_obj, sp_sse = sp[:, 0], sp[:, 1]
    sse = lambda o: float(o.sum())
    at_most = lambda o: float((obj[:n].numpy() <= o + 1e-6 * (1 + o)).mean())  # share with the batched as low
    out = dict(torch=torch.__version__, threads=torch.get_num_threads(), machine=platform.machine(), device=args.device,
               loadavg_start=load_start, loadavg_end=os.getloadavg()[0], athletes=args.athletes, weeks=args.weeks,
               model="banister", parameters=list(MODELS["banister"]),
               batched_seconds=round(torch_s, 3), batched_runs=[round(x, 3) for x in runs], scipy_subset=n,
               scipy_seconds_extrapolated=round(sp_total, 2), scipy_runs=[round(x, 2) for x in sp_runs],
               speedup=ratio(sp_runs), speedup_runs=[round(x / t, 1) for x, t in zip(sp_runs, runs)],
               scipy_grid_start_seconds_extrapolated=round(sg_total, 2), speedup_vs_grid_start=ratio(sg_runs),
               objective_batched_subset=round(sse(obj[:n]), 4), objective_scipy_subset=round(sse(sp_obj), 4),
               objective_scipy_grid_start_subset=round(sse(sg[:, 0]), 4),
               objective_batched_all=round(sse(obj), 4), sse_W2_batched_subset=round(sse(sse_t[:n]), 2),
               sse_W2_scipy_subset=round(float(sp_sse.sum()), 2),
               share_batched_at_most_scipy=at_most(sp_obj),
               share_batched_at_most_scipy_grid_start=at_most(sg[:, 0]),
               converged=float(result.converged.float().mean()))
    print(json.dumps(out, indent=1))
