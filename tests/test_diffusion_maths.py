"""The maths of the diffusion models: schedules, forward process, bound and samplers.

Most checks use *analytic* denoisers (the exact posterior-mean noise predictor of a known
data distribution), so they test the samplers and the bound themselves, not a network.
"""

from __future__ import annotations

import math

import pytest
import torch

from genvision.models import diffusion_bound as bound
from genvision.models import diffusion_samplers as S
from genvision.models.diffusion_schedule import SCHEDULES, NoiseSchedule, alpha_sigma
from genvision.models.sampling import SampleRNG


@pytest.fixture(autouse=True)
def _float64():
    """float64 throughout: the checks compare sums of many small terms."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)



def rng(n: int, seed: int = 0) -> SampleRNG:
    return SampleRNG(range(seed * 100_000, seed * 100_000 + n))


# ----- schedules -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_is_strictly_monotone_with_exact_ends(name):
    s = NoiseSchedule(name, -10.0, 12.0)
    t = torch.linspace(0, 1, 2001)
    lam = s.log_snr(t)
    assert lam[0] == 12.0 and lam[-1] == -10.0
    assert (lam.diff() < 0).all()  # SNR = exp(lam) strictly decreasing
    alpha_bar = torch.sigmoid(lam)
    assert ((alpha_bar > 0) & (alpha_bar < 1)).all() and (alpha_bar.diff() < 0).all()
    assert torch.allclose(s.t_of(lam), t, atol=1e-9)
    assert (s.dlog_snr_dt(t[1:-1]) < 0).all()


def test_schedules_follow_their_papers():
    t = torch.tensor([0.2, 0.5, 0.8])
    # linear: alpha_bar(t) = exp(-(0.1 t + 9.95 t^2)) on the untruncated time
    lin = NoiseSchedule("linear", -50.0, 50.0)
    raw = lin._raw_t(t)
    alpha_bar = torch.exp(-(0.1 * raw + 9.95 * raw ** 2))
    assert torch.allclose(torch.sigmoid(lin.log_snr(t)), alpha_bar)
    cos = NoiseSchedule("cosine", -50.0, 50.0)
    alpha_bar = torch.cos(0.5 * math.pi * cos._raw_t(t)) ** 2
    assert torch.allclose(torch.sigmoid(cos.log_snr(t)), alpha_bar)
    rect = NoiseSchedule("rectified", -50.0, 50.0)
    r = rect._raw_t(t)
    alpha, sigma = alpha_sigma(rect.log_snr(t))
    assert torch.allclose(alpha / sigma, (1 - r) / r)


def test_forward_marginal_equals_repeated_single_steps():
    """q(z_t | x) must equal the composition of the one-step transitions q(z_t | z_s)."""
    s = NoiseSchedule("cosine")
    x = torch.tensor([-1.0, 0.3, 1.0]).reshape(1, 3, 1, 1).expand(40_000, 3, 1, 1)
    lams = s.log_snr(torch.tensor([0.1, 0.3, 0.45, 0.7, 0.9]))
    g = torch.Generator().manual_seed(0)
    alpha, sigma = alpha_sigma(lams[0])
    z = alpha * x + sigma * torch.randn(x.shape, generator=g)
    for lam_s, lam_t in zip(lams[:-1], lams[1:], strict=True):
        z = S.renoise(z, lam_s.expand(len(z)), lam_t.expand(len(z)),
                      torch.randn(z.shape, generator=g))
    alpha_t, sigma_t = alpha_sigma(lams[-1])
    mean, std = z.mean(0).flatten(), z.std(0).flatten()
    assert torch.allclose(mean, alpha_t * x[0].flatten(), atol=4 * float(sigma_t) / 200)
    assert torch.allclose(std, sigma_t.expand(3), rtol=0.02)


# ----- analytic denoisers --------------------------------------------------------------------
def gaussian_denoiser(mu: float, s: float) -> S.Denoiser:
    """E[eps | z] for data x ~ N(mu, s^2) per value."""
    def eps_hat(z: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        alpha, sigma = alpha_sigma(lam.reshape(-1, 1, 1, 1))
        return sigma * (z - alpha * mu) / (alpha ** 2 * s ** 2 + sigma ** 2)
    return eps_hat


def points_denoiser(points: torch.Tensor) -> S.Denoiser:
    """E[eps | z] for data uniform over the images ``points`` [P, C, H, W]."""
    def eps_hat(z: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        alpha, sigma = alpha_sigma(lam.reshape(-1, 1, 1, 1))
        d2 = ((z[:, None] - alpha[:, None] * points[None]) ** 2).flatten(2).sum(2)  # [N, P]
        w = torch.softmax(-d2 / (2 * sigma.reshape(-1, 1) ** 2), dim=1)
        x_hat = torch.einsum("np,pchw->nchw", w, points)
        return (z - alpha * x_hat) / sigma
    return eps_hat


# ----- the bound -----------------------------------------------------------------------------
def full_bound(eps_hat, x, schedule, k, seed=0):
    r = rng(len(x), seed)
    alpha, sigma = alpha_sigma(torch.tensor(schedule.lambda_max))
    z0 = alpha * x + sigma * r.randn(*x.shape[1:])
    prior = bound.prior_kl(x, schedule.lambda_min)
    diff = bound.diffusion_loss(eps_hat, x, schedule, r, k)
    dec = bound.decoder_nll(x, z0, schedule.lambda_max, 2)
    return prior, diff, dec


@pytest.mark.parametrize("name", SCHEDULES)
def test_bound_of_a_two_image_world_is_at_least_log_2_and_close_to_it(name):
    """Data: two binary 4x4 images, equally likely; the exact NLL of each is log 2. With
    the exact denoiser the bound must not go below log 2 and should be close to it."""
    g = torch.Generator().manual_seed(3)
    points = (torch.rand(2, 1, 4, 4, generator=g) > 0.5).double() * 2 - 1
    points[1, 0, 0, 0] = -points[0, 0, 0, 0]  # the two images differ
    schedule = NoiseSchedule(name, -10.0, 12.0)
    x = points[torch.arange(400) % 2]
    prior, diff, dec = full_bound(points_denoiser(points), x, schedule, k=16)
    for term in (prior, diff, dec):
        assert torch.isfinite(term).all() and (term >= 0).all()
    nll = prior + diff + dec
    se = float(nll.std() / math.sqrt(len(nll)))
    assert float(nll.mean()) > math.log(2) - 3 * se
    assert float(nll.mean()) < math.log(2) + 0.05, float(nll.mean())


def test_bound_of_a_known_single_image_is_its_prior_and_decoder_terms():
    x = (torch.arange(16).reshape(1, 1, 4, 4) % 3 == 0).double() * 2 - 1
    schedule = NoiseSchedule("cosine")
    prior, diff, dec = full_bound(points_denoiser(x), x.expand(8, -1, -1, -1), schedule, 8)
    assert torch.allclose(diff, torch.zeros(8), atol=1e-6)  # the model knows the image
    alpha_min, sigma_min = alpha_sigma(torch.tensor(-10.0))
    kl = 16 * 0.5 * (alpha_min ** 2 + sigma_min ** 2 - 1 - torch.log(sigma_min ** 2))
    assert torch.allclose(prior, kl.expand(8))
    assert (dec < 1e-6).all()  # sigma at lambda_max = 12 is 0.0025: no bit flips


def test_continuous_bound_agrees_with_a_fine_discrete_time_bound():
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(3000, 1, 3, 3, generator=g) > 0.5).double() * 2 - 1
    schedule = NoiseSchedule("cosine")
    eps_hat = gaussian_denoiser(0.0, 0.7)  # any fixed denoiser will do
    cont = bound.diffusion_loss(eps_hat, x, schedule, rng(len(x), 1), k=8)
    disc = bound.diffusion_loss_discrete(eps_hat, x, schedule, rng(len(x), 2), steps=4000, k=8)
    se = math.sqrt(float(cont.var() + disc.var()) / len(x))
    assert abs(float(cont.mean() - disc.mean())) < 3 * se, (cont.mean(), disc.mean(), se)
    coarse = bound.diffusion_loss_discrete(eps_hat, x, schedule, rng(len(x), 2), steps=2, k=8)
    assert float(coarse.mean()) > float(cont.mean()) + 3 * se  # fewer steps: a looser bound


def test_decoders_are_normalised_distributions():
    z = torch.randn(2, 1, 3, 3)
    for levels in (2, 256):
        logp = bound.decoder_log_probs(z, 4.0, levels)
        assert torch.allclose(logp.exp().sum(-1), torch.ones(2, 1, 3, 3))
    # the binary closed form equals the two-level softmax
    logp2 = bound.decoder_log_probs(z, 4.0, 2)
    assert torch.allclose(torch.sigmoid(bound.decoder_logits_binary(z, 4.0)), logp2[..., 1].exp())
    # and decoder_nll reads the right level
    x = torch.tensor([-1.0, 1.0]).reshape(2, 1, 1, 1).expand(2, 1, 3, 3)
    expected = -logp2.gather(-1, (x > 0).long()[..., None])[..., 0].flatten(1).sum(1)
    assert torch.allclose(bound.decoder_nll(x, z, 4.0, 2), expected)
    x8 = torch.randint(0, 256, (2, 1, 3, 3)).double() / 255 * 2 - 1
    logp8 = bound.decoder_log_probs(z, 4.0, 256)
    idx = torch.round((x8 + 1) / 2 * 255).long()
    expected8 = -logp8.gather(-1, idx[..., None])[..., 0].flatten(1).sum(1)
    assert torch.allclose(bound.decoder_nll(x8, z, 4.0, 256), expected8)


# ----- samplers ------------------------------------------------------------------------------
def test_ddim_with_eta_0_is_deterministic_given_the_start_noise():
    schedule = NoiseSchedule("cosine")
    eps_hat = gaussian_denoiser(0.2, 0.5)
    z = torch.randn(5, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    grid = schedule.grid(20)
    a = S.ddim(eps_hat, z, grid, eta=0.0, rng=rng(5, 1), clip=False)
    b = S.ddim(eps_hat, z, grid, eta=0.0, rng=rng(5, 2), clip=False)
    c = S.ddim(eps_hat, z, grid, eta=1.0, rng=rng(5, 2), clip=False)
    assert torch.equal(a, b) and not torch.allclose(a, c)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "heun"])
def test_samplers_reproduce_a_known_distribution(sampler):
    """Data x ~ N(0.3, 0.4^2) per value with its exact denoiser: after many steps every
    sampler must draw that distribution."""
    schedule = NoiseSchedule("cosine", -10.0, 12.0)
    eps_hat = gaussian_denoiser(0.3, 0.4)
    n = 4000
    r = rng(n, 7)
    z = r.randn(1, 2, 2)
    grid = schedule.grid(200)
    if sampler == "heun":
        out = S.heun(eps_hat, z, grid)
    else:
        out = S.ddim(eps_hat, z, grid, eta=1.0 if sampler == "ddpm" else 0.0, rng=r, clip=False)
    alpha = alpha_sigma(torch.tensor(12.0))[0]
    x = (out / alpha).flatten()
    assert abs(float(x.mean()) - 0.3) < 0.02
    assert abs(float(x.std()) - 0.4) < 0.02


def test_guidance_weights_0_and_1_are_the_unconditional_and_conditional_models():
    def eps_cond(z, lam, labels):
        shift = 0.0 if labels is None else labels.reshape(-1, 1, 1, 1).double()
        return 0.1 * z + shift
    y = torch.tensor([1, 2])
    z, lam = torch.randn(2, 1, 2, 2), torch.zeros(2)
    assert torch.equal(S.guided(eps_cond, y, 0.0)(z, lam), eps_cond(z, lam, None))
    assert torch.equal(S.guided(eps_cond, y, 1.0)(z, lam), eps_cond(z, lam, y))
    w3 = S.guided(eps_cond, y, 3.0)(z, lam)
    assert torch.allclose(w3, eps_cond(z, lam, None) + 3 * y.reshape(-1, 1, 1, 1).double())


def test_repaint_completes_the_image_its_known_pixels_point_to():
    g = torch.Generator().manual_seed(5)
    points = (torch.rand(2, 1, 4, 4, generator=g) > 0.5).double() * 2 - 1
    points[1, :, :2] = -points[0, :, :2]  # the top halves tell the two images apart
    schedule = NoiseSchedule("cosine")
    eps_hat = points_denoiser(points)
    keep = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    keep[:, :, :2] = True
    n = 20
    x_known = points[torch.arange(n) % 2]
    r = rng(n, 3)

    def step(z, lam_t, lam_s):
        return S.ddim_step(eps_hat, z, lam_t, lam_s, 1.0, r, True)

    out = S.inpaint(step, r.randn(1, 4, 4), schedule.grid(30), x_known, keep, r, resample=2)
    alpha = alpha_sigma(torch.tensor(schedule.lambda_max))[0]
    assert torch.equal(torch.sign(out / alpha), x_known)


def test_the_ancestral_step_draws_the_posterior_q_of_z_s_given_z_t_and_x_hat():
    """eta = 1 must be the DDPM posterior N(mu, var) of Ho et al. (VDM's form:
    mu = (alpha_s / alpha_t) r z_t + (1 - r) alpha_s x_hat, var = sigma_s^2 (1 - r), with
    r = SNR_t / SNR_s), not merely some sampler with the right marginals."""
    n = 20_000
    lam_t, lam_s = torch.tensor(-1.0), torch.tensor(2.0)
    z_t = torch.full((n, 1, 1, 1), 0.7)
    x_hat = -0.4

    def eps_hat(z, lam):  # a denoiser whose clean-image guess is x_hat everywhere
        alpha, sigma = alpha_sigma(lam.reshape(-1, 1, 1, 1))
        return (z - alpha * x_hat) / sigma

    out = S.ddim_step(eps_hat, z_t, lam_t, lam_s, 1.0, rng(n, 4), clip=True).flatten()
    (a_t, _), (a_s, s_s) = alpha_sigma(lam_t), alpha_sigma(lam_s)
    r = math.exp(float(lam_t - lam_s))
    mu = float(a_s / a_t) * r * 0.7 + (1 - r) * float(a_s) * x_hat
    var = float(s_s) ** 2 * (1 - r)
    assert abs(float(out.mean()) - mu) < 4 * math.sqrt(var / n)
    assert abs(float(out.var()) / var - 1) < 0.03
