"""Reference vectors for triplet.c: "triplet" (explicit and mined),
"quadruplet" and "msml".

Distances are the contract's exact ones: ||u - v|| (torch.linalg.vector_norm,
whose gradient at 0 is 0) or its square.  PyTorch's triplet_margin_loss adds
eps = 1e-6 inside pairwise_distance, so explicit triplets are computed with
F.triplet_margin_with_distance_loss and an exact distance function, and
cross-checked against the contract's formula.  Where the two conventions
differ -- a hinge at exactly 0 (the contract's gradient is 0, clamp_min's is
1) and swap ties (the contract keeps d(a, n), torch.min splits the gradient)
-- the formula is the reference.  Mined losses, quadruplet and msml have no
torch.nn.functional form: the contract's formula with autograd, selections
made on the detached distances with the lowest index winning ties."""
import torch
import torch.nn.functional as F

import common as C

EUC, SQ = "euclidean", "squared_euclidean"


def dist(u, v, kind):
    diff = u - v
    if kind == EUC:
        return torch.linalg.vector_norm(diff, dim=-1)
    return (diff * diff).sum(-1)


def reduced(per, count, reduction):
    total = per.sum()
    if reduction == "sum":
        return total
    return total / count if count > 0 else total * 0.0


def request(params, **inputs):
    req = dict(inputs)
    req.update({k: v for k, v in params.items() if v is not None})
    return req


# ---- explicit triplets ------------------------------------------------------

def triplet_formula(a, p, n, margin, kind, swap):
    dap, dan = dist(a, p, kind), dist(a, n, kind)
    if swap:
        dpn = dist(p, n, kind)
        dan = torch.where(dpn < dan, dpn, dan)
    return torch.relu(dap - dan + margin)


def triplet_case(name, a, p, n, margin=None, distance=None, swap=None,
                 reduction=None, torch_check=True):
    m = 1.0 if margin is None else margin
    kind = distance or EUC
    red = reduction or "mean"
    la, lp, ln = C.leaf(a), C.leaf(p), C.leaf(n)
    per = triplet_formula(la, lp, ln, m, kind, bool(swap))
    loss = reduced(per, len(a), red)
    g = C.grads(loss, anchor=la, positive=lp, negative=ln)
    if torch_check:
        ta, tp, tn = C.leaf(a), C.leaf(p), C.leaf(n)
        tl = F.triplet_margin_with_distance_loss(
            ta, tp, tn, distance_function=lambda u, v: dist(u, v, kind),
            margin=m, swap=bool(swap), reduction=red)
        tg = C.grads(tl, anchor=ta, positive=tp, negative=tn)
        assert torch.allclose(tl, loss, rtol=1e-13, atol=1e-15), name
        for k in g:
            assert torch.allclose(tg[k], g[k], rtol=1e-12, atol=1e-14), name
    active = float((per > 0).double().mean())
    req = request(dict(margin=margin, distance=distance, swap=swap,
                       reduction=reduction), anchor=a, positive=p, negative=n)
    return C.case(name, "triplet", req, loss, per, g,
                  {"valid": len(a), "active_fraction": active})


def swapped(a, p, n, kind):
    return (dist(p, n, kind) < dist(a, n, kind)).tolist()


def extreme_case():
    """Coordinates differing by ~1e-200 and ~1e200 (Euclidean, margin 0).
    torch's vector_norm under- and overflows there, so the reference uses
    homogeneity: scaling a sample by s scales its loss by s and leaves the
    gradient unchanged."""
    s = torch.tensor([[1e-200], [1e200]])
    a0 = torch.tensor([[0., 0.], [1., 0.]])
    p0 = torch.tensor([[9., 12.], [1., 3.]])
    n0 = torch.tensor([[10., 0.], [2., 0.]])
    la, lp, ln = C.leaf(a0), C.leaf(p0), C.leaf(n0)
    per0 = triplet_formula(la, lp, ln, 0.0, EUC, False)
    g = C.grads(per0.sum(), anchor=la, positive=lp, negative=ln)
    per = per0.detach() * s[:, 0]
    req = dict(anchor=a0 * s, positive=p0 * s, negative=n0 * s, margin=0.0,
               distance=EUC, swap=False, reduction="sum")
    return C.case("triplet_extreme_scale", "triplet", req, per.sum(), per, g,
                  {"valid": 2, "active_fraction": 1.0})


def explicit_cases():
    g = C.gen(101)
    out = []
    for kind, red, margin in ((EUC, None, None), (EUC, "sum", 0.5),
                              (SQ, "mean", 2.0), (SQ, "sum", 1.0)):
        a, p, n = C.randn(g, 5, 4), C.randn(g, 5, 4), C.randn(g, 5, 4)
        out.append(triplet_case("triplet_%s_%s" % (kind, red or "default"),
                                a, p, n, margin, kind if red else None,
                                None, red))
    # swap: positives pulled towards the negatives so that d(p, n) < d(a, n)
    # for some samples and not for others.
    for kind, red in ((EUC, "mean"), (SQ, "sum"), (EUC, "sum")):
        a, p, n = C.randn(g, 6, 3), C.randn(g, 6, 3), C.randn(g, 6, 3)
        p[:3] = n[:3] + 0.3 * C.randn(g, 3, 3)
        s = swapped(a, p, n, kind)
        assert any(s) and not all(s)
        out.append(triplet_case("triplet_swap_%s_%s" % (kind, red), a, p, n,
                                1.5, kind, True, red))
    a, p, n = C.randn(g, 1, 5), C.randn(g, 1, 5), C.randn(g, 1, 5)
    out.append(triplet_case("triplet_n1", a, p, n, 1.0, EUC, False, "mean"))
    out.append(triplet_case("triplet_n1_d1", C.randn(g, 1, 1),
                            C.randn(g, 1, 1), C.randn(g, 1, 1), 0.7, SQ,
                            False, "sum"))
    # zero distances: a = p (row 0), a = n (row 1), p = n (row 2, with swap).
    a, p, n = C.randn(g, 4, 3), C.randn(g, 4, 3), C.randn(g, 4, 3)
    p[0] = a[0]
    n[1] = a[1]
    n[2] = p[2]
    a[3] = p[3] = n[3]
    for kind in (EUC, SQ):
        for sw in (False, True):
            out.append(triplet_case("triplet_zero_dist_%s_swap%d" % (kind, sw),
                                    a, p, n, 1.0, kind, sw, "mean",
                                    torch_check=False))
    # exact kink: margin 0 and d(a, p) = d(a, n) on integer coordinates.
    a = torch.tensor([[0., 0.], [1., 1.], [0., 0.]])
    p = torch.tensor([[3., 4.], [1., 3.], [0., 3.]])
    n = torch.tensor([[5., 0.], [3., 1.], [1., 0.]])
    for kind in (EUC, SQ):
        out.append(triplet_case("triplet_kink_%s" % kind, a, p, n, 0.0, kind,
                                False, "sum", torch_check=False))
    # swap tie: d(p, n) = d(a, n) exactly keeps d(a, n).
    a = torch.tensor([[0., 0.], [2., 0.]])
    p = torch.tensor([[2., 0.], [0., 1.]])
    n = torch.tensor([[1., 3.], [1., -4.]])
    for kind in (EUC, SQ):
        out.append(triplet_case("triplet_swap_tie_%s" % kind, a, p, n, 7.0,
                                kind, True, "mean", torch_check=False))
    out.append(extreme_case())
    return out


def explicit_errors():
    g = C.gen(102)
    a, p, n = C.randn(g, 2, 3), C.randn(g, 2, 3), C.randn(g, 2, 3)
    base = dict(anchor=a, positive=p, negative=n)
    return [
        C.error_case("triplet_margin_negative", "triplet",
                     dict(base, margin=-0.5), "bad_parameter", "margin"),
        C.error_case("triplet_bad_distance", "triplet",
                     dict(base, distance="manhattan"), "bad_parameter",
                     "distance"),
        C.error_case("triplet_empty", "triplet",
                     dict(anchor=[], positive=[], negative=[]),
                     "empty_batch", "anchor"),
    ]


# ---- mined triplets ---------------------------------------------------------

def dist_matrix(e, kind):
    return dist(e[:, None, :], e[None, :, :], kind)


def hard_select(dm, labels):
    """Per anchor (p, n) or None: farthest positive, nearest negative."""
    out = []
    for i in range(len(labels)):
        p = q = None
        for j in range(len(labels)):
            if labels[j] != labels[i]:
                if q is None or dm[i, j] < dm[i, q]:
                    q = j
            elif j != i and (p is None or dm[i, j] > dm[i, p]):
                p = j
        out.append(None if p is None or q is None else (p, q))
    return out


def mined(e, labels, margin, kind, mining):
    dm = dist_matrix(e, kind)
    dd = dm.detach()
    n = len(labels)
    per, valid, active = [], 0, 0
    for i in range(n):
        if mining == "batch_hard":
            sel = hard_select(dd, labels)[i]
            trip = [sel] if sel else []
        else:
            trip = [(p, q) for p in range(n) for q in range(n)
                    if p != i and labels[p] == labels[i]
                    and labels[q] != labels[i]]
        li = e.sum() * 0.0
        for p, q in trip:
            z = torch.relu(dm[i, p] - dm[i, q] + margin)
            valid += 1
            active += int(z.item() > 0)
            li = li + z
        per.append(li)
    return torch.stack(per), valid, active


def mined_case(name, e, labels, margin=None, distance=None, mining=None,
               reduction=None):
    m = 1.0 if margin is None else margin
    le = C.leaf(e)
    per, valid, active = mined(le, labels, m, distance or EUC,
                               mining or "batch_hard")
    loss = reduced(per, valid, reduction or "mean")
    g = C.grads(loss, embeddings=le)
    req = request(dict(margin=margin, distance=distance, mining=mining,
                       reduction=reduction), embeddings=e, labels=labels)
    frac = active / valid if valid else float("nan")
    return C.case(name, "triplet", req, loss, per, g,
                  {"valid": valid, "active_fraction": frac})


def mined_cases():
    g = C.gen(201)
    out = []
    mixed = [0, 0, 1, 1, 1, 2, 2, 3]          # class 3 is a singleton
    odd = [-5, 7, 7, -5, 100, 100, 3, 7]     # arbitrary integers
    for mining in ("batch_hard", "batch_all"):
        for kind, red, labels, margin in ((EUC, "mean", mixed, 1.0),
                                          (EUC, "sum", odd, 0.3),
                                          (SQ, "mean", odd, 2.0),
                                          (SQ, "sum", mixed, 0.5)):
            e = C.randn(g, len(labels), 3)
            out.append(mined_case("mined_%s_%s_%s" % (mining, kind, red), e,
                                  labels, margin, kind, mining, red))
    e = C.randn(g, 6, 2)
    out.append(mined_case("mined_defaults", e, [1, 2, 1, 2, 3, 3]))
    # ties on integer coordinates: anchor 0 has positives 1 and 2 at equal
    # distance 5, and negatives 3 and 4 at equal distance 1.
    e = torch.tensor([[0., 0.], [3., 4.], [5., 0.], [1., 0.], [0., 1.],
                      [0., -5.], [4., 3.]])
    lab = [0, 0, 0, 1, 1, 0, 1]
    for mining in ("batch_hard", "batch_all"):
        for kind in (EUC, SQ):
            out.append(mined_case("mined_ties_%s_%s" % (mining, kind), e, lab,
                                  1.0, kind, mining, "mean"))
    # duplicate embeddings: zero distances between positives and negatives.
    e = C.randn(g, 6, 3)
    e[1] = e[0]
    e[3] = e[0]
    e[5] = e[4]
    lab = [0, 0, 1, 1, 2, 2]
    for mining in ("batch_hard", "batch_all"):
        for kind in (EUC, SQ):
            out.append(mined_case("mined_duplicates_%s_%s" % (mining, kind),
                                  e, lab, 0.5, kind, mining, "sum"))
    # nothing valid: all singletons, a single class, a single embedding.
    for mining in ("batch_hard", "batch_all"):
        out.append(mined_case("mined_all_singletons_%s" % mining,
                              C.randn(g, 4, 2), [4, 3, 2, 1], 1.0, EUC,
                              mining, "mean"))
        out.append(mined_case("mined_one_class_%s" % mining, C.randn(g, 3, 2),
                              [9, 9, 9], 1.0, SQ, mining, "mean"))
        out.append(mined_case("mined_n1_%s" % mining, C.randn(g, 1, 2), [0],
                              1.0, EUC, mining, "sum"))
    # every anchor inactive: classes far apart.
    e = torch.tensor([[0., 0.], [0.1, 0.], [10., 0.], [10., 0.2]])
    for mining in ("batch_hard", "batch_all"):
        out.append(mined_case("mined_inactive_%s" % mining, e, [0, 0, 1, 1],
                              1.0, EUC, mining, "mean"))
    return out


def mined_errors():
    g = C.gen(202)
    e = C.randn(g, 3, 2)
    return [
        C.error_case("mined_margin_negative", "triplet",
                     dict(embeddings=e, labels=[0, 1, 0], margin=-1.0),
                     "bad_parameter", "margin"),
        C.error_case("mined_bad_mining", "triplet",
                     dict(embeddings=e, labels=[0, 1, 0], mining="random"),
                     "bad_parameter", "mining"),
        C.error_case("mined_empty", "triplet", dict(embeddings=[], labels=[]),
                     "empty_batch", "embeddings"),
    ]


# ---- quadruplet -------------------------------------------------------------

def quad_case(name, a, p, n, n2, margin=None, margin2=None, distance=None,
              reduction=None):
    m1 = 1.0 if margin is None else margin
    m2 = 0.5 if margin2 is None else margin2
    kind = distance or SQ
    ls = [C.leaf(x) for x in (a, p, n, n2)]
    dap = dist(ls[0], ls[1], kind)
    per = (torch.relu(dap - dist(ls[0], ls[2], kind) + m1)
           + torch.relu(dap - dist(ls[2], ls[3], kind) + m2))
    loss = reduced(per, len(a), reduction or "mean")
    g = C.grads(loss, anchor=ls[0], positive=ls[1], negative=ls[2],
                negative2=ls[3])
    req = request(dict(margin=margin, margin2=margin2, distance=distance,
                       reduction=reduction),
                  anchor=a, positive=p, negative=n, negative2=n2)
    return C.case(name, "quadruplet", req, loss, per, g)


def quad_cases():
    g = C.gen(301)
    out = []
    for kind, red, m1, m2 in ((None, None, None, None), (EUC, "sum", 0.8, 0.3),
                              (EUC, "mean", 2.0, 1.0), (SQ, "sum", 3.0, 0.0)):
        xs = [C.randn(g, 5, 3, scale=0.8) for _ in range(4)]
        out.append(quad_case("quadruplet_%s_%s" % (kind or "default",
                                                   red or "default"),
                             *xs, m1, m2, kind, red))
    xs = [C.randn(g, 1, 2) for _ in range(4)]
    out.append(quad_case("quadruplet_n1", *xs, 1.0, 0.5, EUC, "mean"))
    # zero distances: a = p, a = n, n = n2.
    a, p, n, n2 = [C.randn(g, 3, 2) for _ in range(4)]
    p[0] = a[0]
    n[1] = a[1]
    n2[2] = n[2]
    for kind in (EUC, SQ):
        out.append(quad_case("quadruplet_zero_dist_%s" % kind, a, p, n, n2,
                             1.0, 0.5, kind, "sum"))
    # one hinge active, the other exactly at its kink (margin2 = 0, equal
    # distances on integer coordinates).
    a = torch.tensor([[0., 0.]])
    p = torch.tensor([[3., 4.]])
    n = torch.tensor([[1., 0.]])
    n2 = torch.tensor([[1., 5.]])
    for kind in (EUC, SQ):
        out.append(quad_case("quadruplet_kink_%s" % kind, a, p, n, n2, 1.0,
                             0.0, kind, "mean"))
    return out


def quad_errors():
    g = C.gen(302)
    xs = dict(anchor=C.randn(g, 2, 2), positive=C.randn(g, 2, 2),
              negative=C.randn(g, 2, 2), negative2=C.randn(g, 2, 2))
    return [
        C.error_case("quadruplet_margin2_negative", "quadruplet",
                     dict(xs, margin2=-0.1), "bad_parameter", "margin2"),
        C.error_case("quadruplet_margin_negative", "quadruplet",
                     dict(xs, margin=-2.0), "bad_parameter", "margin"),
        C.error_case("quadruplet_empty", "quadruplet",
                     dict(anchor=[], positive=[], negative=[], negative2=[]),
                     "empty_batch", "anchor"),
    ]


# ---- msml -------------------------------------------------------------------

def msml_select(dd, labels):
    pos = neg = None
    n = len(labels)
    for i in range(n):
        for j in range(i + 1, n):
            if labels[i] == labels[j]:
                if pos is None or dd[i, j] > dd[pos]:
                    pos = (i, j)
            elif neg is None or dd[i, j] < dd[neg]:
                neg = (i, j)
    return pos, neg


def msml_case(name, e, labels, margin=None, distance=None, reduction=None):
    m = 1.0 if margin is None else margin
    le = C.leaf(e)
    dm = dist_matrix(le, distance or EUC)
    pos, neg = msml_select(dm.detach(), labels)
    if pos is None or neg is None:
        loss = le.sum() * 0.0
    else:
        loss = torch.relu(dm[pos] - dm[neg] + m)
    g = C.grads(loss, embeddings=le)
    req = request(dict(margin=margin, distance=distance, reduction=reduction),
                  embeddings=e, labels=labels)
    return C.case(name, "msml", req, loss, None, g)


def msml_cases():
    g = C.gen(401)
    out = [
        msml_case("msml_default", C.randn(g, 7, 3), [0, 1, 0, 2, 1, 2, 0]),
        msml_case("msml_euclidean_sum", C.randn(g, 6, 2), [5, -1, 5, -1, 8, 8],
                  0.5, EUC, "sum"),
        msml_case("msml_squared", C.randn(g, 6, 4), [0, 0, 1, 1, 2, 2], 1.5,
                  SQ, "mean"),
        msml_case("msml_no_positive_pair", C.randn(g, 4, 2), [0, 1, 2, 3]),
        msml_case("msml_no_negative_pair", C.randn(g, 4, 2), [7, 7, 7, 7],
                  1.0, SQ),
        msml_case("msml_n1", C.randn(g, 1, 2), [0]),
        msml_case("msml_inactive", torch.tensor([[0., 0.], [0.2, 0.],
                                                 [9., 0.], [9., 0.1]]),
                  [0, 0, 1, 1], 1.0, EUC),
    ]
    # ties on integer coordinates: positive pairs (0, 1) and (0, 4) at the
    # largest distance 5, negative pairs (0, 2) and (0, 3) at the smallest 1.
    e = torch.tensor([[0., 0.], [3., 4.], [1., 0.], [0., 1.], [5., 0.]])
    lab = [0, 0, 1, 1, 0]
    for kind in (EUC, SQ):
        out.append(msml_case("msml_ties_%s" % kind, e, lab, 1.0, kind))
    # the hardest positive and negative pairs share embedding 0; duplicates.
    e = torch.tensor([[0., 0.], [4., 0.], [0.5, 0.], [0., 0.], [9., 9.]])
    for kind in (EUC, SQ):
        out.append(msml_case("msml_shared_%s" % kind, e, [0, 0, 1, 0, 2], 1.0,
                             kind))
    return out


def msml_errors():
    g = C.gen(402)
    e = C.randn(g, 3, 2)
    return [
        C.error_case("msml_margin_negative", "msml",
                     dict(embeddings=e, labels=[0, 1, 0], margin=-3.0),
                     "bad_parameter", "margin"),
        C.error_case("msml_empty", "msml", dict(embeddings=[], labels=[]),
                     "empty_batch", "embeddings"),
    ]


def cases():
    return (explicit_cases() + explicit_errors() + mined_cases()
            + mined_errors() + quad_cases() + quad_errors() + msml_cases()
            + msml_errors())
