"""VGG19 feature layers in plain torch, loading local weights safely, SRGAN steps."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from genvision.errors import CheckpointError, UserError
from genvision.models.superres import SRGAN, SRGANConfig
from genvision.nn.perceptual import (
    VGG19_RELUS,
    describe,
    load_vgg19,
    parse_spec,
    vgg19_features,
)
from genvision.train import TrainConfig
from genvision.train.phases import Stepper

#: torchvision's vgg19().features: indices of the 16 convolutions
TORCHVISION_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


def _first_convs() -> dict[str, torch.Tensor]:
    """A torchvision-style state dict holding what relu1_2 needs, plus a classifier key."""
    g = torch.Generator().manual_seed(0)
    return {"features.0.weight": torch.randn(64, 3, 3, 3, generator=g),
            "features.0.bias": torch.randn(64, generator=g),
            "features.2.weight": torch.randn(64, 64, 3, 3, generator=g) * 0.05,
            "features.2.bias": torch.randn(64, generator=g),
            "classifier.0.bias": torch.zeros(4096)}


def test_vgg19_layout_uses_torchvision_key_names():
    keys = list(vgg19_features().state_dict())
    assert keys == [f"features.{i}.{p}"[len("features."):] for i in TORCHVISION_CONVS
                    for p in ("weight", "bias")]
    assert VGG19_RELUS["relu5_4"] == 35 and len(vgg19_features()) == 36


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_load_vgg19_from_a_local_file(tmp_path, suffix):
    state = _first_convs()
    path = tmp_path / f"vgg19{suffix}"
    (save_file if suffix == ".safetensors" else torch.save)(state, str(path))
    net, info = load_vgg19(str(path), "relu1_2")
    torch.testing.assert_close(net[2].weight, state["features.2.weight"])
    assert info["layer"] == "relu1_2" and len(info["sha256"]) == 16
    assert not any(p.requires_grad for p in net.parameters())
    assert str(path.resolve()) in describe(f"vgg19:{path}", info)


def test_load_vgg19_refuses_bad_files(tmp_path):
    state = _first_convs()
    wrong = dict(state, **{"features.2.weight": torch.zeros(32, 64, 3, 3)})
    save_file(wrong, str(tmp_path / "wrong.safetensors"))
    with pytest.raises(CheckpointError, match="not VGG19: wrong shapes"):
        load_vgg19(str(tmp_path / "wrong.safetensors"), "relu1_2")
    with pytest.raises(CheckpointError, match="not VGG19: 4 missing keys .features.5.weight"):
        load_vgg19(str(tmp_path / "wrong.safetensors"), "relu2_2")
    evil = tmp_path / "evil.pth"
    torch.save({"features.0.weight": torch.zeros(1), "run": os.system}, evil)
    with pytest.raises(CheckpointError, match="not unpickled"):
        load_vgg19(str(evil), "relu1_2")
    (tmp_path / "cut.pth").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="not a readable PyTorch file"):
        load_vgg19(str(tmp_path / "cut.pth"), "relu1_2")
    with pytest.raises(CheckpointError, match="do not exist"):
        load_vgg19(str(tmp_path / "none.pth"))
    with pytest.raises(UserError, match="unknown VGG19 layer"):
        load_vgg19(str(evil), "relu9_9")
    for spec in ("vgg19", "vgg16:x", "disc:x"):
        with pytest.raises(UserError, match="unknown --perceptual"):
            parse_spec(spec)


@pytest.mark.parametrize("perceptual", ["disc", "none", "vgg19"])
def test_srgan_training_step(tmp_path: Path, perceptual):
    torch.manual_seed(0)
    spec = perceptual
    if perceptual == "vgg19":
        save_file(_first_convs(), str(tmp_path / "vgg.safetensors"))
        spec = f"vgg19:{tmp_path / 'vgg.safetensors'}"
    model = SRGAN(SRGANConfig(scale=2, width=4, blocks=1, disc_width=4, disc_layers=2,
                              perceptual=spec, perceptual_layer="relu1_2"))
    text = model.prepare_perceptual()
    assert {"disc": "discriminator", "none": "none", "vgg19": "VGG19 relu1_2"}[perceptual] in text
    stepper = Stepper(model, TrainConfig(lr=1e-3, beta1=0.5, beta2=0.9, ema_decay=0),
                      torch.device("cpu"))
    before = [p.detach().clone() for p in model.parameters()]
    terms = stepper.step(torch.rand(2, 3, 24, 24), None, 0)
    assert {"loss", "pixel", "perceptual", "adv", "d_loss", "psnr"} <= set(terms)
    assert all(math.isfinite(v) for v in terms.values())
    after = dict(model.named_parameters())
    moved = {name for (name, a) in zip(after, before, strict=True)
             if not torch.equal(a, after[name])}
    # every discriminator weight and the generator's (zero-initialised) last conv
    assert {n for n in after if n.startswith("discriminator.")} <= moved
    assert "generator.tail.0.weight" in moved
    assert not any("vgg" in k for k in model.state_dict())  # frozen VGG is not saved
