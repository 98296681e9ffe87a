"""Reference vectors for the divergences of continuous data (issue 9).

cases() returns the gaussian_kl cases (POST /loss/gaussian_kl), whose values
come from torch.distributions.kl_divergence between Normal distributions in
float64 and whose gradients are autograd's; gen.py writes them to
continuous.json like every other family.

The sample-based estimates of POST /divergence/samples are not losses, so
the HTTP vector runner (which posts every case of tests/vectors/*.json to
/loss/{name}) must not see them: cases() also writes them to
tests/vectors/samples/continuous.json.  They come from a separate, direct
numpy implementation of the definitions in core/samples.c: numpy's own
histogram and Freedman-Diaconis bin edges, kernel density sums over every
pair of points with written-out log-sum-exps, and k-nearest-neighbour
distances by sorting every pairwise distance; psi from torch.special.digamma and log
Gamma from math.lgamma.  An estimate case's "expected" is the response
body: {"method", "metrics", "parameters", "n_p", "n_q"}.
"""
import json
import math
import os

import numpy as np
import torch
from torch.distributions import Normal, kl_divergence

from common import case, error_case, gen, grads, leaf, randn

HERE = os.path.dirname(os.path.abspath(__file__))
LN2 = math.log(2.0)

# ---- gaussian_kl -------------------------------------------------------------


def gaussian_kl(name, mu_p, logvar_p, mu_q, logvar_q, reduction=None):
    red = reduction or "mean"
    mp, lp, mq, lq = leaf(mu_p), leaf(logvar_p), leaf(mu_q), leaf(logvar_q)
    p = Normal(mp, torch.exp(0.5 * lp))
    q = Normal(mq, torch.exp(0.5 * lq))
    per = kl_divergence(p, q).sum(-1)
    loss = per.mean() if red == "mean" else per.sum()
    g = grads(loss, mu_p=mp, logvar_p=lp, mu_q=mq, logvar_q=lq)
    req = {"mu_p": mu_p, "logvar_p": logvar_p, "mu_q": mu_q,
           "logvar_q": logvar_q}
    if reduction:
        req["reduction"] = reduction
    return case(name, "gaussian_kl", req, loss, per, g)


def gaussian_kl_cases():
    g = gen(901)
    out = []
    for n, d, red in [(4, 3, None), (5, 2, "sum"), (1, 1, None),
                      (3, 8, "mean")]:
        out.append(gaussian_kl("random_n%d_d%d_%s" % (n, d, red or "default"),
                               randn(g, n, d), randn(g, n, d, scale=0.7),
                               randn(g, n, d), randn(g, n, d, scale=0.7),
                               red))
    mu, lv = randn(g, 3, 4), randn(g, 3, 4)
    out.append(gaussian_kl("identical_is_zero", mu, lv, mu, lv))
    out.append(gaussian_kl("standard_normal_prior", randn(g, 3, 2),
                           randn(g, 3, 2), torch.zeros(3, 2),
                           torch.zeros(3, 2), "sum"))
    out.append(gaussian_kl("wide_logvars", randn(g, 2, 3),
                           torch.tensor([[30.0, -30.0, 0.5],
                                         [-25.0, 25.0, 0.0]]),
                           randn(g, 2, 3),
                           torch.tensor([[29.0, -31.0, 0.5],
                                         [-24.0, 26.0, 1.0]])))
    z = torch.zeros(1, 2)
    out.append(error_case("overflow_is_infinite", "gaussian_kl",
                          {"mu_p": z, "logvar_p": z, "mu_q": z,
                           "logvar_q": torch.tensor([[0.0, -1500.0]])},
                          "infinite_divergence", "logvar_q[0]"))
    out.append(error_case("empty_batch", "gaussian_kl",
                          {"mu_p": [], "logvar_p": [], "mu_q": [],
                           "logvar_q": []},
                          "empty_batch", "mu_p"))
    return out


# ---- Sample-based estimates ------------------------------------------------


def lse(t, axis):
    m = np.max(t, axis=axis, keepdims=True)
    return (m + np.log(np.sum(np.exp(t - m), axis=axis, keepdims=True))
            ).squeeze(axis)


def rel_entr(x, y):
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(x > 0, x * np.log(x / np.where(y > 0, y, 1.0)), 0.0)
    return np.where((x > 0) & (y == 0), np.inf, r)


def est_histogram(p, q, bins, alpha):
    pool = np.concatenate([p, q])
    edges = np.histogram_bin_edges(pool, bins="fd" if bins == "auto" else bins)
    b = len(edges) - 1
    cp = np.histogram(p, bins=edges)[0].astype(float)
    cq = np.histogram(q, bins=edges)[0].astype(float)
    pp = (cp + alpha) / (len(p) + b * alpha)
    qq = (cq + alpha) / (len(q) + b * alpha)
    m = 0.5 * (pp + qq)
    w = (edges[-1] - edges[0]) / b
    est = {"kl_pq": rel_entr(pp, qq).sum(), "kl_qp": rel_entr(qq, pp).sum(),
           "js": max(0.5 * (rel_entr(pp, m).sum() + rel_entr(qq, m).sum()),
                     0.0),
           "entropy_p": -rel_entr(pp, np.ones_like(pp)).sum() + math.log(w),
           "entropy_q": -rel_entr(qq, np.ones_like(qq)).sum() + math.log(w)}
    return est, {"bins": b}


def kde_h(x, rule, value):
    n, d = x.shape
    if rule == "number":
        return value
    s = math.sqrt(np.mean(np.var(x, axis=0, ddof=1)))
    if rule == "scott":
        return n ** (-1.0 / (d + 4)) * s
    return (n * (d + 2) / 4.0) ** (-1.0 / (d + 4)) * s


def kde_logpdf(pts, x, h, leave_out=False):
    """log of the isotropic Gaussian KDE of x (rows) at pts (rows)."""
    d = x.shape[1]
    sq = ((pts[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    t = -0.5 * (sq / h / h)
    n = x.shape[0]
    if leave_out:
        np.fill_diagonal(t, -np.inf)
        n -= 1
    return lse(t, 1) - math.log(n) - d * (math.log(h)
                                          + 0.5 * math.log(2 * math.pi))


def lme2(a, b):
    return np.maximum(a, b) + np.log1p(np.exp(-np.abs(a - b))) - LN2


def est_kde(p, q, rule, value):
    hp, hq = kde_h(p, rule, value), kde_h(q, rule, value)
    if p.shape[1] == 1:
        pool = np.concatenate([p[:, 0], q[:, 0]])
        hmax = max(hp, hq)
        lo, hi = pool.min() - 6 * hmax, pool.max() + 6 * hmax
        g = math.ceil((hi - lo) / (min(hp, hq) / 8.0))
        g = min(max(g, 1024), 16384)
        g += g % 2
        dx = (hi - lo) / g
        xs = lo + np.arange(g + 1) * dx
        w = np.where(np.arange(g + 1) % 2 == 1, 4.0, 2.0)
        w[0] = w[-1] = 1.0
        w *= dx / 3
        lp = kde_logpdf(xs[:, None], p, hp)
        lq = kde_logpdf(xs[:, None], q, hq)
        lm = lme2(lp, lq)
        ep, eq = np.exp(lp), np.exp(lq)
        js = 0.5 * np.sum(w * (ep * (lp - lm) + eq * (lq - lm)))
        est = {"kl_pq": np.sum(w * ep * (lp - lq)),
               "kl_qp": np.sum(w * eq * (lq - lp)),
               "js": min(max(js, 0.0), LN2),
               "entropy_p": -np.sum(w * ep * lp),
               "entropy_q": -np.sum(w * eq * lq)}
    else:
        lpp = kde_logpdf(p, p, hp, True)
        lqp = kde_logpdf(p, q, hq)
        lqq = kde_logpdf(q, q, hq, True)
        lpq = kde_logpdf(q, p, hp)
        js = 0.5 * np.mean(lpp - lme2(lpp, lqp)) + \
            0.5 * np.mean(lqq - lme2(lqq, lpq))
        est = {"kl_pq": np.mean(lpp - lqp), "kl_qp": np.mean(lqq - lpq),
               "js": min(max(js, 0.0), LN2),
               "entropy_p": -np.mean(lpp), "entropy_q": -np.mean(lqq)}
    return est, {"bandwidth_p": hp, "bandwidth_q": hq}


def kth(x, y, k, self_set):
    dist = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))
    if self_set:
        np.fill_diagonal(dist, np.inf)
    return np.sort(dist, axis=1)[:, k - 1]


def digamma(x):
    return float(torch.special.digamma(torch.tensor(float(x))))


def knn_side(x, y, k):
    n, d = x.shape
    rho, nu = kth(x, x, k, True), kth(x, y, k, False)
    kl = d / n * np.sum(np.log(nu / rho)) + math.log(len(y) / (n - 1))
    logv = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    h = digamma(n) - digamma(k) + logv + d / n * np.sum(np.log(rho))
    return kl, h


def est_knn(p, q, k):
    kl_pq, h_p = knn_side(p, q, k)
    kl_qp, h_q = knn_side(q, p, k)
    return ({"kl_pq": kl_pq, "kl_qp": kl_qp, "js": float("nan"),
             "entropy_p": h_p, "entropy_q": h_q}, {"k": k})


def jnum(x):
    x = float(x)
    return x if math.isfinite(x) else None


def samples_case(name, p, q, method=None, base=None, **params):
    """One POST /divergence/samples case.  p, q: numpy [n] or [n][d]."""
    P = p.reshape(len(p), -1)
    Q = q.reshape(len(q), -1)
    meth = method or ("histogram" if P.shape[1] == 1 else "knn")
    if meth == "histogram":
        est, eff = est_histogram(P[:, 0], Q[:, 0], params.get("bins", "auto"),
                                 params.get("alpha", 0.5))
    elif meth == "kde":
        bw = params.get("bandwidth", "scott")
        est, eff = est_kde(P, Q, "number" if isinstance(bw, float) else bw,
                           bw)
    else:
        est, eff = est_knn(P, Q, params.get("k", 5))
    scale = 1.0 / math.log(base if base else math.e)
    metrics = {key: jnum(v * scale) for key, v in est.items()}
    metrics["js_distance"] = (jnum(math.sqrt(est["js"] * scale))
                              if scale > 0 and math.isfinite(est["js"])
                              else None)
    req = {"p": p.tolist(), "q": q.tolist()}
    if method:
        req["method"] = method
    if base:
        req["base"] = base
    req.update(params)
    return {"name": name, "request": req,
            "expected": {"method": meth, "metrics": metrics,
                         "parameters": {k: jnum(v) for k, v in eff.items()},
                         "n_p": len(p), "n_q": len(q)}}


def samples_error(name, request, code, field):
    return {"name": name, "request": request,
            "error": {"status": 422, "code": code, "field": field}}


def samples_cases():
    r = np.random.default_rng(902)
    p1, q1 = r.normal(0, 1, 150), r.normal(0.7, 1.3, 120)
    p3, q3 = r.normal(0, 1, (80, 3)), r.normal(0.5, 1.2, (70, 3))
    out = [
        samples_case("histogram_auto_default", p1, q1),
        samples_case("histogram_bins_base2", p1, q1, "histogram", 2.0,
                     bins=12),
        samples_case("histogram_alpha0_empty_bin", p1, q1 + 3.0, "histogram",
                     bins=20, alpha=0.0),
        samples_case("histogram_alpha2_2d_column", p1[:, None], q1[:, None],
                     "histogram", bins=7, alpha=2.0),
        samples_case("kde_scott_1d", p1, q1, "kde"),
        samples_case("kde_silverman_1d", p1, q1, "kde", bandwidth="silverman"),
        samples_case("kde_number_1d_base10", p1[:60], q1[:50], "kde", 10.0,
                     bandwidth=0.4),
        samples_case("kde_scott_3d", p3, q3, "kde"),
        samples_case("kde_number_3d", p3, q3, "kde", bandwidth=0.6),
        samples_case("knn_default_1d", p1, q1, "knn"),
        samples_case("knn_k1_1d", p1, q1, "knn", k=1),
        samples_case("knn_default_3d", p3, q3),
        samples_case("knn_k3_3d_base2", p3, q3, "knn", 2.0, k=3),
        samples_case("knn_two_samples", np.array([0.0, 1.0]),
                     np.array([0.5, 2.0]), "knn", k=1),
        samples_case("histogram_identical_sets", np.array([2.0, 2.0, 2.0]),
                     np.array([2.0, 2.0])),
    ]
    one = [[0.0], [1.0], [2.0]]
    out += [
        samples_error("one_sample_p", {"p": [1.0], "q": [1.0, 2.0]},
                      "empty_batch", "p"),
        samples_error("one_sample_q", {"p": [1.0, 2.0], "q": [3.0]},
                      "empty_batch", "q"),
        samples_error("kde_identical_p", {"p": [1.0, 1.0, 1.0],
                                          "q": [1.0, 2.0], "method": "kde"},
                      "bad_parameter", "p"),
        samples_error("d_mismatch", {"p": [1.0, 2.0],
                                          "q": [[4.0, 1.0], [4.0, 1.0]],
                                          "method": "kde"},
                      "shape_mismatch", "q"),
        samples_error("kde_identical_q_2d", {"p": [[1.0, 0.0], [2.0, 0.0]],
                                             "q": [[4.0, 1.0], [4.0, 1.0]],
                                             "method": "kde"},
                      "bad_parameter", "q"),
        samples_error("histogram_needs_1d", {"p": [[1.0, 2.0], [2.0, 3.0]],
                                             "q": [[1.0, 2.0], [0.0, 1.0]],
                                             "method": "histogram"},
                      "bad_parameter", "method"),
        samples_error("knn_k_too_large", {"p": one, "q": one,
                                           "method": "knn", "k": 3},
                      "bad_parameter", "k"),
        samples_error("knn_duplicates", {"p": [0.0, 1.0, 1.0, 5.0],
                                         "q": [0.5, 2.0, 3.0], "method": "knn",
                                         "k": 1},
                      "infinite_divergence", "p[1]"),
    ]
    return out


def write_samples():
    path = os.path.join(HERE, "samples", "continuous.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cases = samples_cases()
    with open(path, "w") as f:
        json.dump({"generator": "tests/vectors/gen_continuous.py",
                   "endpoint": "/divergence/samples", "cases": cases}, f,
                  indent=1, allow_nan=False)
        f.write("\n")
    print("samples: %d cases -> %s" % (len(cases), os.path.relpath(path)))


def cases():
    write_samples()
    return gaussian_kl_cases()
