"""Reference vectors for the pair losses: contrastive (seed, hadsell,
double_margin; one or several layers) and coupled_cluster.  PyTorch has
neither, so each is the contract's formula written in torch float64, with
autograd for the gradients of the reduced loss."""
import torch

from common import case, error_case, gen, grads, leaf, randn

# ---- contrastive -----------------------------------------------------------


def _layer_terms(variant, x1, x2, y, margin, pos_margin, neg_margin):
    """Per-pair loss of one layer ([N] tensor)."""
    diff = x1 - x2
    d = (diff * diff).sum(1)
    if variant == "seed":
        return 0.5 * (y * d + (1 - y) * torch.relu(margin - d))
    if variant == "hadsell":
        # D = sqrt(d) with a zero gradient where d = 0, as the contract says.
        pos = d > 0
        dd = torch.sqrt(torch.where(pos, d, torch.ones_like(d))) * pos
        return 0.5 * (y * d + (1 - y) * torch.relu(margin - dd) ** 2)
    return 0.5 * (y * torch.relu(d - pos_margin)
                  + (1 - y) * torch.relu(neg_margin - d))


def contrastive(name, x1, x2, labels, multi=None, **params):
    """A contrastive case.  x1, x2: lists of [N][D_l] tensors (one per layer);
    the request holds [N][D] when there is one layer and multi is not set."""
    multi = len(x1) > 1 if multi is None else multi
    variant = params.get("variant", "seed")
    margin = params.get("margin", 1.0)
    pos_margin = params.get("pos_margin", 0.0)
    neg_margin = params.get("neg_margin", 1.0)
    reduction = params.get("reduction", "mean")
    y = torch.tensor(labels, dtype=torch.float64)
    l1 = [leaf(t) for t in x1]
    l2 = [leaf(t) for t in x2]
    per = sum(_layer_terms(variant, a, b, y, margin, pos_margin, neg_margin)
              for a, b in zip(l1, l2))
    loss = per.mean() if reduction == "mean" else per.sum()
    g = grads(loss, **{"a%d" % i: t for i, t in enumerate(l1 + l2)})
    g1 = [g["a%d" % i] for i in range(len(l1))]
    g2 = [g["a%d" % (i + len(l1))] for i in range(len(l2))]
    with torch.no_grad():
        dist = sum(torch.linalg.norm(a - b, dim=1) for a, b in zip(x1, x2))
        pos, neg = y == 1, y == 0
        mpos = dist[pos].mean() if pos.any() else float("nan")
        mneg = dist[neg].mean() if neg.any() else float("nan")

    def shape(ts):
        return [t.tolist() for t in ts] if multi else ts[0].tolist()

    request = {"x1": shape(x1), "x2": shape(x2), "labels": list(labels)}
    request.update(params)
    return case(name, "contrastive", request, loss, per,
                {"x1": shape(g1), "x2": shape(g2)},
                {"mean_distance_pos": mpos, "mean_distance_neg": mneg})


def _pairs(g, n, widths, scale):
    x1 = [randn(g, n, w) for w in widths]
    x2 = [a + randn(g, n, a.shape[1], scale=scale) for a in x1]
    return x1, x2


def contrastive_cases():
    g = gen(1234)
    out = []
    labels = [1, 0, 1, 0, 0, 1]
    x1, x2 = _pairs(g, 6, [4], 0.45)
    out.append(contrastive("seed_mean_default", x1, x2, labels))
    out.append(contrastive("seed_sum_margin2", x1, x2, labels,
                           variant="seed", margin=2.0, reduction="sum"))
    out.append(contrastive("hadsell_mean", x1, x2, labels, variant="hadsell"))
    out.append(contrastive("hadsell_sum_margin1.5", x1, x2, labels,
                           variant="hadsell", margin=1.5, reduction="sum"))
    out.append(contrastive("double_margin_mean_default", x1, x2, labels,
                           variant="double_margin"))
    out.append(contrastive("double_margin_sum", x1, x2, labels,
                           variant="double_margin", pos_margin=0.5,
                           neg_margin=2.5, reduction="sum"))

    # Several layers, each with its own width.
    labels = [0, 1, 1, 0, 1]
    x1, x2 = _pairs(g, 5, [4, 2, 3], 0.4)
    for v in ("seed", "hadsell", "double_margin"):
        for red in ("mean", "sum"):
            out.append(contrastive("layers3_%s_%s" % (v, red), x1, x2, labels,
                                   variant=v, reduction=red, margin=1.2,
                                   pos_margin=0.3, neg_margin=1.4))
    # One layer sent as [L][N][D].
    x1, x2 = _pairs(g, 3, [2], 0.6)
    out.append(contrastive("layers1_as_3d", x1, x2, [1, 0, 0], multi=True,
                           variant="hadsell"))

    # Zero distances: x2 = x1 on some pairs, matching and not.
    x1, x2 = _pairs(g, 4, [3], 0.5)
    x2[0][0] = x1[0][0]
    x2[0][1] = x1[0][1]
    for v in ("seed", "hadsell", "double_margin"):
        out.append(contrastive("zero_distance_%s" % v, x1, x2, [1, 0, 1, 0],
                               variant=v, pos_margin=0.2))
    # Zero distance in one layer of two.
    x1, x2 = _pairs(g, 2, [2, 3], 0.5)
    x2[1][1] = x1[1][1]
    out.append(contrastive("zero_distance_layer", x1, x2, [0, 0],
                           variant="hadsell", margin=2.0))

    # n = 1, and batches of one kind only (the other metric is null).
    x1, x2 = _pairs(g, 1, [3], 0.5)
    for v in ("seed", "hadsell", "double_margin"):
        out.append(contrastive("n1_pos_%s" % v, x1, x2, [1], variant=v))
        out.append(contrastive("n1_neg_%s" % v, x1, x2, [0], variant=v,
                               margin=3.0, neg_margin=3.0))
    x1, x2 = _pairs(g, 3, [2, 2], 0.5)
    out.append(contrastive("all_positive", x1, x2, [1, 1, 1],
                           variant="double_margin", pos_margin=0.1))
    out.append(contrastive("all_negative", x1, x2, [0, 0, 0],
                           variant="hadsell", margin=1.3))

    # Errors that the core detects.
    x1, x2 = _pairs(g, 4, [2], 0.5)
    req = {"x1": x1[0], "x2": x2[0], "labels": [1, 0, 1, 2]}
    out.append(error_case("label_2", "contrastive", req,
                          "label_out_of_range", "labels[3]"))
    req = {"x1": x1[0], "x2": x2[0], "labels": [-1, 0, 1, 1]}
    out.append(error_case("label_negative", "contrastive", req,
                          "label_out_of_range", "labels[0]"))
    for p in ("margin", "pos_margin", "neg_margin"):
        req = {"x1": x1[0], "x2": x2[0], "labels": [1, 0, 1, 0], p: -0.5}
        out.append(error_case("negative_" + p, "contrastive", req,
                              "bad_parameter", p))
    req = {"x1": x1[0], "x2": x2[0], "labels": [1, 0, 1, 0],
           "variant": "triangle"}
    out.append(error_case("unknown_variant", "contrastive", req,
                          "bad_parameter", "variant"))
    out.append(error_case("empty_batch", "contrastive",
                          {"x1": [], "x2": [], "labels": []},
                          "empty_batch", "x1"))
    return out

# ---- coupled_cluster -------------------------------------------------------


def coupled_cluster(name, positives, negatives, **params):
    margin = params.get("margin", 1.0)
    reduction = params.get("reduction", "mean")
    p = leaf(torch.as_tensor(positives, dtype=torch.float64))
    n = leaf(torch.as_tensor(negatives, dtype=torch.float64))
    c = p.mean(0)
    with torch.no_grad():
        dn = ((n - c) ** 2).sum(1).tolist()
    star = min(range(len(dn)), key=lambda j: (dn[j], j))  # lowest index on ties
    z = n[star]
    h = ((p - c) ** 2).sum(1) - ((z - c) ** 2).sum() + margin
    per = 0.5 * torch.relu(h)
    loss = per.mean() if reduction == "mean" else per.sum()
    g = grads(loss, positives=p, negatives=n)
    request = {"positives": p.detach().tolist(),
               "negatives": n.detach().tolist()}
    request.update(params)
    return case(name, "coupled_cluster", request, loss, per, g)


def coupled_cluster_cases():
    g = gen(4321)
    out = []
    pos = randn(g, 5, 3, scale=0.8)
    neg = randn(g, 4, 3, scale=1.2) + 0.5
    out.append(coupled_cluster("cc_mean_default", pos, neg))
    out.append(coupled_cluster("cc_sum_margin2", pos, neg, margin=2.0,
                               reduction="sum"))
    out.append(coupled_cluster("cc_margin0", pos, neg, margin=0.0))
    out.append(coupled_cluster("cc_margin0.3_sum", pos, neg, margin=0.3,
                               reduction="sum"))
    # Ties: c = (0, 1) exactly; negatives 1 and 2 are both nearest (d^2 = 1).
    tie_pos = [[1.0, 2.0], [-1.0, 0.0], [2.0, 1.0], [-2.0, 1.0]]
    tie_neg = [[3.0, 1.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]]
    out.append(coupled_cluster("cc_tie_lowest_index", tie_pos, tie_neg,
                               margin=4.0))
    out.append(coupled_cluster("cc_tie_sum", tie_pos, tie_neg, margin=1.5,
                               reduction="sum"))
    # Zero distances: a positive at c and the nearest negative at c.
    zpos = [[0.0, 0.0], [1.0, 1.0], [-1.0, -1.0]]
    zneg = [[2.0, 0.0], [0.0, 0.0], [0.0, -3.0]]
    out.append(coupled_cluster("cc_zero_distance", zpos, zneg, margin=1.0))
    # One positive (it is c itself) and one negative.
    out.append(coupled_cluster("cc_np1", randn(g, 1, 3), randn(g, 3, 3),
                               margin=5.0))
    out.append(coupled_cluster("cc_nn1", randn(g, 3, 2), randn(g, 1, 2),
                               margin=2.0, reduction="sum"))
    out.append(coupled_cluster("cc_np1_nn1", [[0.5, -1.0]], [[1.0, 1.0]],
                               margin=5.0))
    # Every positive inactive: loss 0 and zero gradients.
    out.append(coupled_cluster("cc_inactive", randn(g, 3, 2, scale=0.1),
                               randn(g, 2, 2) + 10.0))

    req = {"positives": [], "negatives": [[1.0, 2.0]]}
    out.append(error_case("cc_empty_positives", "coupled_cluster", req,
                          "empty_batch", "positives"))
    req = {"positives": [[1.0, 2.0]], "negatives": []}
    out.append(error_case("cc_empty_negatives", "coupled_cluster", req,
                          "empty_batch", "negatives"))
    req = {"positives": [[1.0, 2.0]], "negatives": [[0.0, 1.0]],
           "margin": -1.0}
    out.append(error_case("cc_negative_margin", "coupled_cluster", req,
                          "bad_parameter", "margin"))
    return out


def cases():
    return contrastive_cases() + coupled_cluster_cases()
