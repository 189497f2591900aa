import math

import numpy as np
import pytest
import scipy.linalg
import torch

from genvision.metrics.sample_quality import (
    feature_stats,
    fid,
    frechet_distance,
    kid,
    knn_radii,
    manifold_metrics,
    memorisation,
    mmd2_unbiased,
    sample_quality,
)

D = 16
# well-separated centres: components are distinct clusters (NN balls never bridge them)
CENTRES = torch.randn(10, D, generator=torch.Generator().manual_seed(123), dtype=torch.float64) * 4


def mixture(n, seed, components=range(10)):
    """n draws from an equal-weight Gaussian mixture over ``components`` (unit variance)."""
    g = torch.Generator().manual_seed(seed)
    comps = torch.tensor(list(components))
    idx = comps[torch.randint(len(comps), (n,), generator=g)]
    return CENTRES[idx] + torch.randn(n, D, generator=g, dtype=torch.float64)


# ---------------------------------------------------------------- FID


def reference_fid(a, b):
    """Textbook FID with scipy.linalg.sqrtm, independent of the implementation."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_feature_stats_unbiased_and_numpy_input():
    x = mixture(50, 0)
    mu, sigma = feature_stats(x.numpy().astype(np.float32))
    assert mu.shape == (D,) and sigma.shape == (D, D) and sigma.dtype == np.float64
    np.testing.assert_allclose(sigma, np.cov(x.numpy(), rowvar=False, ddof=1), rtol=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        feature_stats(x[:1])


def test_fid_matches_scipy_reference_and_torchmetrics():
    a, b = mixture(500, 1), mixture(400, 2) * 1.3 + 0.5
    ours = fid(a, b)
    assert ours == pytest.approx(reference_fid(a, b), rel=1e-4)
    from torchmetrics.image.fid import _compute_fid

    mu1, s1 = feature_stats(a)
    mu2, s2 = feature_stats(b)
    tm = _compute_fid(*(torch.from_numpy(t) for t in (mu1, s1, mu2, s2))).item()
    assert ours == pytest.approx(tm, rel=1e-6)
    # symmetric, and the stats entry point agrees with fid()
    assert fid(b, a) == pytest.approx(ours, rel=1e-9)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ours, rel=1e-12)


def test_fid_singular_covariance_is_finite_and_nonnegative():
    # D > N: both covariances are singular; sqrtm-based code needs eps offsets here
    g = torch.Generator().manual_seed(3)
    a = torch.randn(10, 40, generator=g)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-8)
    v = fid(a, torch.randn(12, 40, generator=g))
    assert math.isfinite(v) and v > 0


def test_fid_same_distribution_small_shifted_large():
    real, same = mixture(4000, 4), mixture(4000, 5)
    same_fid = fid(real, same)
    assert 0 <= same_fid < 1.0  # finite-sample bias only (~0.2-0.4 at N=4000 here)
    assert fid(real, same + 1.0) > 10  # shift of 1 in 16 dims adds ||mu||^2 = 16
    assert fid(real, same * 2.0) > 50
    assert fid(real, same + 1.0) == pytest.approx(same_fid + D, abs=0.5)


def test_fid_and_kid_grow_with_noise():
    real, base = mixture(3000, 6), mixture(3000, 7)
    noise = torch.randn(base.shape, generator=torch.Generator().manual_seed(8),
                        dtype=torch.float64)
    fids, kids = [], []
    for s in (0.0, 1.0, 2.0, 4.0):
        fake = base + s * noise
        fids.append(fid(real, fake))
        kids.append(kid(real, fake, subsets=20, subset_size=500)["kid_mean"])
    assert all(x < y for x, y in zip(fids, fids[1:], strict=False)), fids
    assert all(x < y for x, y in zip(kids, kids[1:], strict=False)), kids


def test_frechet_distance_validates():
    with pytest.raises(ValueError, match="covariances"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="dimension mismatch"):
        fid(torch.zeros(5, 3), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="NaN"):
        fid(torch.tensor([[0.0], [float("nan")]]), torch.zeros(3, 1))


# ---------------------------------------------------------------- KID


def brute_mmd2(x, y):
    d = len(x[0])

    def k(a, b):
        return (sum(ai * bi for ai, bi in zip(a, b, strict=True)) / d + 1) ** 3

    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_mmd2_unbiased_matches_brute_force():
    g = torch.Generator().manual_seed(9)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.randn(7, 4, generator=g, dtype=torch.float64) + 0.3
    assert mmd2_unbiased(x, y) == pytest.approx(brute_mmd2(x.tolist(), y.tolist()), abs=1e-10)


def test_mmd2_unbiased_is_unbiased():
    # over many independent pairs from one distribution the mean estimate is ~0
    # (within 3 standard errors); the biased V-statistic is systematically positive
    g = torch.Generator().manual_seed(10)
    vals, biased = [], []
    for _ in range(300):
        x = torch.randn(30, 8, generator=g, dtype=torch.float64)
        y = torch.randn(30, 8, generator=g, dtype=torch.float64)
        vals.append(mmd2_unbiased(x, y))
        z = torch.cat([x, y])
        kern = (z @ z.T / 8 + 1) ** 3
        biased.append((kern[:30, :30].mean() + kern[30:, 30:].mean()
                       - 2 * kern[:30, 30:].mean()).item())
    vals, biased = np.array(vals), np.array(biased)
    se = vals.std() / math.sqrt(len(vals))
    assert abs(vals.mean()) < 3 * se
    assert (vals < 0).mean() > 0.3  # unbiased estimates go negative
    assert biased.mean() > 3 * biased.std() / math.sqrt(len(biased))


def test_kid_same_distribution_near_zero_shifted_positive():
    real, same = mixture(2000, 11), mixture(2000, 12)
    r = kid(real, same, subsets=50, subset_size=500, seed=0)
    assert set(r) == {"kid_mean", "kid_std", "subsets", "subset_size"}
    assert r["subsets"] == 50 and r["subset_size"] == 500
    # the kernel scale follows the features' (norms ~16 here), so bounds are relative to
    # the spread of the per-subset estimates
    assert abs(r["kid_mean"]) < 0.5 * r["kid_std"]
    shifted = kid(real, same + 0.5, subsets=50, subset_size=500, seed=0)
    assert shifted["kid_mean"] > 10 * abs(r["kid_mean"]) and shifted["kid_mean"] > 3 * shifted[
        "kid_std"]
    # seeded: same seed same numbers
    assert kid(real, same, subsets=5, subset_size=100, seed=3) == kid(
        real, same, subsets=5, subset_size=100, seed=3)


def test_kid_subset_size_too_large_raises():
    with pytest.raises(ValueError, match=r"subset_size=101.*real: 100, fake: 200"):
        kid(mixture(100, 0), mixture(200, 1), subset_size=101)


# ---------------------------------------------------------------- precision/recall/density/coverage


def brute_manifold(real, fake, k):
    def radii(pts):
        out = []
        for i, p in enumerate(pts):
            ds = sorted(math.dist(p, q) for j, q in enumerate(pts) if j != i)
            out.append(ds[k - 1])
        return out

    rr, rf = radii(real), radii(fake)
    inside = [[math.dist(f, r) <= rr[i] for i, r in enumerate(real)] for f in fake]
    precision = sum(any(row) for row in inside) / len(fake)
    density = sum(sum(row) for row in inside) / (k * len(fake))
    coverage = sum(any(inside[j][i] for j in range(len(fake))) for i in range(len(real))) / len(
        real)
    recall = sum(any(math.dist(r, f) <= rf[j] for j, f in enumerate(fake)) for r in real) / len(
        real)
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_manifold_matches_brute_force(chunk_size):
    g = torch.Generator().manual_seed(13)
    real = torch.randn(15, 3, generator=g, dtype=torch.float64)
    fake = torch.randn(11, 3, generator=g, dtype=torch.float64) * 1.5 + 0.4
    for k in (1, 2, 4):
        got = manifold_metrics(real, fake, k=k, chunk_size=chunk_size)
        want = brute_manifold(real.tolist(), fake.tolist(), k)
        for key, value in want.items():
            assert got[key] == pytest.approx(value, abs=1e-12), (k, key)
        assert (got["k"], got["n_real"], got["n_fake"]) == (k, 15, 11)


def test_knn_radii_excludes_self():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(x, 3, chunk_size=1).tolist() == [7.0, 6.0, 4.0, 7.0]


def test_manifold_same_distribution_high():
    m = manifold_metrics(mixture(2000, 14), mixture(2000, 15), k=3)
    assert m["precision"] > 0.6 and m["recall"] > 0.6
    assert 0.8 < m["density"] < 1.2
    assert m["coverage"] > 0.8


def test_manifold_mode_dropping_halves_recall_and_coverage():
    real = mixture(2000, 16)
    matched = manifold_metrics(real, mixture(2000, 17), k=3)
    m = manifold_metrics(real, mixture(2000, 17, components=range(5)), k=3)
    # with k=3 in D=16 even a perfect model scores precision ~0.78 (the k-NN balls
    # under-cover the real manifold); dropping modes must not lower it
    assert m["precision"] > 0.7 and m["precision"] > matched["precision"] - 0.03
    assert 0.35 < m["recall"] < 0.65
    assert 0.35 < m["coverage"] < 0.65
    # half the modes cover half of what a matched model covers
    assert 0.4 < m["recall"] / matched["recall"] < 0.6
    assert 0.4 < m["coverage"] / matched["coverage"] < 0.6


def test_manifold_k_too_large_names_k_and_n():
    with pytest.raises(ValueError, match=r"k=5.*n=5"):
        manifold_metrics(mixture(5, 0), mixture(10, 1), k=5)
    with pytest.raises(ValueError, match=r"k=10.*fake.*n=8"):
        manifold_metrics(mixture(20, 0), mixture(8, 1), k=10)
    with pytest.raises(ValueError, match="k=0"):
        knn_radii(mixture(5, 0), 0)


# ---------------------------------------------------------------- memorisation


def test_memorisation_copies_vs_fresh_samples():
    train, test = mixture(1000, 20), mixture(1000, 21)
    g = torch.Generator().manual_seed(22)
    copies = train[torch.randint(1000, (500,), generator=g)]
    copies = copies + 1e-3 * torch.randn(copies.shape, generator=g, dtype=torch.float64)
    mem = memorisation(copies, train, test)
    assert mem["train_closer_share"] == 1.0 and mem["memorisation_score"] == 1.0
    assert mem["near_copies"] == 500 and mem["near_copy_share"] == 1.0
    assert (mem["n_fake"], mem["n_train"], mem["n_reference"]) == (500, 1000, 1000)

    fresh = memorisation(mixture(1000, 23), train, test)
    assert 0.43 < fresh["train_closer_share"] < 0.57 and fresh["expected_share"] == 0.5
    assert abs(fresh["memorisation_score"]) < 0.15
    assert fresh["near_copies"] == 0


def test_memorisation_share_expected_from_reference_sizes():
    # a 3x larger training set holds the nearest neighbour 3/4 of the time by size alone:
    # the expected share says so, and the score stays ~0 for samples independent of it
    train, test = mixture(3000, 24), mixture(1000, 25)
    fresh = memorisation(mixture(2000, 26), train, test)
    assert fresh["expected_share"] == 0.75
    assert 0.71 < fresh["train_closer_share"] < 0.79
    assert abs(fresh["memorisation_score"]) < 0.15
    # copies of any training image count, the whole training set is searched
    mem = memorisation(train[-200:], train, test)
    assert mem["near_copies"] == 200 and mem["memorisation_score"] == 1.0
    # closer to the test set than chance: a negative score
    assert memorisation(test[:300], train, test)["memorisation_score"] < -0.9


def test_memorisation_ties_count_by_the_share_of_tied_training_images():
    # 4-pixel binary images take 16 values: almost every nearest neighbour is a tie. Counting
    # a tie as one half would pull the share to 0.5; counting the tied training images keeps
    # it at its exact expectation N_train / (N_train + N_test) = 0.8
    g = torch.Generator().manual_seed(5)
    bits = torch.bernoulli(torch.full((5000, 4), 0.4), generator=g).double()
    train, test, fake = bits[:2000], bits[2000:2500], bits[2500:]
    mem = memorisation(fake, train, test)
    assert mem["expected_share"] == 0.8
    assert mem["train_closer_share"] == pytest.approx(0.8, abs=3 * mem["train_closer_share_stderr"]
                                                      + 1e-3)
    assert mem["near_copy_share"] == 1.0  # identical bits are copies, whoever made them


# ---------------------------------------------------------------- sample_quality


def test_sample_quality_returns_requested_numbers():
    real, fake = mixture(600, 30), mixture(500, 31).numpy()
    out = sample_quality(real, fake, kid_subsets=10, kid_subset_size=200)
    assert set(out) == {"n_real", "n_fake", "fid", "kid_mean", "kid_std", "kid_subsets",
                        "kid_subset_size", "k", "precision", "recall", "density", "coverage"}
    assert out["fid"] == pytest.approx(fid(real, fake))
    mm = manifold_metrics(real, fake)
    assert {key: out[key] for key in ("precision", "recall", "density", "coverage")} == {
        key: mm[key] for key in ("precision", "recall", "density", "coverage")}
    assert set(sample_quality(real, fake, metrics=["dc"])) == {
        "n_real", "n_fake", "k", "density", "coverage"}
    with pytest.raises(ValueError, match="unknown sample-quality metric"):
        sample_quality(real, fake, metrics=["is"])
    with pytest.raises(ValueError, match="subset_size"):
        sample_quality(real, fake, metrics=["kid"])  # default 1000 > 500 samples


def test_kid_mean_and_std_are_over_its_own_subsets():
    """kid_mean / kid_std are the mean and the population standard deviation (as
    torchmetrics) of mmd2_unbiased over the subsets drawn by the seeded generator; kills
    a sample (n - 1) std and a reordered subset draw."""
    g = torch.Generator().manual_seed(3)
    real, fake = torch.randn(30, 4, generator=g), torch.randn(25, 4, generator=g) + 0.5
    out = kid(real, fake, subsets=3, subset_size=10, seed=7)
    gen = torch.Generator().manual_seed(7)
    scores = []
    for _ in range(3):
        ir = torch.randperm(30, generator=gen)[:10]
        jf = torch.randperm(25, generator=gen)[:10]
        scores.append(mmd2_unbiased(real[ir], fake[jf]))
    assert out["kid_mean"] == pytest.approx(float(np.mean(scores)), rel=1e-9)
    assert out["kid_std"] == pytest.approx(float(np.std(scores)), rel=1e-9)  # ddof = 0


def test_ball_membership_includes_the_boundary():
    """A sample at exactly the k-NN radius is inside the ball (NVlabs' ``<=``): the fake at
    -1 lies on the boundary of the real ball of 0 (radius 1), the fake at 10 in none.
    Kills ``<`` in place of ``<=``."""
    real = torch.tensor([[0.0], [1.0], [3.0]])
    fake = torch.tensor([[-1.0], [10.0]])
    out = manifold_metrics(real, fake, k=1)
    assert out["precision"] == 0.5
    assert out["density"] == 0.5  # one (fake, ball) hit, / (k * M)
