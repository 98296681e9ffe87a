"""Reference vectors for softmax (API.md): torch.nn.functional.cross_entropy
itself for every combination of labels/targets, weight, ignore_index,
label_smoothing and reduction; per_sample is its reduction='none' output.

Where every counted label is ignored or has weight 0, PyTorch's "mean" is NaN
and the contract's is 0 with zero gradients; those cases are written out by
hand below."""
import torch
import torch.nn.functional as F

import common as c

K = 4


def argmax_low(row):
    """Arg-max with ties to the lowest index."""
    best = 0
    for j in range(1, len(row)):
        if row[j] > row[best]:
            best = j
    return best


def metrics(logits, labels, targets, ignore_index):
    z = torch.tensor(logits)
    ent = -(torch.softmax(z, 1) * torch.log_softmax(z, 1)).sum(1).mean()
    hits = counted = 0
    for i, row in enumerate(logits):
        if targets is not None:
            truth = argmax_low(targets[i])
        elif labels[i] == ignore_index:
            continue
        else:
            truth = labels[i]
        counted += 1
        hits += argmax_low(row) == truth
    acc = hits / counted if counted else float("nan")
    return {"accuracy": acc, "mean_entropy": ent}


def request(logits, labels, targets, reduction, weight, ignore_index, ls):
    req = {"logits": logits}
    if labels is not None:
        req["labels"] = labels
    if targets is not None:
        req["targets"] = targets
    if weight is not None:
        req["weight"] = weight
    if ignore_index is not None:
        req["ignore_index"] = ignore_index
    if ls is not None:
        req["label_smoothing"] = ls
    req["reduction"] = reduction
    return req


def ce_case(name, logits, labels=None, targets=None, reduction="mean",
            weight=None, ignore_index=None, ls=None):
    req = request(logits, labels, targets, reduction, weight, ignore_index, ls)
    z = c.leaf(torch.tensor(logits))
    tgt = torch.tensor(labels) if labels is not None else torch.tensor(targets)
    kw = {"weight": None if weight is None else torch.tensor(weight),
          "ignore_index": -100 if ignore_index is None else ignore_index,
          "label_smoothing": 0.0 if ls is None else ls}
    per = F.cross_entropy(z, tgt, reduction="none", **kw)
    loss = F.cross_entropy(z, tgt, reduction=reduction, **kw)
    if torch.isnan(loss):
        # The contract's answer where PyTorch divides 0 by 0.
        loss = torch.zeros(())
        g = {"logits": torch.zeros_like(z)}
    else:
        g = c.grads(loss, logits=z)
    m = metrics(logits, labels, targets,
                -100 if ignore_index is None else ignore_index)
    return c.case(name, "softmax", req, loss, per, g, m)


def rows(g, n, k=K, scale=1.5):
    return c.randn(g, n, k, scale=scale).tolist()


def probs(g, n, k=K):
    return torch.softmax(c.randn(g, n, k, scale=2.0), 1).tolist()


def label_cases(g):
    out = []
    w = c.rand(g, K, lo=0.2, hi=2.0).tolist()
    for red in ("mean", "sum"):
        y = c.randint(g, K, 6).tolist()
        out.append(ce_case("labels " + red, rows(g, 6), y, reduction=red))
        out.append(ce_case("labels weight " + red, rows(g, 6), y,
                           reduction=red, weight=w))
        out.append(ce_case("labels default ignore_index " + red, rows(g, 6),
                           [1, -100, 3, 0, -100, 2], reduction=red))
        out.append(ce_case("labels ignore_index 2 weight " + red, rows(g, 6),
                           [2, 1, 2, 0, 3, 2], reduction=red, weight=w,
                           ignore_index=2))
        out.append(ce_case("labels smoothing " + red, rows(g, 6), y,
                           reduction=red, ls=0.15))
        out.append(ce_case("labels smoothing weight ignore " + red,
                           rows(g, 6), [0, 3, -1, 1, 2, -1], reduction=red,
                           weight=w, ignore_index=-1, ls=0.3))
    return out


def target_cases(g):
    out = []
    w = c.rand(g, K, lo=0.2, hi=2.0).tolist()
    for red in ("mean", "sum"):
        out.append(ce_case("targets " + red, rows(g, 5), targets=probs(g, 5),
                           reduction=red))
        out.append(ce_case("targets weight " + red, rows(g, 5),
                           targets=probs(g, 5), reduction=red, weight=w))
        out.append(ce_case("targets smoothing " + red, rows(g, 5),
                           targets=probs(g, 5), reduction=red, ls=0.2))
        out.append(ce_case("targets weight smoothing " + red, rows(g, 5),
                           targets=probs(g, 5), reduction=red, weight=w,
                           ls=0.05))
    onehot = [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5],
              [0.0, 0.0, 0.0, 1.0]]
    out.append(ce_case("targets with zeros", rows(g, 3), targets=onehot,
                       weight=w))
    out.append(ce_case("targets ignore_index -100 given", rows(g, 3),
                       targets=onehot, ignore_index=-100, ls=0.1))
    return out


def edge_cases(g):
    big = [[1000.0, -1000.0, 0.0, 999.0], [-1000.0, -1000.0, -1000.0, 1000.0],
           [-1000.0, 1000.0, 1000.0, -1000.0]]
    ties = [[0.5, 2.0, 2.0, 1.0], [3.0, 3.0, 3.0, 3.0], [1.0, 0.0, 1.0, 0.0]]
    return [
        ce_case("extreme logits labels", big, [1, 3, 2], ls=0.1),
        ce_case("extreme logits targets sum", big, targets=[
            [0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25],
            [0.0, 0.5, 0.5, 0.0]], reduction="sum"),
        ce_case("n=1 K=2", [[0.3, -1.2]], [1]),
        ce_case("n=1 K=2 targets", [[0.3, -1.2]], targets=[[0.2, 0.8]],
                ls=0.5),
        ce_case("ties lowest index wins", ties, [1, 0, 2]),
        ce_case("ties targets", ties, targets=[
            [0.0, 0.5, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25],
            [0.4, 0.2, 0.4, 0.0]]),
        ce_case("all ignored mean", rows(g, 3), [-100, -100, -100]),
        ce_case("all ignored sum", rows(g, 3), [-100, -100, -100],
                reduction="sum"),
        ce_case("all ignored smoothing weight mean", rows(g, 2), [1, 1],
                weight=[1.0, 2.0, 0.5, 1.0], ignore_index=1, ls=0.2),
        ce_case("zero weight of every counted label mean", rows(g, 3),
                [0, 2, 0], weight=[0.0, 1.0, 0.0, 3.0], ls=0.1),
        ce_case("zero weight of every counted label sum", rows(g, 3),
                [0, 2, 0], weight=[0.0, 1.0, 0.0, 3.0], ls=0.1,
                reduction="sum"),
    ]


def error_cases():
    z = [[0.1, 0.2, 0.3], [0.0, 1.0, -1.0], [2.0, 0.5, 0.5]]
    q = [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.1, 0.1, 0.8]]
    e = c.error_case
    return [
        e("label out of range", "softmax", {"logits": z, "labels": [0, 3, 1]},
          "label_out_of_range", "labels[1]"),
        e("negative label", "softmax", {"logits": z, "labels": [-1, 0, 1]},
          "label_out_of_range", "labels[0]"),
        e("-100 is not ignored", "softmax",
          {"logits": z, "labels": [0, 1, -100], "ignore_index": -1},
          "label_out_of_range", "labels[2]"),
        e("negative probability", "softmax",
          {"logits": z, "targets": [q[0], [0.6, 0.6, -0.2], q[2]]},
          "invalid_probability", "targets[1][2]"),
        e("row does not sum to 1", "softmax",
          {"logits": z, "targets": [q[0], q[1], [0.1, 0.1, 0.7]]},
          "invalid_probability", "targets[2]"),
        e("negative weight", "softmax",
          {"logits": z, "labels": [0, 1, 2], "weight": [1.0, -0.5, 1.0]},
          "bad_parameter", "weight[1]"),
        e("label_smoothing 1", "softmax",
          {"logits": z, "labels": [0, 1, 2], "label_smoothing": 1.0},
          "bad_parameter", "label_smoothing"),
        e("label_smoothing negative", "softmax",
          {"logits": z, "labels": [0, 1, 2], "label_smoothing": -0.1},
          "bad_parameter", "label_smoothing"),
        e("empty batch", "softmax", {"logits": [], "labels": []},
          "empty_batch", "logits"),
    ]


def cases():
    g = c.gen(31)
    return label_cases(g) + target_cases(g) + edge_cases(g) + error_cases()
