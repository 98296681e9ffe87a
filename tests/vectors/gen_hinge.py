"""Reference vectors for hinge and multiclass_hinge (API.md).

hinge and the one_vs_all and crammer_singer variants are the contract's
formulas written in torch with autograd (relu, whose derivative at 0 is 0);
weston_watkins is torch.nn.functional.multi_margin_loss itself."""
import torch
import torch.nn.functional as F

import common as c


def reduce(per, reduction):
    return per.mean() if reduction == "mean" else per.sum()


def hinge_case(name, scores, labels, reduction, margin=None, p=None):
    req = {"scores": scores, "labels": labels, "reduction": reduction}
    if margin is not None:
        req["margin"] = margin
    if p is not None:
        req["p"] = p
    s = c.leaf(torch.tensor(scores))
    y = torch.tensor(labels, dtype=torch.float64)
    m = 1.0 if margin is None else margin
    per = torch.relu(m - y * s) ** (1 if p is None else p)
    loss = reduce(per, reduction)
    g = c.grads(loss, scores=s)
    return c.case(name, "hinge", req, loss, per, g)


def argmax_low(row):
    """Arg-max with ties to the lowest index."""
    best = 0
    for j in range(1, len(row)):
        if row[j] > row[best]:
            best = j
    return best


def mc_per_sample(s, labels, variant, margin, p):
    n, k = s.shape
    y = torch.tensor(labels)
    if variant == "weston_watkins":
        return F.multi_margin_loss(s, y, p=p, margin=margin, reduction="none")
    if variant == "one_vs_all":
        sigma = -torch.ones(n, k)
        sigma[torch.arange(n), y] = 1.0
        return (torch.relu(margin - sigma * s) ** p).sum(1)
    rows = []
    for i in range(n):
        others = [j for j in range(k) if j != labels[i]]
        if not others:
            rows.append(s[i, 0] * 0.0)
            continue
        r = max(others, key=lambda j: (float(s[i, j]), -j))
        rows.append(torch.relu(margin + s[i, r] - s[i, labels[i]]) ** p)
    return torch.stack(rows)


def mc_case(name, scores, labels, reduction, variant=None, margin=None,
            p=None):
    req = {"scores": scores, "labels": labels, "reduction": reduction}
    for key, val in (("variant", variant), ("margin", margin), ("p", p)):
        if val is not None:
            req[key] = val
    s = c.leaf(torch.tensor(scores))
    per = mc_per_sample(s, labels, variant or "one_vs_all",
                        1.0 if margin is None else margin,
                        1 if p is None else p)
    loss = reduce(per, reduction)
    g = c.grads(loss, scores=s)
    hits = [argmax_low(row) == y for row, y in zip(scores, labels)]
    acc = sum(hits) / len(hits)
    return c.case(name, "multiclass_hinge", req, loss, per, g,
                  {"accuracy": acc})


def hinge_cases():
    g = c.gen(11)
    out = []
    for p in (1, 2):
        for red in ("mean", "sum"):
            for margin in (None, 0.5):
                s = c.randn(g, 7, scale=1.5).tolist()
                y = [1 if b else -1 for b in
                     (c.randint(g, 2, 7) == 1).tolist()]
                out.append(hinge_case("hinge p%d %s margin %s" % (
                    p, red, margin), s, y, red, margin, p))
    out.append(hinge_case("hinge defaults", [0.3, -2.0, 1.7, 0.1],
                          [1, -1, -1, 1], "mean"))
    out.append(hinge_case("hinge n=1", [0.25], [-1], "sum", 2.0, 2))
    out.append(hinge_case("hinge kinks (z = 0 has derivative 0)",
                          [1.0, -1.0, 0.5, -0.5], [1, -1, 1, -1], "mean",
                          1.0, 1))
    out.append(hinge_case("hinge negative margin", [0.3, -0.2, -1.0],
                          [1, 1, -1], "sum", -0.25, 1))
    out.append(hinge_case("hinge large scores", [1e6, -1e6, 3e5],
                          [-1, -1, -1], "mean", 1.0, 2))
    return out


def hinge_errors():
    s = [0.1, 0.2, 0.3]
    base = {"scores": s, "labels": [1, -1, 1]}
    return [
        c.error_case("hinge label 0", "hinge",
                     dict(base, labels=[1, -1, 0]), "label_out_of_range",
                     "labels[2]"),
        c.error_case("hinge label 2", "hinge",
                     dict(base, labels=[2, -1, 1]), "label_out_of_range",
                     "labels[0]"),
        c.error_case("hinge p 3", "hinge", dict(base, p=3),
                     "bad_parameter", "p"),
        c.error_case("hinge p 0", "hinge", dict(base, p=0),
                     "bad_parameter", "p"),
        c.error_case("hinge empty", "hinge", {"scores": [], "labels": []},
                     "empty_batch", "scores"),
    ]


def mc_cases():
    g = c.gen(23)
    out = []
    for variant in ("one_vs_all", "weston_watkins", "crammer_singer"):
        for p in (1, 2):
            for red in ("mean", "sum"):
                s = c.randn(g, 5, 4, scale=1.2).tolist()
                y = c.randint(g, 4, 5).tolist()
                out.append(mc_case("%s p%d %s" % (variant, p, red), s, y,
                                   red, variant, 0.8 if p == 2 else None, p))
        out.append(mc_case("%s K=2 n=1" % variant, [[0.4, -0.3]], [1],
                           "mean", variant, 1.0, 1))
        out.append(mc_case("%s ties" % variant,
                           [[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, -1.0, 2.0],
                            [0.5, 0.5, 0.5, 0.5], [3.0, 1.0, 3.0, 2.0]],
                           [1, 0, 3, 1], "sum",
                           variant, 1.0, 1))
        out.append(mc_case("%s K=1" % variant, [[0.2], [-0.7]], [0, 0],
                           "mean", variant, 1.0, 2))
    s = c.randn(g, 6, 3).tolist()
    out.append(mc_case("multiclass defaults", s, c.randint(g, 3, 6).tolist(),
                       "mean"))
    return out


def mc_errors():
    base = {"scores": [[0.1, 0.2, 0.3], [0.0, 1.0, -1.0]], "labels": [2, 0]}
    return [
        c.error_case("multiclass label 3", "multiclass_hinge",
                     dict(base, labels=[2, 3]), "label_out_of_range",
                     "labels[1]"),
        c.error_case("multiclass label -1", "multiclass_hinge",
                     dict(base, labels=[-1, 0]), "label_out_of_range",
                     "labels[0]"),
        c.error_case("multiclass p 3", "multiclass_hinge", dict(base, p=3),
                     "bad_parameter", "p"),
        c.error_case("multiclass empty", "multiclass_hinge",
                     {"scores": [], "labels": []}, "empty_batch", "scores"),
    ]


def cases():
    return hinge_cases() + hinge_errors() + mc_cases() + mc_errors()
