"""Super-resolution training: a tiny SRResNet learns, held-out images stay held out."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from genvision.cli.superres import cmd_superres
from genvision.models.superres import SRResNet, SRResNetConfig

TINY = ["--width", "4", "--blocks", "1", "--patch", "24", "--patches", "32",
        "--val-patches", "8", "--batch-size", "8", "--no-progress"]


@pytest.mark.parametrize("upsampler", ["espcn", "srresnet"])
def test_tiny_srresnet_overfits_one_patch(upsampler):
    from skimage.data import astronaut

    torch.manual_seed(0)
    hr = torch.from_numpy(astronaut()[180:212, 200:232].copy()).permute(2, 0, 1)[None]
    hr = hr.float() / 255.0
    model = SRResNet(SRResNetConfig(scale=2, width=16, blocks=2, upsampler=upsampler))
    assert abs(float(model.loss(hr)["psnr_gain"])) < 1e-4  # zero tail: starts at bicubic
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(150):
        loss = model.loss(hr)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(model.loss(hr)["psnr_gain"]) > 3.0  # dB over bicubic


def _guard_photos(monkeypatch):
    from genvision.data import photos

    real = photos._load_one
    held = set(photos.PHOTO_SPLITS["test"])

    def guarded(name):
        assert name not in held, f"held-out photo {name} was read while training"
        return real(name)

    monkeypatch.setattr(photos, "_load_one", guarded)
    return held


def test_heldout_photos_are_never_read_while_training(tmp_path, monkeypatch):
    held = _guard_photos(monkeypatch)
    out = tmp_path / "sr"
    assert cmd_superres(["train", "--scale", "2", "--steps", "2", "--out", str(out),
                         *TINY]) == 0
    data = json.loads((out / "run.json").read_text())["data"]
    assert set(data["heldout_images"]) == held
    assert not held & set(data["train_images"]) and not held & set(data["val_images"])


def test_heldout_folder_images_are_never_read_while_training(tmp_path, monkeypatch):
    from genvision.apps.common import images

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(
            folder / f"img{i}.png")
    held = set(images.split_names(f"folder:{folder}", "test"))
    assert len(held) == 1
    real = images.read_image

    def guarded(path):
        assert images.Path(path).stem not in held, "held-out file read while training"
        return real(path)

    monkeypatch.setattr(images, "read_image", guarded)
    out = tmp_path / "sr"
    assert cmd_superres(["train", "--scale", "4", "--steps", "2", "--out", str(out),
                         "--data", f"folder:{folder}", *TINY]) == 0
    data = json.loads((out / "run.json").read_text())["data"]
    assert set(data["heldout_images"]) == held and len(data["train_images"]) == 8
