"""Restricted Boltzmann machine: binary visible pixels, binary hidden units, optional
one-hot label units; trained with persistent contrastive divergence or CD-k.

* **RBM** -- Smolensky 1986; Hinton 2002, "Training products of experts by minimizing
  contrastive divergence" (CD-k): energy E(v, h) = -v.b - h.c - v W h over binary v [D]
  and h [H], p(v) = exp(-F(v)) / Z with the free energy
  F(v) = -v.b - sum_j softplus(c_j + (v W)_j) (h summed out in closed form).
* **PCD** -- Tieleman 2008, "Training restricted Boltzmann machines using approximations
  to the likelihood gradient" (ICML): the negative phase continues ``chains`` persistent
  Gibbs chains across updates instead of restarting them at the data (CD-k, ``training =
  "cd"``).
* **Label units** -- Hinton 2006 / Larochelle & Bengio 2008, "Classification using
  discriminative restricted Boltzmann machines" (ICML): a class-conditional model adds K
  one-hot visible units y with weights U [K, H] and biases d [K],
  E(v, y, h) = E(v, h) - d_y - h.U_y, trained on the joint p(v, y) (generative training);
  ``log_prob(x, y)`` is log p(x | y) = -F(x, y) - log Z_y with Z_y the partition function of
  the label clamped to y, and ``label_log_probs`` the model's own p(y | x).
* **Likelihood** -- log Z by annealed importance sampling (:mod:`.rbm_ais`, Salakhutdinov &
  Murray 2008), so ``likelihood_kind = "estimate"``: Z-hat is unbiased, log Z-hat low in
  expectation, the NLL optimistic on average, not a bound.

**Training.** The loss is the contrastive free-energy gap
``mean F(data) - mean F(negatives)`` with the negatives detached: its gradient is
E_data[dF/dtheta] - E_negatives[dF/dtheta], the CD/PCD estimate of the gradient of the
negative log-likelihood. Its *value* is no likelihood (it hovers near 0 as the chains
follow the model); ``recon_error`` (squared error of the mean-field reconstruction, per
image) and ``free_energy`` are logged beside it. The persistent chains are buffers
(``chains_v``, ``chains_y``): they live in the state dict, so checkpoints carry them and a
resumed run continues exactly; the Gibbs noise comes from the global RNG, which the loop
checkpoints. Only a training-mode ``loss`` advances them: validation (eval mode) runs CD-k
from the data and leaves them alone.

**log Z cache.** ``log_prob`` needs log Z (one AIS per label) but not per image: the
estimate is cached under a fingerprint of the weights and the base rate (their bytes),
the label and the AIS settings (runs, distributions, seed, dtype, device). It is
recomputed whenever any of these changes -- after an optimiser step, on the EMA swap,
on load -- and reused by every batch of one evaluation. log Z is a constant of
``log_prob``: its gradient is that of -F(x) alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections import OrderedDict
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import UserError
from . import rbm_ais as ais
from .base import GenerativeModel, register
from .protocol import Phase
from .rbm_config import GibbsSampler, RBMConfig
from .sampling import SampleRNG, SamplerOptions, as_sample_rng, resolve_sampler

__all__ = ["RBM", "RBMConfig", "GibbsSampler"]

#: sweeps whose uniforms one sampling chain draws at once (a fixed number, so image k's
#: noise does not depend on how many images are drawn with it)
_CHUNK = 8
#: log Z estimates kept per model (the EMA swap alternates two sets of weights)
_CACHE_SIZE = 16
#: nats of log Z rise from the quarter to the full AIS schedule that count as "not
#: converged" (when above the runs' noise as well)
_AIS_RISE_TOLERANCE = 0.5
#: base-rate marginals are clipped away from 0 and 1 (a pixel never on in the data
#: would get an infinite bias)
_P_MIN = 1e-3


@register("rbm")
class RBM(GenerativeModel):
    """Binary RBM on images [N, C, H, W] in {0, 1} (flattened to D = C H W units)."""

    config_class = RBMConfig
    family = "Markov chain (Boltzmann machine)"
    likelihood_kind = "estimate"
    likelihood_options = ("k", "betas")  # AIS runs, intermediate distributions
    supported_data_kinds = ("binary",)
    samplers: ClassVar[dict[str, type[SamplerOptions]]] = {"gibbs": GibbsSampler}
    train_defaults: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 100}

    def __init__(self, config: RBMConfig):
        super().__init__(config)
        c = config
        if c.data_kind != "binary":
            raise UserError(f"rbm models binary pixels, not {c.data_kind} data",
                            "binarise the data with --binarize dynamic (or static)")
        d, h, k = c.dims, c.hidden, c.num_classes
        with torch.random.fork_rng(devices=[]):  # init from config.seed, global RNG untouched
            torch.manual_seed(c.seed)
            self.W = nn.Parameter(torch.randn(d, h) * c.init_std)
            self.b = nn.Parameter(torch.zeros(d))  # visible biases
            self.c = nn.Parameter(torch.zeros(h))  # hidden biases
            if k:
                self.U = nn.Parameter(torch.randn(k, h) * c.init_std)  # label weights
                self.d = nn.Parameter(torch.zeros(k))  # label biases
            # the AIS base rate (data marginals, set by init_from_data; 0 = uniform) and
            # the persistent chains (PCD's negative particles)
            self.register_buffer("base_logits", torch.zeros(d))
            self.register_buffer("chains_v", torch.bernoulli(torch.full((c.chains, d), 0.5)))
            if k:
                self.register_buffer("chains_y", torch.arange(c.chains) % k)
        self._log_z_cache: OrderedDict[tuple, ais.AISResult] = OrderedDict()

    @classmethod
    def input_kind(cls, overrides: dict[str, Any]) -> str:
        return "binary"

    def init_from_data(self, x: Tensor) -> None:
        """Base rate and visible biases from the pixel marginals of x [N, C, H, W]
        (logit of the clipped mean, Hinton's practical guide, section 8), and the
        persistent chains started from those marginals (global RNG: the loop seeds it)."""
        p = x.flatten(1).double().mean(0).clamp(_P_MIN, 1 - _P_MIN)
        logits = torch.log(p / (1 - p)).to(self.b)
        with torch.no_grad():
            self.base_logits.copy_(logits)
            self.b.copy_(logits)
            self.chains_v.copy_(torch.bernoulli(torch.sigmoid(logits).expand_as(self.chains_v)))
            if self.config.num_classes:
                self.chains_y.copy_(torch.randint(self.config.num_classes,
                                                  self.chains_y.shape))

    # ----- energies and conditionals ---------------------------------------------------
    def _check(self, x: Tensor, y: Tensor | None, binary: bool = False) -> None:
        self.check_input(x, y)
        if y is not None and y.reshape(-1).shape[0] != x.shape[0]:
            raise UserError(f"got {x.shape[0]} images but {y.numel()} labels",
                            "pass one label per image")
        if x.numel() and (x.min() < 0 or x.max() > 1):
            raise UserError("rbm expects pixel values in [0, 1]",
                            "scale the images to [0, 1] (genvision data does this)")
        if binary and bool(((x != 0) & (x != 1)).any()):
            raise UserError("rbm scores binary images, but these have values other than "
                            "0 and 1", "binarise them (--binarize static)")

    def _hidden_input(self, v: Tensor, y: Tensor | None) -> Tensor:
        """c + v W (+ U_y): v [N, D], y [N] -> [N, H], the hidden units' log-odds."""
        a = v @ self.W + self.c
        return a if y is None else a + self.U[y]

    def _free_energy(self, v: Tensor, y: Tensor | None) -> Tensor:
        """F(v, y) = -v.b - d_y - sum_j softplus(c_j + (v W)_j + U_yj): v [N, D] -> [N]."""
        fe = -(v @ self.b) - F.softplus(self._hidden_input(v, y)).sum(-1)
        return fe if y is None else fe - self.d[y]

    def free_energy(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """F(x, y) in nats, [N], of images x [N, C, H, W] (labels y [N] if conditional):
        -log of the unnormalised probability, so log p(x | y) = -F(x, y) - log Z_y."""
        self._check(x, y)
        return self._free_energy(x.flatten(1), None if y is None else y.long())

    def hidden_probs(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """p(h_j = 1 | v, y) = sigmoid(c_j + (v W)_j + U_yj): x [N, C, H, W] -> [N, H]."""
        return torch.sigmoid(self._hidden_input(x.flatten(1), None if y is None else y.long()))

    def visible_probs(self, h: Tensor) -> Tensor:
        """p(v_i = 1 | h) = sigmoid(b_i + (W h)_i): h [N, H] -> images [N, C, H, W]."""
        return torch.sigmoid(h @ self.W.T + self.b).view(-1, *self.config.shape)

    def label_logits(self, h: Tensor) -> Tensor:
        """log p(y | h) up to a constant, d + h U^T: h [N, H] -> [N, K]."""
        return h @ self.U.T + self.d

    def label_log_probs(self, x: Tensor) -> Tensor:
        """The model's own log p(y | x) = log softmax_y -F(x, y) (exact, no log Z needed:
        the classification RBM of Larochelle & Bengio 2008): x [N, C, H, W] -> [N, K]."""
        k = self.config.num_classes
        if not k:
            raise UserError("rbm is unconditional: it has no p(y | x)",
                            "train it with --conditional")
        v = x.flatten(1)
        neg_f = torch.stack([-self._free_energy(v, torch.full((len(v),), i, device=v.device))
                             for i in range(k)], 1)
        return torch.log_softmax(neg_f, 1)

    def _sweep(self, v: Tensor, y: Tensor | None, u_h: Tensor, u_v: Tensor,
               u_y: Tensor | None = None) -> tuple[Tensor, Tensor | None, Tensor]:
        """One block Gibbs sweep from uniforms: h ~ p(h | v, y), then v ~ p(v | h) and,
        when ``u_y`` [N] is given, y ~ p(y | h) (v and y are independent given h).

        Returns (v [N, D] in {0, 1}, y [N], p(v = 1 | h) [N, D])."""
        hid = (u_h < torch.sigmoid(self._hidden_input(v, y))).to(v.dtype)
        if u_y is not None:  # inverse CDF of p(y | h)
            cdf = torch.softmax(self.label_logits(hid), -1).cumsum(-1)
            y = (cdf < u_y[:, None]).sum(-1).clamp(max=self.config.num_classes - 1)
        pv = torch.sigmoid(hid @ self.W.T + self.b)
        return (u_v < pv).to(v.dtype), y, pv

    # ----- training --------------------------------------------------------------------
    @torch.no_grad()
    def _negatives(self, v: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """``gibbs_steps`` sweeps of the joint chain over (v, y) from (v, y), with the
        global RNG (checkpointed by the loop)."""
        n, dev, dt = v.shape[0], v.device, v.dtype
        for _ in range(self.config.gibbs_steps):
            u_h = torch.rand(n, self.config.hidden, device=dev, dtype=dt)
            u_v = torch.rand(n, self.config.dims, device=dev, dtype=dt)
            u_y = None if y is None else torch.rand(n, device=dev, dtype=dt)
            v, y, _ = self._sweep(v, y, u_h, u_v, u_y)
        return v, y

    def phases(self, train: Any) -> list[Phase]:
        """The default AdamW phase, unwatched by the loss-range watcher: the contrastive
        gap's level means nothing (only its gradient does) and swings by tens of nats
        while the persistent chains catch up with the weights."""
        return [dataclasses.replace(p, watched=False) for p in super().phases(train)]

    def contrastive_loss(self, v: Tensor, y: Tensor | None, v_neg: Tensor,
                         y_neg: Tensor | None, neg_weights: Tensor | None = None) -> Tensor:
        """mean_data F(v, y) - mean_negatives F(v_neg, y_neg): flat v [N, D], v_neg [M, D]
        (labels [N], [M]); ``neg_weights`` [M] (summing to 1) replace the plain mean of the
        negatives (the tests pass exact model probabilities). The negatives are detached,
        so the gradient is E_data[dF] - E_neg[dF], the CD estimate of the NLL's gradient."""
        f_neg = self._free_energy(v_neg.detach(), y_neg)
        neg = f_neg.mean() if neg_weights is None else (neg_weights * f_neg).sum()
        return self._free_energy(v, y).mean() - neg

    def loss(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        """The contrastive free-energy gap (see the module docstring).

        Args:
            x: [N, C, H, W] binary images. y: [N] labels (conditional models).

        Returns:
            ``loss`` (F(data) - F(negatives), per image), ``free_energy`` (mean F(data))
            and ``recon_error`` (squared error of the mean-field reconstruction
            p(v | E[h | v]), summed over pixels, per image).
        """
        self._check(x, y)
        v = x.flatten(1)
        y = None if y is None else y.long().reshape(-1)
        persistent = self.training and self.config.training == "pcd"
        if persistent:
            start = (self.chains_v, self.chains_y if self.config.num_classes else None)
        else:
            start = (v.detach(), y)
        v_neg, y_neg = self._negatives(*start)
        if persistent:
            with torch.no_grad():
                self.chains_v.copy_(v_neg)
                if y_neg is not None:
                    self.chains_y.copy_(y_neg)
        loss = self.contrastive_loss(v, y, v_neg, y_neg)
        with torch.no_grad():
            recon = torch.sigmoid(torch.sigmoid(self._hidden_input(v, y)) @ self.W.T + self.b)
            return {"loss": loss, "free_energy": self._free_energy(v, y).mean(),
                    "recon_error": (recon - v).pow(2).sum(-1).mean()}

    # ----- likelihood ------------------------------------------------------------------
    def _fingerprint(self) -> str:
        """A digest of the weights' and the base rate's bytes (the cache key of log Z)."""
        digest = hashlib.blake2b(digest_size=16)
        for t in (*self.parameters(), self.base_logits):
            digest.update(t.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def _label_bias(self, y: int | None) -> tuple[Tensor, float]:
        """(c + U_y, d_y): the hidden biases and the log Z offset with the label clamped."""
        if y is None:
            return self.c, 0.0
        return self.c + self.U[y], float(self.d[y].detach())

    @torch.no_grad()
    def log_z(self, y: int | None = None, runs: int | None = None,
              betas: int | None = None) -> ais.AISResult:
        """AIS estimate of log Z (unconditional) or log Z_y (label y clamped), cached
        (see the module docstring); ``runs`` and ``betas`` override ``config.ais_runs``
        and ``config.ais_betas``."""
        c = self.config
        runs = int(runs or c.ais_runs)
        betas = int(betas or c.ais_betas)
        if runs < 2:
            raise UserError(f"AIS needs at least 2 runs for an error bar, got {runs}",
                            "pass --k 2 or more")
        key = (self._fingerprint(), y, runs, betas, c.ais_seed, str(self.W.dtype),
               str(self.W.device))
        if key in self._log_z_cache:
            self._log_z_cache.move_to_end(key)
            return self._log_z_cache[key]
        hid_bias, offset = self._label_bias(y)
        est = ais.ais_log_z(self.W, self.b, hid_bias, self.base_logits, runs, betas,
                            c.ais_seed + (0 if y is None else y + 1))
        if offset:
            est = ais.AISResult(est.log_z + offset, est.stderr,
                                tuple(None if e is None else e + offset for e in est.interval),
                                est.ess, est.runs, est.betas, est.log_z_base + offset)
        self._log_z_cache[key] = est
        while len(self._log_z_cache) > _CACHE_SIZE:
            self._log_z_cache.popitem(last=False)
        return est

    def log_z_exact(self, y: int | None = None) -> Tensor:
        """log Z (or log Z_y) by enumerating the smaller layer (at most 20 units; for
        tests and tiny models), differentiable."""
        hid_bias, _ = self._label_bias(y)
        out = ais.log_z_exact(self.W, self.b, hid_bias)
        return out if y is None else out + self.d[y]

    @torch.no_grad()
    def log_prob(self, x: Tensor, y: Tensor | None = None, k: int | None = None,
                 betas: int | None = None) -> Tensor:
        """log p(x) (log p(x | y) for a conditional model) = -F(x, y) - log Z-hat, nats per
        image [N], with log Z-hat from AIS (``k`` runs, ``betas`` distributions; default
        ``config.ais_runs`` and ``config.ais_betas``)."""
        self._check(x, y, binary=True)
        y = None if y is None else y.long().reshape(-1)
        neg_f = -self._free_energy(x.flatten(1), y)
        if y is None:
            return neg_f - self.log_z(None, k, betas).log_z
        table = {int(lab): self.log_z(int(lab), k, betas).log_z
                 for lab in y.unique().tolist()}
        log_z = torch.tensor([table[int(lab)] for lab in y.tolist()], dtype=neg_f.dtype,
                             device=neg_f.device)
        return neg_f - log_z

    def likelihood_protocol(self, k: int | None = None, betas: int | None = None,
                            **kwargs: Any) -> dict[str, Any]:
        """The AIS settings and the log Z estimate(s) with their error bars (one per
        label for a conditional model, in label order), and a convergence check.

        AIS is low in expectation for log Z, and the standard error across runs does not
        show it: with too few distributions every run falls short by about as much, so
        the runs agree and the error bar is small (BENCHMARKS.md, issue 18, has an MNIST
        RBM where this hid tens of nats). So log Z is
        also estimated with a quarter of the distributions (25% more work): if it rises
        from the quarter to the full schedule by more than the noise, the full schedule
        has likely not converged either, and the protocol carries a ``warning``."""
        c = self.config
        labels = list(range(c.num_classes)) if c.num_classes else [None]
        betas = int(betas or c.ais_betas)
        est = [self.log_z(lab, k, betas) for lab in labels]
        quarter_betas = max(2, betas // 4)
        short = [self.log_z(lab, k, quarter_betas) for lab in labels]
        rise = [e.log_z - s.log_z for e, s in zip(est, short, strict=True)]
        noise = [3.0 * math.hypot(e.stderr, s.stderr) for e, s in zip(est, short, strict=True)]
        runs = est[0].runs

        def per_label(values: list[Any]) -> Any:
            return values if c.num_classes else values[0]

        seen = bool(self.base_logits.abs().sum() > 0)
        worst = max(e.stderr for e in est)
        worst_rise = max(rise)
        warning = {}
        if any(r > max(_AIS_RISE_TOLERANCE, n) for r, n in zip(rise, noise, strict=True)):
            warning = {"warning": f"AIS has not converged: log Z rose {worst_rise:.2f} nats "
                                  f"from {quarter_betas} to {betas} distributions, so "
                                  "this NLL is likely optimistic by at least that much; "
                                  f"fix: evaluate with --ais-betas {4 * betas}"}
        return {"kind": "estimate",
                "estimator": f"AIS {runs} runs x {betas} distributions "
                             f"(log Z s.e. {worst:.3f}, +{max(worst_rise, 0.0):.2f} nats "
                             f"over {quarter_betas})",
                "ais_log_z_quarter_schedule": per_label([s.log_z for s in short]),
                "ais_rise_nats": per_label(rise),
                **warning,
                "ais_runs": runs, "ais_betas": betas, "ais_seed": c.ais_seed,
                "ais_schedule": "piecewise linear in beta (Salakhutdinov & Murray 2008)",
                "ais_base": ("base-rate model: the training data's pixel marginals" if seen
                             else "uniform visible units (no training data seen)"),
                "log_z": per_label([e.log_z for e in est]),
                "log_z_stderr": per_label([e.stderr for e in est]),
                "log_z_interval_3se": per_label([list(e.interval) for e in est]),
                "ais_ess": per_label([e.ess for e in est]),
                "note": "AIS estimates Z without bias, so log Z is low in expectation and "
                        "the NLL optimistic: a stochastic estimate, not a bound",
                **kwargs}

    # ----- sampling --------------------------------------------------------------------
    def _gibbs_chain(self, rng: SampleRNG, y: Tensor | None, sweeps: int,
                     record: set[int], mean: bool = False,
                     clamp: tuple[Tensor, Tensor] | None = None) -> dict[int, Tensor]:
        """Run one chain per row of ``rng`` for ``sweeps`` sweeps from a base-rate start
        (label y [n] clamped) and return the states after the sweeps in ``record`` (0 =
        the start) as flat [n, D]: binary states, or p(v = 1 | h) when ``mean``.
        ``clamp`` = (values [n, D], keep [n, D] bool) fixes the kept visible units."""
        d, h = self.config.dims, self.config.hidden
        dt, dev = self.W.dtype, self.W.device
        p0 = torch.sigmoid(self.base_logits).expand(len(rng), d)
        v = (rng.rand(d, dtype=dt, device=dev) < p0).to(dt)
        pv = p0
        if clamp is not None:
            v = torch.where(clamp[1], clamp[0], v)
        out = {0: pv if mean else v} if 0 in record else {}
        for first in range(0, sweeps, _CHUNK):
            u = rng.rand(_CHUNK, h + d, dtype=dt, device=dev)  # [n, CHUNK, H + D]
            for i in range(min(_CHUNK, sweeps - first)):
                v, _, pv = self._sweep(v, y, u[:, i, :h], u[:, i, h:])
                if clamp is not None:
                    v = torch.where(clamp[1], clamp[0], v)
                if first + i + 1 in record:
                    out[first + i + 1] = pv if mean else v
        return out

    @torch.no_grad()
    def sample(self, n: int, y: Tensor | None = None,
               generator: torch.Generator | SampleRNG | None = None,
               sampler: SamplerOptions | None = None) -> Tensor:
        """Draw ``n`` images [n, C, H, W] by block Gibbs sampling (:class:`GibbsSampler`:
        burn-in, thinning, images per chain); a conditional model clamps its label units."""
        opts = resolve_sampler(self, sampler)
        y = self._labels_for(n, y)
        rng = as_sample_rng(generator, n, self.device)
        m = opts.per_chain
        heads = list(range(0, n, m))  # each chain's first image
        if y is not None and m > 1 and any(bool((y[i:i + m] != y[i]).any()) for i in heads):
            raise UserError("per_chain > 1 needs the images of one chain to share a label",
                            "pass one label (--label) or --sampler-opt per_chain=1")
        at = [opts.burn_in + j * opts.thin for j in range(m)]
        frames = self._gibbs_chain(rng[heads], None if y is None else y[heads], at[-1],
                                   set(at), mean=opts.output == "mean")
        out = torch.stack([frames[s] for s in at], 1).flatten(0, 1)[:n]  # chain-major
        return out.view(n, *self.config.shape)

    @torch.no_grad()
    def complete(self, x: Tensor, keep: Tensor, y: Tensor | None = None,
                 generator: torch.Generator | SampleRNG | None = None,
                 sampler: SamplerOptions | None = None) -> Tensor:
        """Sample the pixels ``keep`` does not fix from p(v_unknown | v_kept, y): a Gibbs
        chain with the kept pixels clamped, ``burn_in`` sweeps (the sampler's); kept
        pixels come back unchanged."""
        self._check(x, y)
        opts = resolve_sampler(self, sampler)
        keep = torch.as_tensor(keep, device=x.device).bool().expand_as(x)
        rng = as_sample_rng(generator, len(x), x.device)
        flat = x.flatten(1).to(self.W.dtype)
        y = None if y is None else y.long().reshape(-1)
        frames = self._gibbs_chain(rng, y, opts.burn_in, {opts.burn_in},
                                   clamp=(flat, keep.flatten(1)))
        return torch.where(keep, x, frames[opts.burn_in].view_as(x).to(x.dtype))

    # ----- report ----------------------------------------------------------------------
    @torch.no_grad()
    def figures(self, x: Tensor, y: Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``gibbs_chain``: 4 chains (one per row) at 8 points from the base-rate start
        (binary) to ``burn_in`` sweeps, spaced geometrically (p(v | h) after each sweep);
        ``filters``: the receptive fields W[:, j] of the 32 hidden units with the largest
        weights, each scaled to [0, 1]; ``fantasy``: 16 persistent chains (PCD's
        negative particles) as training left them."""
        seeds = as_sample_rng(generator, 4).seeds
        labels = self._labels_for(4, None)
        burn = self.config.burn_in
        at = [0] + [int(round(burn ** (i / 6))) if burn else 0 for i in range(7)]
        # the start state itself (binary), then p(v | h) along the same chains
        start = self._gibbs_chain(SampleRNG(seeds, self.device), labels, 0, {0})[0]
        frames = self._gibbs_chain(SampleRNG(seeds, self.device), labels, max(at), set(at),
                                   mean=True)
        frames[0] = start
        shape = self.config.shape
        strip = torch.stack([frames[s] for s in at], 1).reshape(-1, *shape)
        norms = self.W.norm(dim=0)
        top = norms.argsort(descending=True)[:32]
        w = self.W[:, top].T  # [<=32, D]
        lo, hi = w.min(1, keepdim=True).values, w.max(1, keepdim=True).values
        filters = ((w - lo) / (hi - lo).clamp_min(1e-12)).reshape(-1, *shape)
        out = {"gibbs_chain": strip, "filters": filters}
        if self.config.training == "pcd":
            out["fantasy"] = self.chains_v[:16].reshape(-1, *shape).clone()
        return out

