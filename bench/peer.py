"""The benchmark's peer: what a user would otherwise write to score a batch,
a FastAPI service computing the same losses with PyTorch (float64 autograd),
with lossd's request and response JSON (API.md) for softmax, triplet
(explicit triplets) and kl.

It is written the fast way a careful user would: the body is read with
Request.json() and the answer encoded with json.dumps into a plain Response,
skipping pydantic models and FastAPI's jsonable_encoder, which are several
times slower on large arrays.

Run: /usr/bin/python3 -m uvicorn peer:app --app-dir bench --workers 2
"""
import json
import math

import torch
import torch.nn.functional as F
from fastapi import FastAPI, Request
from fastapi.responses import Response

torch.set_num_threads(1)  # two workers on two cores, like lossd's pool
app = FastAPI()

COMMON = {"reduction", "gradients", "per_sample", "precision"}
FIELDS = {
    "softmax": COMMON | {"logits", "labels", "targets", "weight",
                         "ignore_index", "label_smoothing"},
    "triplet": COMMON | {"anchor", "positive", "negative", "margin",
                         "distance", "swap"},
    "kl": COMMON | {"p", "q", "input", "base", "normalize", "eps"},
}


class Unprocessable(Exception):
    def __init__(self, code, message, field=None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def error(status, code, message, field=None):
    body = {"error": {"code": code, "message": message}}
    if field is not None:
        body["error"]["field"] = field
    return Response(json.dumps(body), status, media_type="application/json")


def scalar(x, precision="float64"):
    x = float(x)
    if precision == "float32":
        x = float(torch.tensor(x, dtype=torch.float32))
    return x if math.isfinite(x) else None


def tensor_json(t, precision):
    if precision == "float32":
        t = t.to(torch.float32)
    if not bool(torch.isfinite(t).all()):
        t = t.to(torch.float64)
        return [[None if not math.isfinite(v) else v for v in row]
                if isinstance(row, list) else scalar(row)
                for row in t.tolist()]
    return t.tolist()


def leaf(body, name):
    if name not in body:
        raise Unprocessable("missing_field", f"{name} is required.", name)
    t = torch.tensor(body[name], dtype=torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise Unprocessable("non_finite", f"{name} has a non-finite number.",
                            name)
    return t.requires_grad_(True)


def reduce(per, reduction):
    return per.sum() if reduction == "sum" else per.mean()


def softmax(body):
    z = leaf(body, "logits")
    if "labels" in body:
        y = torch.tensor(body["labels"], dtype=torch.int64)
        truth = y
    else:
        y = torch.tensor(body["targets"], dtype=torch.float64)
        truth = y.argmax(1)
    kw = {"ignore_index": int(body.get("ignore_index", -100)),
          "label_smoothing": float(body.get("label_smoothing", 0.0))}
    if "weight" in body:
        kw["weight"] = torch.tensor(body["weight"], dtype=torch.float64)
    per = F.cross_entropy(z, y, reduction="none", **kw)
    loss = F.cross_entropy(z, y, reduction=body.get("reduction", "mean"),
                           **kw)
    with torch.no_grad():
        logp = torch.log_softmax(z, 1)
        entropy = -(logp.exp() * logp).sum(1).mean()
        counted = truth != kw["ignore_index"]
        hits = (z.argmax(1) == truth) & counted
        acc = hits.sum() / counted.sum()
    return loss, per, {"logits": z}, {"accuracy": acc,
                                      "mean_entropy": entropy}


def distance(u, v, kind):
    d2 = (u - v).pow(2).sum(1)
    return d2 if kind == "squared_euclidean" else d2.sqrt()


def triplet(body):
    a, p, n = (leaf(body, k) for k in ("anchor", "positive", "negative"))
    kind = body.get("distance", "euclidean")
    dap, dan = distance(a, p, kind), distance(a, n, kind)
    if body.get("swap", False):
        dan = torch.minimum(dan, distance(p, n, kind))
    per = torch.relu(dap - dan + float(body.get("margin", 1.0)))
    loss = reduce(per, body.get("reduction", "mean"))
    with torch.no_grad():
        metrics = {"valid": float(per.shape[0]),
                   "active_fraction": (per > 0).double().mean()}
    return loss, per, {"anchor": a, "positive": p, "negative": n}, metrics


def log_dist(x, inp, eps):
    if inp == "logits":
        return torch.log_softmax(x, 1)
    if inp == "log_probs":
        return x
    if eps > 0:
        x = (x + eps) / (1 + x.shape[1] * eps)
    return torch.log(x)


def kl(body):
    p, q = leaf(body, "p"), leaf(body, "q")
    inp, eps = body.get("input", "probs"), float(body.get("eps", 0.0))
    c = math.log(float(body.get("base", math.e)))
    lp, lq = log_dist(p, inp, eps), log_dist(q, inp, eps)
    pp, qq = lp.exp(), lq.exp()
    if bool(((pp > 0) & (qq == 0)).any()):
        raise Unprocessable("infinite_divergence", "q is 0 where p is not.",
                            "q")
    per = torch.where(pp > 0, pp * (lp - lq), torch.zeros_like(pp)).sum(1) / c
    loss = reduce(per, body.get("reduction", "mean"))
    with torch.no_grad():
        m = 0.5 * (pp + qq)
        lm = torch.log(m)
        kl_qp = torch.where(qq > 0, qq * (lq - lp), 0 * qq).sum(1) / c
        js = 0.5 * (torch.where(pp > 0, pp * (lp - lm), 0 * pp).sum(1)
                    + torch.where(qq > 0, qq * (lq - lm), 0 * qq).sum(1)) / c
        metrics = {
            "kl_pq": per.mean(), "kl_qp": kl_qp.mean(), "js": js.mean(),
            "js_distance": js.clamp(min=0).sqrt().mean(),
            "cross_entropy": (-(pp * lq).sum(1) / c).mean(),
            "entropy_p": (-torch.where(pp > 0, pp * lp, 0 * pp)
                          .sum(1) / c).mean(),
            "entropy_q": (-torch.where(qq > 0, qq * lq, 0 * qq)
                          .sum(1) / c).mean()}
    return loss, per, {"q": q}, metrics


LOSSES = {"softmax": softmax, "triplet": triplet, "kl": kl}


def run(name, body):
    unknown = sorted(set(body) - FIELDS[name])
    if unknown:
        raise Unprocessable("unknown_field", f"unknown field {unknown[0]}.",
                            unknown[0])
    loss, per, inputs, metrics = LOSSES[name](body)
    precision = body.get("precision", "float32")
    out = {"loss": scalar(loss, precision)}
    if body.get("per_sample", True):
        out["per_sample"] = tensor_json(per.detach(), precision)
    if body.get("gradients", True):
        grads = torch.autograd.grad(loss, list(inputs.values()))
        out["gradients"] = {k: tensor_json(g, precision)
                            for k, g in zip(inputs, grads)}
    out["metrics"] = {k: scalar(v, precision) for k, v in metrics.items()}
    return out


@app.post("/loss/{name}")
async def loss_endpoint(name: str, request: Request):
    if name not in LOSSES:
        return error(404, "unknown_loss",
                     f"unknown loss {name}; valid: softmax, triplet, kl.")
    try:
        body = await request.json()
    except ValueError:
        return error(400, "invalid_json", "the body is not valid JSON.")
    if not isinstance(body, dict):
        return error(400, "invalid_json", "the body is not a JSON object.")
    try:
        out = run(name, body)
    except Unprocessable as e:
        return error(422, e.code, e.message, e.field)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        return error(422, "bad_parameter", str(e))
    return Response(json.dumps(out), media_type="application/json")
