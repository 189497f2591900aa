"""The ddpm and flow-matching models: parameterisations, training, guidance, the CLI.

The maths (schedules, samplers, the bound) is in ``test_diffusion_maths.py``; the shared
protocol checks (save/load, exact resume, seeded samples, ...) in ``test_conformance.py``.
"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

import genvision
from genvision.cli import main
from genvision.data.embedded import _digits
from genvision.models.diffusion import DDPM, FlowMatching
from genvision.models.diffusion_config import DDIMSampler, DiffusionConfig, FlowMatchingConfig
from genvision.models.diffusion_schedule import alpha_sigma

TINY = {"image_size": (8, 8), "width": 8, "depth": 1, "emb_dim": 16, "sample_steps": 4,
        "eval_timesteps": 4, "complete_resample": 1}


def tiny(parameterization: str = "eps", **kw) -> DDPM:
    if parameterization == "velocity":
        return FlowMatching(FlowMatchingConfig(**{**TINY, **kw}))
    return DDPM(DiffusionConfig(**{**TINY, "parameterization": parameterization, **kw}))


@pytest.mark.parametrize("parameterization", ["eps", "v", "velocity", "logits"])
def test_a_perfect_network_output_gives_back_the_true_noise(parameterization):
    """eps_hat must invert each parameterisation's target: feed the network the exact
    target and the noise predictor must return the noise that made z."""
    model = tiny(parameterization)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 8, 8, generator=g) * 2 - 1
    eps = torch.randn(3, 1, 8, 8, generator=g)
    lam = torch.tensor([-4.0, 0.5, 6.0])
    alpha, sigma = alpha_sigma(lam.reshape(-1, 1, 1, 1))
    z = alpha * x + sigma * eps
    if parameterization == "logits":  # binary data; the perfect log-odds are sure of x
        x = torch.sign(x)
        z = alpha * x + sigma * eps
    target = {"eps": eps, "v": alpha * eps - sigma * x, "velocity": eps - x,
              "logits": 200.0 * x}[parameterization]
    model._net = lambda z_in, lam_in, labels: target  # the perfect network
    assert torch.allclose(model.eps_hat(z, lam), eps, atol=1e-5)


def test_a_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = tiny("eps", width=16)
    x = torch.as_tensor(_digits()[0][:16] > 127).float()  # 16 binarised 8x8 digits
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(1)
    first = float(model.loss(x)["loss"].detach())
    for _ in range(300):
        opt.zero_grad()
        model.loss(x)["loss"].backward()
        opt.step()
    torch.manual_seed(1)
    last = float(model.loss(x)["loss"].detach())
    assert last < first / 4, (first, last)


def test_guidance_0_samples_the_unconditional_model_whatever_the_label():
    model = tiny("eps", num_classes=3)
    for p in model.parameters():  # weights large enough for labels to matter
        torch.nn.init.normal_(p, std=0.3)
    seed = genvision.models.sampling.SampleRNG
    a = model.sample(4, torch.tensor(0), seed(range(4)), DDIMSampler(steps=3, guidance=0.0))
    b = model.sample(4, torch.tensor(2), seed(range(4)), DDIMSampler(steps=3, guidance=0.0))
    c = model.sample(4, torch.tensor(2), seed(range(4)), DDIMSampler(steps=3, guidance=1.0))
    assert torch.equal(a, b) and not torch.equal(b, c)


def test_label_dropout_uses_the_null_label_in_training_only():
    model = tiny("eps", num_classes=3, label_dropout=0.5)
    y = torch.zeros(1000, dtype=torch.long)
    dropped = model._train_labels(y)
    assert 400 < int((dropped == 3).sum()) < 600 and set(dropped.tolist()) <= {0, 3}


def test_8bit_models_sample_on_the_256_levels_and_bound_in_nats():
    model = tiny("eps", data_kind="grey8")
    x = torch.randint(0, 256, (2, 1, 8, 8)).float() / 255
    out = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out * 255, (out * 255).round())
    terms = model.bound_terms(x, k=2, generator=torch.Generator().manual_seed(0))
    assert all(bool((v >= 0).all()) for v in terms.values())
    lp = model.log_prob(x, k=2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(lp, -sum(terms.values()))


def test_the_bound_does_not_depend_on_the_batch_it_is_computed_in():
    model = tiny("v")
    x = (torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    whole = model.log_prob(x, k=3, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    parts = torch.cat([model.log_prob(x[:2], k=3, generator=g),
                       model.log_prob(x[2:], k=3, generator=g)])
    assert torch.allclose(whole, parts)


def test_cli_trains_samples_and_evaluates_a_bound(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "flow-matching", "--data", "digits", "--steps", "3", "--out", out,
            "--width", "8", "--depth", "1", "--emb-dim", "16", "--sample-steps", "2",
            "--batch-size", "16", "--no-progress"]
    assert main([str(a) for a in argv]) == 0
    assert (out / "denoising.png").exists() and (out / "steps.png").exists()
    page = (out / "report.html").read_text()
    # the grids carry no labels: the captions say what the rows and columns are
    assert "drawn with 5, 10, 20 and 50 DDIM steps" in page
    assert "pure noise (left) to the data (right)" in page
    png = tmp_path / "s.png"
    assert main(["sample", str(out), "-n", "4", "-o", str(png), "--sampler", "heun",
                 "--sampler-opt", "steps=2"]) == 0
    assert png.exists()
    capsys.readouterr()
    assert main(["evaluate", str(out), "--metrics", "nll", "--n", "8", "--k", "2"]) == 0
    printed = capsys.readouterr().out
    assert "nats/image" in printed and "VDM bound" in printed, printed
    record = json.loads((out / "metrics.json").read_text())
    text = json.dumps(record)
    assert '"kind": "bound"' in text and "2 stratified timesteps" in text


def test_sample_takes_steps_and_guidance_and_completes_images(tmp_path, capsys):
    model = tiny("eps", num_classes=2)
    model.save_pretrained(tmp_path / "m")
    png = tmp_path / "s.png"
    assert main(["sample", str(tmp_path / "m"), "-n", "2", "-o", str(png), "--sampler",
                 "ddim", "--steps", "2", "--guidance", "3", "--label", "1"]) == 0
    Image.fromarray(((torch.rand(8, 8) > 0.5).numpy() * 255).astype("uint8")).save(
        tmp_path / "digit.png")
    out = tmp_path / "c.png"
    assert main(["sample", str(tmp_path / "m"), "-n", "2", "--complete",
                 str(tmp_path / "digit.png"), "--steps", "2", "--label", "0",
                 "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["sample", str(tmp_path / "m"), "-n", "2", "-o", str(png),
                 "--guidance", "-1"]) == 2
    assert "guidance" in capsys.readouterr().err


def test_logits_recover_the_noise_at_high_snr_without_any_network():
    """The evidence term alone decides a binary pixel once sigma is small: an untrained
    network (zero output) must already give back the noise there."""
    model = tiny("logits")
    model._net = lambda z_in, lam_in, labels: torch.zeros_like(z_in)
    g = torch.Generator().manual_seed(0)
    x = torch.sign(torch.randn(4, 1, 8, 8, generator=g))
    eps = torch.randn(4, 1, 8, 8, generator=g)
    lam = torch.full((4,), 10.0)
    alpha, sigma = alpha_sigma(lam.reshape(-1, 1, 1, 1))
    assert torch.allclose(model.eps_hat(alpha * x + sigma * eps, lam), eps, atol=1e-3)
    lam = torch.full((4,), -2.0)  # at low SNR it does not: the network has to know x
    alpha, sigma = alpha_sigma(lam.reshape(-1, 1, 1, 1))
    assert not torch.allclose(model.eps_hat(alpha * x + sigma * eps, lam), eps, atol=0.1)


def test_logits_refuse_8bit_data():
    with pytest.raises(genvision.errors.UserError, match="binary"):
        tiny("logits", data_kind="grey8")


def test_auto_parameterization_is_logits_for_binary_and_v_for_8bit_data():
    assert DiffusionConfig().parameterization == "logits"
    assert DiffusionConfig(data_kind="grey8").parameterization == "v"
    assert FlowMatchingConfig().parameterization == "velocity"
    assert DiffusionConfig(parameterization="eps").parameterization == "eps"
