"""Distribution distances between two sets of feature vectors: FID and KID.

Both compare the feature vectors of real images with those of generated images; the
features come from a network trained elsewhere (this module sees only ``[N, D]`` arrays).

* **FID**, the Fréchet distance between Gaussians fitted to the two sets
  (Heusel et al. 2017, https://arxiv.org/abs/1706.08500). Biased: it is positive even for
  two samples of one distribution and its value depends on N, so compare FIDs only at equal
  sample sizes.
* **KID**, the unbiased squared maximum mean discrepancy with a cubic polynomial kernel
  (Binkowski et al. 2018, https://arxiv.org/abs/1801.01401). Unbiased: its expectation is 0
  when the distributions match, so small sets and negative values are meaningful.

Statistics are computed in float64 whatever the input dtype: covariances of a few thousand
float32 vectors lose digits that the matrix square root then amplifies.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["as_features", "feature_stats", "fid", "frechet_distance", "kid", "mmd2_unbiased"]

ArrayLike = Tensor | np.ndarray


def as_features(x: ArrayLike, name: str = "features", min_rows: int = 1) -> Tensor:
    """Validate a feature matrix and return it as a float64 tensor on its own device.

    Args:
        x: [N, D] features, a torch tensor or a numpy array.
        name: what to call ``x`` in error messages (e.g. ``"real"``).
        min_rows: the smallest N the caller can work with.

    Returns:
        [N, D] float64 tensor (detached; numpy input lands on the CPU).

    Raises:
        ValueError: ``x`` is not 2-D, has fewer than ``min_rows`` rows or holds NaN / inf.
    """
    t = torch.as_tensor(x).detach().to(torch.float64)
    if t.ndim != 2:
        raise ValueError(f"{name} features must have shape [N, D], got {tuple(t.shape)}")
    if t.shape[0] < min_rows:
        raise ValueError(f"{name} features need at least {min_rows} rows, got {t.shape[0]}")
    if t.shape[1] == 0:
        raise ValueError(f"{name} features have zero dimensions")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} features contain NaN or infinite values")
    return t


def _same_dim(a: Tensor, b: Tensor, names: tuple[str, str] = ("real", "fake")) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimension mismatch: {names[0]} has D={a.shape[1]}, "
                         f"{names[1]} has D={b.shape[1]}")


def feature_stats(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of a feature set, the Gaussian that FID fits.

    Args:
        features: [N, D] feature vectors, N >= 2.

    Returns:
        ``(mu, sigma)``: float64 numpy arrays of shape [D] and [D, D]; ``sigma`` is the
        unbiased (divide by N - 1) covariance, as in the reference FID code. Numpy, so that
        reference statistics can be stored with ``np.savez`` like pytorch-fid / clean-fid.
    """
    f = as_features(features, min_rows=2)
    mu = f.mean(dim=0)
    sigma = torch.cov(f.T, correction=1).reshape(f.shape[1], f.shape[1])  # D=1 gives a 0-d
    return mu.cpu().numpy(), sigma.cpu().numpy()


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix; round-off negatives are clipped."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike,
                     sigma2: ArrayLike) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``
    (Heusel et al. 2017, https://arxiv.org/abs/1706.08500, eq. 6).

    ``tr (sigma1 sigma2)^(1/2)`` is the sum of square roots of the eigenvalues of
    ``sigma1 sigma2``, which equal those of the symmetric PSD matrix
    ``A = sigma1^(1/2) sigma2 sigma1^(1/2)``. Using ``eigvalsh(A)`` instead of
    ``scipy.linalg.sqrtm(sigma1 @ sigma2)`` avoids the complex results and the eps-offset
    retries that the non-symmetric product needs when a covariance is singular (D > N,
    dead features); eigenvalues that round-off pushed below zero are clipped.

    Args:
        mu1: [D] mean of set 1.
        sigma1: [D, D] covariance of set 1 (symmetric PSD).
        mu2: [D] mean of set 2.
        sigma2: [D, D] covariance of set 2.

    Returns:
        The distance as a float, >= 0 (a tiny negative from round-off is returned as 0).
    """
    m1, m2 = (np.asarray(torch.as_tensor(m).detach().cpu().double()) for m in (mu1, mu2))
    s1, s2 = (np.asarray(torch.as_tensor(s).detach().cpu().double()) for s in (sigma1, sigma2))
    d = m1.shape[0] if m1.ndim == 1 else -1
    if m1.shape != (d,) or m2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"frechet_distance needs means [D] and covariances [D, D] with one D, "
                         f"got {m1.shape}, {s1.shape}, {m2.shape}, {s2.shape}")
    for a in (m1, m2, s1, s2):
        if not np.isfinite(a).all():
            raise ValueError("frechet_distance got NaN or infinite statistics")
    # covariances from float32 pipelines can be asymmetric in the last bit; eigh needs symmetry
    s1 = (s1 + s1.T) / 2
    s2 = (s2 + s2.T) / 2
    r1 = _sqrt_psd(s1)
    a = r1 @ s2 @ r1
    eig = np.linalg.eigvalsh((a + a.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0.0, None)).sum()
    diff = m1 - m2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(value, 0.0)


def fid(real: ArrayLike, fake: ArrayLike) -> float:
    """Fréchet distance between Gaussians fitted to real and generated features (FID).

    Args:
        real: [N, D] features of real images, N >= 2.
        fake: [M, D] features of generated images, M >= 2.

    Returns:
        FID as a float (0 = identical first and second moments). Biased upwards by roughly
        ``tr(sigma) / N`` terms, so compare values only at the same N and M.
    """
    r = as_features(real, "real", min_rows=2)
    f = as_features(fake, "fake", min_rows=2)
    _same_dim(r, f)
    return frechet_distance(*feature_stats(r), *feature_stats(f))


def _poly_kernel(x: Tensor, y: Tensor) -> Tensor:
    """Cubic polynomial kernel ``k(x, y) = (x.y / D + 1)^3`` of Binkowski et al. (KID)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: ArrayLike, y: ArrayLike) -> float:
    """Unbiased estimate of MMD^2 between two samples with the KID polynomial kernel.

    ``sum_{i!=j} k(x_i, x_j) / (m (m-1)) + sum_{i!=j} k(y_i, y_j) / (n (n-1))
    - 2 sum_{i,j} k(x_i, y_j) / (m n)`` (Gretton et al. 2012, eq. 3). Dropping the
    diagonal terms k(x_i, x_i) is what removes the positive bias, so the estimate is
    negative about half of the time when the distributions match.

    Args:
        x: [m, D] features, m >= 2.
        y: [n, D] features, n >= 2.

    Returns:
        The estimate as a float (may be negative).
    """
    a = as_features(x, "x", min_rows=2)
    b = as_features(y, "y", min_rows=2).to(a.device)
    _same_dim(a, b, ("x", "y"))
    return _mmd2_unbiased(a, b).item()


def _mmd2_unbiased(a: Tensor, b: Tensor) -> Tensor:
    m, n = a.shape[0], b.shape[0]
    kxx = _poly_kernel(a, a)
    kyy = _poly_kernel(b, b)
    kxy = _poly_kernel(a, b)
    return ((kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
            + (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
            - 2.0 * kxy.mean())


def kid(real: ArrayLike, fake: ArrayLike, *, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> dict[str, Any]:
    """Kernel Inception Distance: unbiased MMD^2 averaged over random subsets.

    Follows Binkowski et al. 2018 (https://arxiv.org/abs/1801.01401): each of ``subsets``
    rounds draws ``subset_size`` real and ``subset_size`` fake vectors without replacement
    and computes :func:`mmd2_unbiased`; the mean over rounds is KID. Subsets keep the
    kernel matrices small (``subset_size^2``) whatever N is.

    Args:
        real: [N, D] features of real images.
        fake: [M, D] features of generated images.
        subsets: number of random subsets, >= 1.
        subset_size: vectors drawn from each set per subset, 2 <= subset_size <= min(N, M).
        seed: seed of the ``torch.Generator`` that draws the subsets.

    Returns:
        ``{"kid_mean", "kid_std", "subsets", "subset_size"}``; ``kid_std`` is the standard
        deviation of the per-subset estimates (population std, as in torchmetrics), a
        spread, not a standard error.

    Raises:
        ValueError: ``subset_size`` is larger than either set or smaller than 2, or
            ``subsets`` < 1.
    """
    r = as_features(real, "real", min_rows=2)
    f = as_features(fake, "fake", min_rows=2).to(r.device)
    _same_dim(r, f)
    if subsets < 1:
        raise ValueError(f"KID needs subsets >= 1, got {subsets}")
    if subset_size < 2:
        raise ValueError(f"KID needs subset_size >= 2, got {subset_size}")
    if subset_size > min(r.shape[0], f.shape[0]):
        raise ValueError(f"KID subset_size={subset_size} is larger than the number of samples "
                         f"(real: {r.shape[0]}, fake: {f.shape[0]}); use a subset_size of at "
                         f"most {min(r.shape[0], f.shape[0])} or pass more samples")
    g = torch.Generator().manual_seed(seed)
    scores = torch.empty(subsets, dtype=torch.float64)
    for s in range(subsets):
        ir = torch.randperm(r.shape[0], generator=g)[:subset_size].to(r.device)
        jf = torch.randperm(f.shape[0], generator=g)[:subset_size].to(r.device)
        scores[s] = _mmd2_unbiased(r[ir], f[jf]).cpu()
    return {"kid_mean": scores.mean().item(), "kid_std": scores.std(correction=0).item(),
            "subsets": subsets, "subset_size": subset_size}
