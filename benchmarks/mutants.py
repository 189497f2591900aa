"""Mutation testing of genvision's maths core (issue 16): do the tests notice broken maths?

Each mutant is one small textual change (an operator swap, a dropped term such as
``- math.log(k)``, a changed constant, a flipped sign) to one of the maths modules --
the pixel distributions, the VAE's likelihood / IWAE bound, FID / KID / precision-recall /
density-coverage, the per-sample samplers and the pixel heads. For each mutant the script
copies ``src/`` and ``tests/`` once into a temporary directory, applies the change there
(never to the working tree), runs the test files that cover that module with ``-x`` and
restores the file. A mutant is *killed* when the tests fail (or time out), *survived*
when they pass.

    python benchmarks/mutants.py                 # all mutants, JSON on stdout
    python benchmarks/mutants.py --only iwae     # mutants whose name contains "iwae"
    make mutants

No dependency beyond pytest: the mutations are a fixed, reviewed list of exact snippets
(each must occur exactly once in its file, so a refactor that moves the code makes the
script fail loudly instead of silently testing nothing). Survivors that cannot be killed
because they do not change behaviour are listed in ``EQUIVALENT`` with the reason.
Runtime: ~40 mutants x 5-15 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DIST = ("tests/test_distributions.py", "tests/test_vae_bounds.py", "tests/test_pixel_heads.py",
        "tests/test_vae.py")
VAE_T = ("tests/test_vae_bounds.py", "tests/test_vae.py", "tests/test_distributions.py")
METRICS = ("tests/test_metrics_sample_quality.py",)
SAMPLING = ("tests/test_sampling.py", "tests/test_distributions.py", "tests/test_pixel_heads.py")
HEADS = ("tests/test_pixel_heads.py", "tests/test_distributions.py")
UNITS = ("tests/test_metrics_likelihood.py", "tests/test_distributions.py")


@dataclass(frozen=True)
class Mutant:
    """Replace ``old`` (which occurs exactly once in ``path``) by ``new``."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


_L = "src/genvision/distributions/logistic.py"
_B = "src/genvision/distributions/bernoulli.py"
_C = "src/genvision/distributions/categorical.py"
_V = "src/genvision/models/vae.py"
_F = "src/genvision/metrics/fid.py"
_M = "src/genvision/metrics/manifold.py"
_S = "src/genvision/models/sampling.py"
_H = "src/genvision/models/pixel_heads.py"

MUTANTS: tuple[Mutant, ...] = (
    # ----- discretised logistic ------------------------------------------------------------
    Mutant("logistic.bin_half_width_doubled", _L, "half = 0.5 / (levels - 1)",
           "half = 1.0 / (levels - 1)", DIST),
    Mutant("logistic.upper_edge_sign", _L, "a = (x - mean + half) * inv_s",
           "a = (x + mean + half) * inv_s", DIST),
    Mutant("logistic.bin_width_halved", _L, "d = inv_s * (2 * half)", "d = inv_s * half", DIST),
    Mutant("logistic.lowest_bin_uses_lower_edge", _L, "lowest = F.logsigmoid(a)",
           "lowest = F.logsigmoid(b)", DIST),
    Mutant("logistic.highest_bin_uses_upper_edge", _L, "highest = -F.softplus(b)",
           "highest = -F.softplus(a)", DIST),
    Mutant("logistic.no_low_edge_bin", _L, "torch.where(x < half, lowest",
           "torch.where(x < -half, lowest", DIST),
    Mutant("logistic.min_log_scale", _L, "MIN_LOG_SCALE = -7.0", "MIN_LOG_SCALE = -8.0", DIST),
    Mutant("logistic.sampler_scale_doubled", _L,
           "mean + log_scale.clamp(min=MIN_LOG_SCALE).exp() *",
           "mean + 2 * log_scale.clamp(min=MIN_LOG_SCALE).exp() *", DIST),
    Mutant("logistic.sampler_quantile_sign", _L, "(u.log() - (-u).log1p())",
           "(u.log() + (-u).log1p())", DIST),
    Mutant("mixture.unnormalised_weights", _L,
           "torch.logsumexp(F.log_softmax(self.logits, dim=self.dim) + log_bin",
           "torch.logsumexp(self.logits + log_bin", DIST),
    Mutant("mixture.sampler_scale_doubled", _L, "v = mu + torch.exp(log_s) *",
           "v = mu + 2 * torch.exp(log_s) *", DIST),
    # ----- Bernoulli, categorical, units, rounding -----------------------------------------
    Mutant("bernoulli.zero_term_sign", _B, "(1 - x) * F.logsigmoid(-lg)",
           "(1 - x) * F.logsigmoid(lg)", DIST),
    Mutant("bernoulli.sampler_flipped", _B, "(u < self.mean)", "(u > self.mean)", DIST),
    Mutant("categorical.index_floor", _C, "torch.round(x * (self.levels - 1)).long()",
           "torch.floor(x * (self.levels - 1)).long()", DIST),
    Mutant("categorical.unnormalised", _C, "logp = F.log_softmax(self.logits, dim=self.dim)",
           "logp = self.logits", DIST),
    Mutant("categorical.cdf_le", _C, "(probs.cumsum(-1) < u)", "(probs.cumsum(-1) <= u)", DIST),
    Mutant("units.no_ln2", "src/genvision/distributions/units.py",
           "nats_per_image / (dims * _LN2)", "nats_per_image / dims", UNITS),
    Mutant("levels.floor", "src/genvision/distributions/base.py",
           "torch.round(v.clamp(0, 1) * (levels - 1))", "torch.floor(v.clamp(0, 1) * (levels - 1))",
           DIST),
    # ----- VAE likelihood / IWAE ------------------------------------------------------------
    Mutant("vae.iwae_no_log_k", _V, "torch.logsumexp(torch.cat(log_w, 1), 1) - math.log(k)",
           "torch.logsumexp(torch.cat(log_w, 1), 1)", VAE_T),
    Mutant("vae.train_iwae_no_log_k", _V, "-(torch.logsumexp(log_w, 1) - math.log(k)).mean()",
           "-(torch.logsumexp(log_w, 1)).mean()", VAE_T),
    Mutant("vae.iwae_logvar_sign", _V,
           "log_ratio = (-0.5 * z.pow(2) + 0.5 * e.pow(2) + 0.5 * logvar[:, None]).sum(2)",
           "log_ratio = (-0.5 * z.pow(2) + 0.5 * e.pow(2) - 0.5 * logvar[:, None]).sum(2)", VAE_T),
    Mutant("vae.iwae_q_sign", _V,
           "log_ratio = (-0.5 * z.pow(2) + 0.5 * e.pow(2) + 0.5 * logvar[:, None]).sum(2)",
           "log_ratio = (-0.5 * z.pow(2) - 0.5 * e.pow(2) + 0.5 * logvar[:, None]).sum(2)", VAE_T),
    Mutant("vae.iwae_std_not_sqrt", _V, "std = (0.5 * logvar).exp()\n        log_w = []",
           "std = logvar.exp()\n        log_w = []", VAE_T),
    Mutant("vae.kl_missing_minus_one", _V,
           "kl_d = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar)",
           "kl_d = 0.5 * (mu.pow(2) + logvar.exp() - logvar)", VAE_T),
    Mutant("vae.elbo_kl_sign", _V, "return log_px - 0.5 * (mu.pow(2)",
           "return log_px + 0.5 * (mu.pow(2)", VAE_T),
    Mutant("vae.gaussian_no_log_sigma", _V, "lp = -0.5 * ((x - params) / ls.exp()) ** 2 - ls - ",
           "lp = -0.5 * ((x - params) / ls.exp()) ** 2 - ", VAE_T),
    Mutant("vae.draw_logistic_scale_doubled", _V,
           "logistic = DiscretizedLogistic(*params.chunk(2, dim=1))",
           "logistic = DiscretizedLogistic(params[:, :params.shape[1] // 2], "
           "params[:, params.shape[1] // 2:] + math.log(2))", VAE_T),
    Mutant("vae.prior_scale_doubled", _V,
           "z = rng.randn(self.config.latent_dim, device=self.device)",
           "z = 2 * rng.randn(self.config.latent_dim, device=self.device)", VAE_T),
    # ----- FID, KID, precision/recall, density/coverage -------------------------------------
    Mutant("fid.cross_term_halved", _F, "np.trace(s2) - 2.0 * tr_covmean",
           "np.trace(s2) - tr_covmean", METRICS),
    Mutant("fid.biased_covariance", _F, "torch.cov(f.T, correction=1)",
           "torch.cov(f.T, correction=0)", METRICS),
    Mutant("kid.biased_xx", _F, "(kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))",
           "(kxx.sum() - kxx.diagonal().sum()) / (m * m)", METRICS),
    Mutant("kid.cross_term_halved", _F, "- 2.0 * kxy.mean())", "- kxy.mean())", METRICS),
    Mutant("kid.quadratic_kernel", _F, "(x @ y.T / x.shape[1] + 1.0) ** 3",
           "(x @ y.T / x.shape[1] + 1.0) ** 2", METRICS),
    Mutant("kid.std_correction", _F, "scores.std(correction=0)", "scores.std(correction=1)",
           METRICS),
    Mutant("prdc.kth_neighbour_counts_self", _M, "d.kthvalue(k + 1, dim=1)",
           "d.kthvalue(k, dim=1)", METRICS),
    Mutant("prdc.strict_ball", _M, "inside = d <= r_real.unsqueeze(0)",
           "inside = d < r_real.unsqueeze(0)", METRICS),
    Mutant("prdc.density_no_k", _M, "\"density\": ball_hits / (k * m)",
           "\"density\": ball_hits / m", METRICS),
    Mutant("prdc.coverage_radius_doubled", _M, "(nearest_fake <= r_real)",
           "(nearest_fake <= 2 * r_real)", METRICS),
    # ----- per-sample samplers and pixel heads ----------------------------------------------
    Mutant("sampling.categorical_cdf_flipped", _S, "return (p.cumsum(-1) < u).sum(-1)",
           "return (p.cumsum(-1) > u).sum(-1)", SAMPLING),
    Mutant("sampling.bernoulli_le", _S, "device=p.device) < p).to(p.dtype)",
           "device=p.device) <= p).to(p.dtype)", SAMPLING),
    Mutant("sampling.truncation_bound_ignored", _S, "while (bad := z.abs() > bound).any():",
           "while (bad := z.abs() > 2 * bound).any():", SAMPLING),
    Mutant("heads.mixture_means_unsquashed", _H,
           "DiscretizedLogisticMixture(logits, torch.sigmoid(means), log_scales",
           "DiscretizedLogisticMixture(logits, means, log_scales", HEADS),
)

#: survivors that change no observable behaviour, with the reason (see BENCHMARKS.md)
EQUIVALENT: dict[str, str] = {
    "categorical.cdf_le": "cumsum == u happens with probability 0 for a float64 uniform "
                          "(and never at the seeds the tests use): same draws",
    "sampling.bernoulli_le": "u == p happens with probability 0 for a continuous uniform: "
                             "same draws",
}


def _copy_tree(dst: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for part in ("src", "tests"):
        shutil.copytree(ROOT / part, dst / part, ignore=ignore)
    shutil.copy2(ROOT / "pyproject.toml", dst / "pyproject.toml")


def _run_one(tree: Path, m: Mutant, timeout: float) -> dict[str, object]:
    target = tree / m.path
    original = target.read_text()
    count = original.count(m.old)
    if count != 1:
        raise SystemExit(f"mutant {m.name}: the snippet occurs {count} times in {m.path} "
                         f"(must be once); update MUTANTS")
    target.write_text(original.replace(m.old, m.new))
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-x", "-q",
           "--no-header", *m.tests]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True,
                              timeout=timeout)
        rc, tail = proc.returncode, (proc.stdout + proc.stderr).strip().splitlines()
    except subprocess.TimeoutExpired:
        rc, tail = -1, ["timeout"]
    finally:
        target.write_text(original)
    failed = [ln.split(" ")[1] for ln in tail if ln.startswith("FAILED ")]
    status = "survived" if rc == 0 else "killed"
    row: dict[str, object] = {"name": m.name, "file": m.path, "status": status,
                              "seconds": round(time.monotonic() - t0, 1)}
    if status == "killed":
        row["killed_by"] = failed[:3] or [tail[-1] if tail else f"exit {rc}"]
    elif m.name in EQUIVALENT:
        row["equivalent"] = EQUIVALENT[m.name]
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="", help="run the mutants whose name contains this")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant")
    p.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = p.parse_args(argv)
    chosen = [m for m in MUTANTS if args.only in m.name]
    if args.list:
        print("\n".join(f"{m.name}\t{m.path}" for m in chosen))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="genvision-mutants-") as tmp:
        tree = Path(tmp)
        _copy_tree(tree)
        for m in chosen:
            rows.append(_run_one(tree, m, args.timeout))
            print(f"{m.name}: {rows[-1]['status']} ({rows[-1]['seconds']} s)", file=sys.stderr)
    survivors = [r for r in rows if r["status"] == "survived"]
    unexplained = [r["name"] for r in survivors if "equivalent" not in r]
    print(json.dumps({
        "total": len(rows), "killed": len(rows) - len(survivors), "survived": len(survivors),
        "survival_rate": round(len(survivors) / len(rows), 3) if rows else None,
        "unexplained_survivors": unexplained, "mutants": rows}, indent=2))
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
