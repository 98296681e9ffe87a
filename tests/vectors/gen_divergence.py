"""Reference vectors for kl, js and cross_entropy (core/divergence.c).

Values come from torch float64: F.kl_div for kl, F.cross_entropy for
cross_entropy on logits, F.log_softmax for the logits conversion, and the
contract's formulas written in torch otherwise; gradients are autograd's.

Zeros in probabilities are handled with masks (torch.where on a safe log) so
autograd returns the partial derivatives the contract defines: 0 for q_j
where p_j = 0 in kl and cross_entropy; for js, each element with a zero is
written in its exact closed form 1/2 (p_j + q_j) log 2, whose derivative is
the one-sided limit log(2)/2 where both are 0.  The one place autograd cannot
express is a derivative that is infinite: js with respect to q_j at
q_j = 0 < p_j (and to p_j at p_j = 0 < q_j); those components are set to
-inf (+inf for a base below 1) after autograd and appear as null.
"""
import math

import torch
import torch.nn.functional as F

from common import case, error_case, gen, grads, leaf, rand, randn

N, K = 3, 4


def slog(x):
    """log x where x > 0, 0 elsewhere, with a gradient that is 0 there."""
    return torch.log(torch.where(x > 0, x, torch.ones_like(x)))


def prepare(x, inp, normalize, eps):
    """Final rows v, their logs l and the mask of exact zeros."""
    k = x.shape[1]
    if inp == "probs":
        u = x / x.sum(1, keepdim=True) if normalize else x
        lu = slog(u)
    elif inp == "logits" or normalize:
        lu = F.log_softmax(x, 1)
        u = lu.exp()
    else:
        lu, u = x, x.exp()
    if eps > 0:
        v = (u + eps) / (1 + k * eps)
        return v, torch.log(v), torch.zeros_like(v, dtype=torch.bool)
    if inp == "probs":
        return u, lu, u == 0
    return u, lu, torch.zeros_like(u, dtype=torch.bool)


def js_rows(P, lP, Q, lQ):
    both = (P > 0) & (Q > 0)
    M = (P + Q) / 2
    lM = slog(M)
    full = 0.5 * P * (lP - lM) + 0.5 * Q * (lQ - lM)
    return torch.where(both, full, 0.5 * (P + Q) * math.log(2)).sum(1)


def rel_entr_rows(P, lP, zP, lQ, zQ):
    inf = torch.full_like(P, math.inf)
    return torch.where(zP, torch.zeros_like(P),
                       torch.where(zQ, inf, P * (lP - lQ))).sum(1)


def metrics(P, lP, zP, Q, lQ, zQ, base):
    c = math.log(base)
    inf = torch.full_like(P, math.inf)
    zero = torch.zeros_like(P)
    js = js_rows(P, lP, Q, lQ).clamp(min=0) / c
    ce = torch.where(zP, zero, torch.where(zQ, inf, -P * lQ)).sum(1)
    return {
        "kl_pq": (rel_entr_rows(P, lP, zP, lQ, zQ) / c).mean(),
        "kl_qp": (rel_entr_rows(Q, lQ, zQ, lP, zP) / c).mean(),
        "js": js.mean(),
        "js_distance": (js.sqrt() if c > 0 else js * math.nan).mean(),
        "cross_entropy": (ce / c).mean(),
        "entropy_p": (torch.where(zP, zero, -P * lP).sum(1) / c).mean(),
        "entropy_q": (torch.where(zQ, zero, -Q * lQ).sum(1) / c).mean(),
    }


def per_sample(loss, p, q, inp, normalize, eps, base, distance):
    P, lP, zP = prepare(p, inp, normalize, eps)
    Q, lQ, zQ = prepare(q, inp, normalize, eps)
    c = math.log(base)
    if loss == "kl":
        if inp == "probs" or eps > 0:
            rows = F.kl_div(lQ, P, reduction="none").sum(1)
        else:
            rows = F.kl_div(lQ, lP, reduction="none", log_target=True).sum(1)
    elif loss == "cross_entropy":
        if inp == "logits" and eps == 0:
            rows = F.cross_entropy(q, P, reduction="none")
        else:
            rows = -(P * lQ).sum(1)
    else:
        rows = js_rows(P, lP, Q, lQ)
    rows = rows / c
    if loss == "js" and distance:
        pos = rows > 0
        rows = torch.where(pos, torch.where(pos, rows, torch.ones_like(rows))
                           .sqrt(), torch.zeros_like(rows))
    return rows, metrics(P, lP, zP, Q, lQ, zQ, base), (P, Q)


def make(name, loss, p, q, inp="probs", normalize=False, eps=0.0, base=None,
         distance=False, reduction="mean"):
    p, q = leaf(torch.as_tensor(p)), leaf(torch.as_tensor(q))
    b = math.e if base is None else base
    rows, mets, (P, Q) = per_sample(loss, p, q, inp, normalize, eps, b,
                                    distance)
    value = rows.mean() if reduction == "mean" else rows.sum()
    inputs = {"q": q, "p": p} if loss == "js" else {"q": q}
    g = grads(value, **inputs)
    if loss == "js" and inp == "probs" and eps == 0:
        inf = -math.inf if math.log(b) > 0 else math.inf
        full = torch.full_like(P, inf)
        g["q"] = torch.where((Q == 0) & (P > 0), full, g["q"])
        g["p"] = torch.where((P == 0) & (Q > 0), full, g["p"])
    request = {"p": p, "q": q}
    if inp != "probs":
        request["input"] = inp
    if base is not None:
        request["base"] = base
    if normalize:
        request["normalize"] = True
    if eps:
        request["eps"] = eps
    if distance:
        request["distance"] = True
    if reduction != "mean":
        request["reduction"] = reduction
    return case(name, loss, request, value, per_sample=rows, gradients=g,
                metrics=mets)


def inputs(g, inp, normalize):
    if inp == "probs":
        x = rand(g, N, K, lo=0.05, hi=1.0)
        return x * 3 if normalize else x / x.sum(1, keepdim=True)
    if inp == "logits":
        return randn(g, N, K, scale=2.0)
    x = randn(g, N, K, scale=2.0)
    return x if normalize else F.log_softmax(x, 1)


OPTIONS = [
    ("mean", {}),
    ("sum", {"reduction": "sum"}),
    ("base2", {"base": 2.0}),
    ("base10_sum", {"base": 10.0, "reduction": "sum"}),
    ("normalize", {"normalize": True}),
    ("eps", {"eps": 0.01}),
    ("normalize_eps_base2", {"normalize": True, "eps": 0.05, "base": 2.0}),
]


def grid():
    out, seed = [], 100
    for loss in ("kl", "js", "cross_entropy"):
        for inp in ("probs", "logits", "log_probs"):
            for tag, opt in OPTIONS:
                seed += 1
                g = gen(seed)
                p = inputs(g, inp, opt.get("normalize", False))
                q = inputs(g, inp, opt.get("normalize", False))
                out.append(make("%s_%s_%s" % (loss, inp, tag), loss, p, q,
                                inp, **opt))
        for inp in ("probs", "logits", "log_probs"):
            if loss != "js":
                continue
            for tag, opt in (("distance", {}),
                             ("distance_base2_sum",
                              {"base": 2.0, "reduction": "sum"}),
                             ("distance_normalize_eps",
                              {"normalize": True, "eps": 0.02})):
                seed += 1
                g = gen(seed)
                p = inputs(g, inp, opt.get("normalize", False))
                q = inputs(g, inp, opt.get("normalize", False))
                out.append(make("js_%s_%s" % (inp, tag), "js", p, q, inp,
                                distance=True, **opt))
    return out


# Rows with zeros: kl and cross_entropy stay finite (p_j > 0 only where
# q_j > 0) while kl_qp is infinite; js also meets q_j = 0 < p_j.
P0 = [[0.5, 0.5, 0.0, 0.0], [0.2, 0.0, 0.8, 0.0], [0.0, 0.0, 0.0, 1.0]]
Q0 = [[0.25, 0.25, 0.25, 0.25], [0.1, 0.3, 0.6, 0.0], [0.0, 0.5, 0.0, 0.5]]
QJ = [[0.5, 0.0, 0.5, 0.0], [0.0, 0.3, 0.7, 0.0], [0.0, 0.5, 0.0, 0.5]]
P_RAW = [[1.0, 1.0, 0.0, 0.0], [2.0, 0.0, 8.0, 0.0], [0.0, 0.0, 0.0, 3.0]]
Q_RAW = [[1.0, 0.0, 1.0, 0.0], [0.0, 3.0, 7.0, 0.0], [0.0, 2.0, 0.0, 2.0]]


def edges():
    out = []
    for loss in ("kl", "js", "cross_entropy"):
        out.append(make(loss + "_zeros", loss, P0, Q0))
        out.append(make(loss + "_zeros_base2_sum", loss, P0, Q0, base=2.0,
                        reduction="sum"))
        out.append(make(loss + "_zeros_eps", loss, P0, QJ, eps=1e-3))
        out.append(make(loss + "_p_equals_q", loss, Q0, Q0))
        out.append(make(loss + "_logits_extreme", loss,
                        [[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]],
                        [[-1000.0, 1000.0, 0.0], [-1000.0, 999.0, 1000.0]],
                        inp="logits"))
        out.append(make(loss + "_tiny_probs", loss,
                        [[1e-300, 1.0], [0.5, 0.5]],
                        [[0.5, 0.5], [1e-300, 1.0]]))
        out.append(make(loss + "_n1_k2", loss, [[0.3, 0.7]], [[0.6, 0.4]]))
        out.append(make(loss + "_base_half", loss, Q0, QJ, eps=0.1,
                        base=0.5))
    out.append(make("js_zeros_q", "js", P0, QJ))
    out.append(make("js_zeros_q_normalize", "js", P_RAW, Q_RAW,
                    normalize=True))
    out.append(make("js_zeros_q_distance_base2", "js", P0, QJ, base=2.0,
                    distance=True))
    out.append(make("js_disjoint_base2", "js", [[1.0, 0.0]], [[0.0, 1.0]],
                    base=2.0))
    out.append(make("js_disjoint_distance_base2", "js", [[1.0, 0.0]],
                    [[0.0, 1.0]], base=2.0, distance=True))
    out.append(make("js_p_equals_q_distance", "js", Q0, Q0, distance=True))
    out.append(make("kl_zeros_normalize", "kl", P_RAW,
                    [[1.0, 1.0, 1.0, 1.0], [1.0, 3.0, 6.0, 0.0],
                     [0.0, 5.0, 0.0, 5.0]], normalize=True))
    out.append(make("cross_entropy_zeros_normalize", "cross_entropy", P_RAW,
                    [[1.0, 1.0, 1.0, 1.0], [1.0, 3.0, 6.0, 0.0],
                     [0.0, 5.0, 0.0, 5.0]], normalize=True))
    out.append(make("kl_logits_normalize", "kl",
                    [[1.0, 2.0, 3.0]], [[0.5, -1.0, 2.0]], inp="logits",
                    normalize=True))
    return out


def errors():
    ok = [[0.5, 0.5], [0.25, 0.75], [1.0, 0.0]]
    out = []
    for loss in ("kl", "js", "cross_entropy"):
        out.append(error_case(loss + "_negative_prob", loss,
                              {"p": [[0.5, 0.5], [1.25, -0.25], [0.5, 0.5]],
                               "q": ok}, "invalid_probability", "p[1][1]"))
        out.append(error_case(loss + "_bad_row_sum", loss,
                              {"p": ok, "q": [[0.5, 0.5], [0.5, 0.5],
                                              [0.5, 0.6]]},
                              "invalid_probability", "q[2]"))
        out.append(error_case(loss + "_zero_row_normalize", loss,
                              {"p": [[1.0, 2.0], [0.0, 0.0], [1.0, 1.0]],
                               "q": [[1.0, 1.0]] * 3, "normalize": True},
                              "invalid_probability", "p[1]"))
        out.append(error_case(loss + "_log_probs_unnormalized", loss,
                              {"p": [[-0.6931471805599453] * 2] * 2,
                               "q": [[-0.6931471805599453] * 2,
                                     [-0.5, -0.5]], "input": "log_probs"},
                              "invalid_probability", "q[1]"))
        for bad in (0.0, 1.0, -2.0):
            out.append(error_case("%s_base_%g" % (loss, bad), loss,
                                  {"p": ok, "q": ok, "base": bad},
                                  "bad_parameter", "base"))
        out.append(error_case(loss + "_negative_eps", loss,
                              {"p": ok, "q": ok, "eps": -0.1},
                              "bad_parameter", "eps"))
    for loss in ("kl", "cross_entropy"):
        out.append(error_case(loss + "_infinite", loss,
                              {"p": [[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]],
                               "q": [[0.5, 0.5], [1.0, 0.0], [1.0, 0.0]]},
                              "infinite_divergence", "q[1]"))
    out.append(error_case("js_distance_base_below_1", "js",
                          {"p": ok, "q": ok, "distance": True, "base": 0.5},
                          "bad_parameter", "base"))
    return out


def cases():
    return grid() + edges() + errors()
