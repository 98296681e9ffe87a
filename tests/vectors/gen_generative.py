"""Reference vectors for the generative losses: vae and gan (API.md).

Values come from torch.nn.functional.binary_cross_entropy and
binary_cross_entropy_with_logits; the KL term, the GAN value and the other
metrics from the contract's formulas in torch.  Gradients are autograd's:
through binary_cross_entropy_with_logits for logits, and through the clamped
logarithms written out for probabilities, because PyTorch's own BCE backward
divides by max(p(1 - p), 1e-12) instead of differentiating the clamped log
(the contract's gradient is that of the clamped function, 0 where a log is
clamped).  Each probability loss is checked against the log1p-based formula
before it is written."""
import math

import torch
import torch.nn.functional as F

from common import case, error_case, gen, grads, leaf, rand, randn

LOG_FLOOR = -100.0


def clog(p):
    """max(log p, -100), differentiable with gradient 0 where clamped."""
    keep = (torch.log(p.detach()) >= LOG_FLOOR)
    safe = torch.where(keep, p, torch.ones_like(p))
    return torch.where(keep, torch.log(safe), torch.full_like(p, LOG_FLOOR))


def clog1m(p):
    """max(log(1 - p), -100), as clog."""
    keep = (torch.log1p(-p.detach()) >= LOG_FLOOR)
    safe = torch.where(keep, p, torch.zeros_like(p))
    return torch.where(keep, torch.log1p(-safe),
                       torch.full_like(p, LOG_FLOOR))


def bce_probs_rows(r, x):
    """Per-row Bernoulli reconstruction from probabilities: the value from
    F.binary_cross_entropy, the differentiable tensor from clog/clog1m."""
    ref = F.binary_cross_entropy(r.detach(), x, reduction="none").sum(1)
    mine = -(x * clog(r) + (1 - x) * clog1m(r)).sum(1)
    assert torch.allclose(ref, mine.detach(), rtol=1e-13, atol=1e-13), \
        (ref, mine)
    return ref, mine


def reduce(v, reduction):
    return v.mean() if reduction == "mean" else v.sum()


# ---- vae -------------------------------------------------------------------

def vae(name, x, mu, logvar, recon=None, recon_logits=None,
        likelihood=None, beta=None, reduction=None):
    lik = likelihood or "bernoulli"
    b = 1.0 if beta is None else beta
    red = reduction or "mean"
    mu, logvar = leaf(mu), leaf(logvar)
    if recon_logits is not None:
        r = leaf(recon_logits)
        rec = F.binary_cross_entropy_with_logits(
            r, x, reduction="none").sum(1)
        rec_g = rec
        rkey = "recon_logits"
    elif lik == "bernoulli":
        r = leaf(recon)
        rec, rec_g = bce_probs_rows(r, x)
        rkey = "recon"
    else:
        r = leaf(recon)
        rec = 0.5 * ((x - r) ** 2).sum(1)
        rec_g = rec
        rkey = "recon"
    kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)
    per = rec.detach() + b * kl.detach()
    loss_g = reduce(rec_g + b * kl, red)
    g = grads(loss_g, **{rkey: r, "mu": mu, "logvar": logvar})
    req = {"x": x, rkey: r, "mu": mu, "logvar": logvar}
    if likelihood is not None:
        req["likelihood"] = likelihood
    if beta is not None:
        req["beta"] = beta
    if reduction is not None:
        req["reduction"] = reduction
    rec_m, kl_m = rec.detach().mean(), kl.detach().mean()
    metrics = {"reconstruction": rec_m, "kl": kl_m, "elbo": -(rec_m + kl_m)}
    return case(name, "vae", req, reduce(per, red), per_sample=per,
                gradients=g, metrics=metrics)


def vae_cases():
    g = gen(4101)
    out = []
    n, d, z = 3, 4, 2
    xb = (rand(g, n, d) > 0.5).double()
    xb[0, 1] = 0.3  # fractional targets are allowed
    out.append(vae("bernoulli_probs_mean", xb, randn(g, n, z),
                   randn(g, n, z, scale=0.5),
                   recon=rand(g, n, d, lo=0.05, hi=0.95)))
    out.append(vae("bernoulli_probs_sum_beta", rand(g, n, d),
                   randn(g, n, z), randn(g, n, z, scale=0.7),
                   recon=rand(g, n, d, lo=0.02, hi=0.98),
                   likelihood="bernoulli", beta=0.25, reduction="sum"))
    out.append(vae("bernoulli_logits_mean", xb, randn(g, n, z),
                   randn(g, n, z, scale=0.5),
                   recon_logits=randn(g, n, d, scale=3.0)))
    out.append(vae("bernoulli_logits_sum_beta", rand(g, n, d),
                   randn(g, n, z), randn(g, n, z),
                   recon_logits=randn(g, n, d, scale=2.0), beta=3.0,
                   reduction="sum"))
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.5, 1.0],
                      [0.0, 1.0, 0.25, 0.0, 1.0, 0.5]])
    lg = torch.tensor([[1000.0, -1000.0, -1000.0, 1000.0, 1000.0, 30.0],
                       [-30.0, 0.0, -1000.0, 1e-300, 40.0, -2.0]])
    out.append(vae("bernoulli_logits_extreme", x, randn(g, 2, 3),
                   randn(g, 2, 3), recon_logits=lg, reduction="sum"))
    r = torch.tensor([[0.0, 1.0, 1e-300, 1.0 - 2.0 ** -53, 1e-50, 0.5],
                      [1.0, 0.0, 1e-300, 1e-20, 1.0 - 1e-12, 0.9]])
    x = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.5, 1.0],
                      [0.3, 0.6, 1.0, 0.0, 0.0, 0.9]])
    out.append(vae("bernoulli_probs_clamped", x, randn(g, 2, 2),
                   randn(g, 2, 2), recon=r))
    out.append(vae("gaussian_mean_beta", randn(g, n, d), randn(g, n, z),
                   randn(g, n, z), recon=randn(g, n, d),
                   likelihood="gaussian", beta=2.0))
    out.append(vae("gaussian_sum_beta0", randn(g, 4, 3), randn(g, 4, 5),
                   randn(g, 4, 5, scale=2.0), recon=randn(g, 4, 3),
                   likelihood="gaussian", beta=0.0, reduction="sum"))
    out.append(vae("gaussian_n1", randn(g, 1, 1), randn(g, 1, 1),
                   randn(g, 1, 1), recon=randn(g, 1, 1),
                   likelihood="gaussian"))
    out.append(vae("bernoulli_n1_large_logvar", torch.tensor([[1.0]]),
                   torch.tensor([[3.0]]), torch.tensor([[-40.0]]),
                   recon=torch.tensor([[0.75]])))
    return out + vae_errors()


def vae_errors():
    x = [[0.0, 1.0], [1.0, 0.5]]
    r = [[0.2, 0.7], [0.9, 0.4]]
    mz = [[0.1], [-0.2]]
    base = {"x": x, "recon": r, "mu": mz, "logvar": mz}
    out = []

    def err(name, code, field, **over):
        req = dict(base)
        for k, v in over.items():
            if v is None:
                req.pop(k)
            else:
                req[k] = v
        out.append(error_case(name, "vae", req, code, field))

    # recon together with recon_logits is left out: the server rejects it
    # as conflicting_fields before the core sees it (the core's own
    # bad_parameter for it is tested in test_generative.c).
    err("vae_logits_gaussian", "bad_parameter", "recon_logits", recon=None,
        recon_logits=[[0.0, 1.0], [2.0, -1.0]], likelihood="gaussian")
    err("vae_negative_beta", "bad_parameter", "beta", beta=-0.5)
    err("vae_recon_above_one", "invalid_probability", "recon[1][0]",
        recon=[[0.2, 0.7], [1.5, 0.4]])
    err("vae_recon_negative", "invalid_probability", "recon[0][1]",
        recon=[[0.2, -1e-9], [0.5, 0.4]])
    err("vae_x_not_probability", "invalid_probability", "x[1][1]",
        x=[[0.0, 1.0], [1.0, 2.0]])
    err("vae_logits_x_not_probability", "invalid_probability", "x[0][0]",
        recon=None, recon_logits=[[0.0, 1.0], [2.0, -1.0]],
        x=[[-1.0, 1.0], [1.0, 0.0]])
    err("vae_logvar_overflow", "non_finite", "logvar[1][0]",
        logvar=[[0.1], [1000.0]])
    err("vae_mu_overflow", "non_finite", "mu[0][0]", mu=[[1e200], [0.0]])
    err("vae_gaussian_overflow", "non_finite", "recon[0][1]",
        likelihood="gaussian", x=[[0.0, 1e200], [0.0, 0.0]],
        recon=[[0.0, -1e200], [0.0, 0.0]])
    return out


# ---- gan -------------------------------------------------------------------

def gan(name, d_real, d_fake, input=None, generator_loss=None,
        reduction=None):
    probs = input == "probs"
    minimax = generator_loss == "minimax"
    red = reduction or "mean"
    lr, lf = leaf(d_real), leaf(d_fake)
    ones_r, ones_f = torch.ones_like(lr), torch.ones_like(lf)
    zeros_f = torch.zeros_like(lf)
    if probs:
        bce = F.binary_cross_entropy
        nll_real_g, nll_fake_g = -clog(lr), -clog1m(lf)
        gen_g = clog1m(lf) if minimax else -clog(lf)
        prob_r, prob_f = lr.detach(), lf.detach()
        says_r, says_f = prob_r >= 0.5, prob_f >= 0.5
    else:
        bce = F.binary_cross_entropy_with_logits
        nll_real_g = bce(lr, ones_r, reduction="none")
        nll_fake_g = bce(lf, zeros_f, reduction="none")
        gen_g = -bce(lf, zeros_f, reduction="none") if minimax \
            else bce(lf, ones_f, reduction="none")
        prob_r, prob_f = torch.sigmoid(lr.detach()), torch.sigmoid(lf.detach())
        says_r, says_f = lr.detach() >= 0, lf.detach() >= 0
    loss = bce(lr.detach(), ones_r, reduction=red) + \
        bce(lf.detach(), zeros_f, reduction=red)
    if minimax:
        gen_loss = -bce(lf.detach(), zeros_f, reduction=red)
    else:
        gen_loss = bce(lf.detach(), ones_f, reduction=red)
    loss_g = reduce(nll_real_g, red) + reduce(nll_fake_g, red)
    gen_loss_g = reduce(gen_g, red)
    assert abs(float(loss - loss_g)) <= 1e-12 * max(1.0, abs(float(loss)))
    assert abs(float(gen_loss - gen_loss_g)) <= \
        1e-12 * max(1.0, abs(float(gen_loss)))
    g = grads(loss_g, d_real=lr, d_fake=lf)
    gg = grads(gen_loss_g, d_fake=lf)["d_fake"]
    value = -(bce(lr.detach(), ones_r) + bce(lf.detach(), zeros_f))
    n, m = lr.numel(), lf.numel()
    acc = (says_r.sum() + (~says_f).sum()).double() / (n + m)
    metrics = {"value": value, "jsd_estimate": (value + math.log(4)) / 2,
               "d_real_mean": prob_r.mean(), "d_fake_mean": prob_f.mean(),
               "accuracy": acc}
    req = {"d_real": lr, "d_fake": lf}
    if input is not None:
        req["input"] = input
    if generator_loss is not None:
        req["generator_loss"] = generator_loss
    if reduction is not None:
        req["reduction"] = reduction
    generator = {"loss": float(gen_loss), "gradients": {"d_fake": gg.tolist()}}
    return case(name, "gan", req, loss, gradients=g, metrics=metrics,
                generator=generator)


def gan_cases():
    g = gen(4102)
    out = [
        gan("gan_logits_mean", randn(g, 4, scale=2.0), randn(g, 3, scale=2.0)),
        gan("gan_logits_sum_minimax", randn(g, 3, scale=2.0),
            randn(g, 5, scale=2.0), input="logits", generator_loss="minimax",
            reduction="sum"),
        gan("gan_logits_mean_minimax", randn(g, 2), randn(g, 6),
            generator_loss="minimax"),
        gan("gan_logits_sum_non_saturating", randn(g, 5), randn(g, 2),
            generator_loss="non_saturating", reduction="sum"),
    ]
    ext_r = torch.tensor([1000.0, -1000.0, 30.0, -30.0, 0.0])
    ext_f = torch.tensor([-1000.0, 1000.0, 40.0, 0.0])
    out.append(gan("gan_logits_extreme", ext_r, ext_f))
    out.append(gan("gan_logits_extreme_minimax_sum", ext_r, ext_f,
                   generator_loss="minimax", reduction="sum"))
    out.append(gan("gan_probs_mean", rand(g, 4, lo=0.02, hi=0.98),
                   rand(g, 3, lo=0.02, hi=0.98), input="probs"))
    out.append(gan("gan_probs_sum_minimax", rand(g, 3, lo=0.02, hi=0.98),
                   rand(g, 6, lo=0.02, hi=0.98), input="probs",
                   generator_loss="minimax", reduction="sum"))
    cl_r = torch.tensor([0.0, 1.0, 1e-300, 1.0 - 2.0 ** -53, 1e-50, 0.5])
    cl_f = torch.tensor([1.0, 0.0, 1e-300, 1.0 - 1e-12, 1e-20])
    out.append(gan("gan_probs_clamped", cl_r, cl_f, input="probs"))
    out.append(gan("gan_probs_clamped_minimax_sum", cl_r, cl_f,
                   input="probs", generator_loss="minimax", reduction="sum"))
    out.append(gan("gan_n1_m1", torch.tensor([0.7]), torch.tensor([-1.3])))
    out.append(gan("gan_probs_n1_m1", torch.tensor([0.5]),
                   torch.tensor([0.5]), input="probs"))
    return out + gan_errors()


def gan_errors():
    out = []
    base = {"d_real": [0.5, -1.0], "d_fake": [0.2, 0.1, 0.9]}

    def err(name, code, field, **over):
        req = dict(base)
        req.update(over)
        out.append(error_case(name, "gan", req, code, field))

    err("gan_empty_real", "empty_batch", "d_real", d_real=[])
    err("gan_empty_fake", "empty_batch", "d_fake", d_fake=[])
    err("gan_probs_above_one", "invalid_probability", "d_fake[2]",
        input="probs", d_real=[0.5, 0.1], d_fake=[0.2, 0.1, 1.25])
    err("gan_probs_negative", "invalid_probability", "d_real[0]",
        input="probs", d_real=[-0.5, 0.1])
    err("gan_logits_sum_overflow", "non_finite", "d_real",
        d_real=[1e308, -1e308, -1e308], reduction="sum")
    return out


def cases():
    return vae_cases() + gan_cases()
