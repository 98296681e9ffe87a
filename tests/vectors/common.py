"""Helpers for the vector generators: deterministic inputs, float64 tensors
and the JSON shape of a case (see tests/util/vec.h)."""
import math

import torch

torch.set_default_dtype(torch.float64)


def gen(seed):
    """A seeded torch.Generator, so the vectors are reproducible."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def randn(g, *shape, scale=1.0):
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def rand(g, *shape, lo=0.0, hi=1.0):
    return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)


def randint(g, hi, n, lo=0):
    return torch.randint(lo, hi, (n,), generator=g)


def leaf(x):
    """A float64 leaf tensor that records gradients."""
    return x.detach().clone().to(torch.float64).requires_grad_(True)


def tolist(x):
    if isinstance(x, torch.Tensor):
        return x.detach().tolist()
    return x


def num(x):
    """A JSON number, or None (null) for NaN and infinities."""
    x = float(x.detach()) if isinstance(x, torch.Tensor) else float(x)
    return x if math.isfinite(x) else None


def nulls(x):
    """Nested list with non-finite entries as None."""
    if isinstance(x, torch.Tensor):
        x = x.detach().tolist()
    if isinstance(x, list):
        return [nulls(v) for v in x]
    return num(x)


def case(name, loss, request, value, per_sample=None, gradients=None,
         metrics=None, generator=None):
    expected = {"loss": num(value)}
    if per_sample is not None:
        expected["per_sample"] = nulls(per_sample)
    expected["gradients"] = {k: nulls(v) for k, v in (gradients or {}).items()}
    expected["metrics"] = {k: num(v) for k, v in (metrics or {}).items()}
    if generator is not None:
        expected["generator"] = generator
    req = {k: tolist(v) for k, v in request.items()}
    return {"name": name, "loss": loss, "request": req, "expected": expected}


def error_case(name, loss, request, code, field, status=422):
    req = {k: tolist(v) for k, v in request.items()}
    return {"name": name, "loss": loss, "request": req,
            "error": {"status": status, "code": code, "field": field}}


def grads(loss, **inputs):
    """Gradients of the scalar loss with respect to the named leaf tensors."""
    ts = list(inputs.values())
    gs = torch.autograd.grad(loss, ts, allow_unused=True)
    return {k: (g if g is not None else torch.zeros_like(t))
            for (k, t), g in zip(inputs.items(), gs)}
