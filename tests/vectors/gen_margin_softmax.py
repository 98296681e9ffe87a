"""Reference vectors for l_softmax and a_softmax (API.md), written as the
contract's formula in torch float64 with autograd.  The interval index k is
computed without gradient, so it is held constant as the contract says; T_m
is the explicit Chebyshev polynomial (power-basis coefficients), and a target
logit whose |w_y||x| is 0 is the constant 0."""
import math

import numpy.polynomial.chebyshev as npcheb
import torch
import torch.nn.functional as F

import common as C

DEFAULT_MARGIN = {"l_softmax": 2, "a_softmax": 4}


def chebyshev(c, m):
    """T_m(c) from its power-basis coefficients, by Horner's rule."""
    coef = npcheb.cheb2poly([0] * m + [1])
    t = torch.zeros_like(c)
    for a in reversed(coef):
        t = t * c + float(a)
    return t


def interval(c, m):
    with torch.no_grad():
        theta = float(torch.acos(c.clamp(-1.0, 1.0)))
    return min(max(int(math.floor(m * theta / math.pi)), 0), m - 1)


def target_logit(w, x, m, beta, unit):
    """f_y of one sample; w is a raw row (l_softmax) or a unit row."""
    xn = x.norm()
    r = xn if unit else w.norm() * xn
    if float(r) == 0.0:
        return torch.zeros((), dtype=torch.float64)
    c = (w @ x) / r
    k = interval(c, m)
    psi = (-1) ** k * chebyshev(c, m) - 2 * k
    return (beta * r * c + r * psi) / (1 + beta)


def margin_logits(loss, X, W, y, m, beta):
    unit = loss == "a_softmax"
    Wv = W / W.norm(dim=1, keepdim=True) if unit else W
    plain = X @ Wv.T
    fy = torch.stack([target_logit(Wv[int(y[i])], X[i], m, beta, unit)
                      for i in range(X.shape[0])])
    mask = F.one_hot(y, W.shape[0]).bool()
    return torch.where(mask, fy[:, None], plain)


def make(name, loss, X, W, y, margin=None, beta=None, reduction=None):
    m = DEFAULT_MARGIN[loss] if margin is None else margin
    b = 0.0 if beta is None else beta
    X, W = C.leaf(X), C.leaf(W)
    logits = margin_logits(loss, X, W, y, m, b)
    red = reduction or "mean"
    value = F.cross_entropy(logits, y, reduction=red)
    per = F.cross_entropy(logits.detach(), y, reduction="none")
    if m == 1:
        Wv = W / W.norm(dim=1, keepdim=True) if loss == "a_softmax" else W
        plain = F.cross_entropy(X @ Wv.T, y, reduction=red)
        assert abs(float(plain) - float(value)) <= 1e-12 * abs(float(value))
    g = C.grads(value, features=X, weights=W)
    req = {"features": X, "weights": W, "labels": y}
    if margin is not None:
        req["margin"] = margin
    if beta is not None:
        req["beta"] = beta
    if reduction is not None:
        req["reduction"] = reduction
    return C.case(name, loss, req, value, per_sample=per, gradients=g)


def at_angles(g, thetas, d, k, scale=2.0):
    """Features whose angle to their target row is each of thetas (radians),
    with labels cycling through the classes."""
    W = C.randn(g, k, d)
    y = torch.arange(len(thetas)) % k
    rows = []
    for i, th in enumerate(thetas):
        w = W[int(y[i])] / W[int(y[i])].norm()
        u = C.randn(g, d)
        u = u - (u @ w) * w
        u = u / u.norm()
        rows.append(scale * (1 + 0.1 * i) *
                    (math.cos(th) * w + math.sin(th) * u))
    X = torch.stack(rows)
    for i, th in enumerate(thetas):
        c = (W[int(y[i])] @ X[i]) / (W[int(y[i])].norm() * X[i].norm())
        assert abs(float(c) - math.cos(th)) < 1e-12
    return X, W, y


def random_cases(loss, seed):
    g = C.gen(seed)
    out = []
    specs = [("m1_mean", 1, None, None), ("m1_beta_sum", 1, 0.7, "sum"),
             ("m2_mean", 2, None, "mean"), ("m2_beta_sum", 2, 1.5, "sum"),
             ("m3_sum", 3, None, "sum"), ("m3_beta_mean", 3, 0.25, None),
             ("m4_mean", 4, None, None), ("m4_beta_sum", 4, 3.0, "sum"),
             ("m8_mean", 8, 0.5, None), ("default_margin", None, None, None)]
    for name, m, beta, red in specs:
        X, W = C.randn(g, 6, 4), C.randn(g, 5, 4)
        y = C.randint(g, 5, 6)
        out.append(make(name, loss, X, W, y, m, beta, red))
    return out


def interval_cases(loss, seed):
    g = C.gen(seed)
    deg = math.pi / 180.0
    out = []
    for m, beta, red in [(2, 0.0, "mean"), (3, 0.5, "sum"), (4, 0.0, "sum"),
                         (4, 2.0, "mean"), (5, 0.0, "mean")]:
        # Two angles inside each of the m intervals [j*pi/m, (j+1)*pi/m).
        thetas = [(j + f) * math.pi / m for j in range(m) for f in (0.2, 0.7)]
        X, W, y = at_angles(g, thetas, 4, 3)
        ks = [interval((W[int(y[i])] @ X[i]) /
                       (W[int(y[i])].norm() * X[i].norm()), m)
              for i in range(len(thetas))]
        assert sorted(set(ks)) == list(range(m)), ks
        out.append(make("intervals_m%d_beta%g_%s" % (m, beta, red), loss,
                        X, W, y, m, beta, red))
    X, W, y = at_angles(g, [0.0, math.pi, 1 * deg, 179 * deg], 3, 2)
    out.append(make("collinear_m4", loss, X, W, y, 4, 0.5, "sum"))
    return out


def edge_cases(loss, seed):
    g = C.gen(seed)
    out = []
    X, W = C.randn(g, 1, 3), C.randn(g, 2, 3)
    out.append(make("n1_k2", loss, X, W, torch.tensor([1]), 3, 0.5, None))
    X, W = C.randn(g, 4, 3), C.randn(g, 3, 3)
    X[1] = 0.0
    out.append(make("zero_feature", loss, X, W, torch.tensor([0, 2, 1, 2]),
                    2, 0.5, "mean"))
    if loss == "l_softmax":
        X, W = C.randn(g, 3, 3), C.randn(g, 3, 3)
        W[1] = 0.0
        out.append(make("zero_target_row", loss, X, W,
                        torch.tensor([1, 0, 1]), 3, 0.0, "sum"))
        X, W = C.randn(g, 3, 3, scale=30.0), C.randn(g, 4, 3, scale=30.0)
    else:
        X, W = C.randn(g, 3, 3, scale=600.0), C.randn(g, 4, 3)
    out.append(make("extreme_logits", loss, X, W, torch.tensor([0, 3, 1]),
                    2, 0.0, "mean"))
    return out


def error_cases(loss, seed):
    g = C.gen(seed)
    X, W = C.randn(g, 3, 3), C.randn(g, 4, 3)
    y = [0, 2, 1]
    base = {"features": X, "weights": W}
    out = [
        C.error_case("label_negative", loss, dict(base, labels=[0, -1, 1]),
                     "label_out_of_range", "labels[1]"),
        C.error_case("label_too_big", loss, dict(base, labels=[0, 1, 4]),
                     "label_out_of_range", "labels[2]"),
        C.error_case("margin_zero", loss, dict(base, labels=y, margin=0),
                     "bad_parameter", "margin"),
        C.error_case("margin_nine", loss, dict(base, labels=y, margin=9),
                     "bad_parameter", "margin"),
        C.error_case("beta_negative", loss, dict(base, labels=y, beta=-0.5),
                     "bad_parameter", "beta"),
        C.error_case("empty_batch", loss,
                     {"features": [], "weights": W, "labels": []},
                     "empty_batch", "features"),
    ]
    if loss == "a_softmax":
        W0 = W.clone()
        W0[3] = 0.0
        out.append(C.error_case("zero_weight_row", loss,
                                {"features": X, "weights": W0, "labels": y},
                                "zero_norm", "weights[3]"))
    return out


def cases():
    out = []
    for i, loss in enumerate(("l_softmax", "a_softmax")):
        s = 100 * (i + 1)
        for fam in (random_cases, interval_cases, edge_cases, error_cases):
            for c in fam(loss, s):
                c["name"] = loss + "/" + c["name"]
                out.append(c)
            s += 1
    return out
