"""`genvision sample RUN --complete IMAGE --keep-rows K` and its bad-input errors.

Uses a one-layer causal model built on the shared autoregressive base, so the command is
tested independently of any particular fully visible architecture.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from genvision.cli import main
from genvision.models import base
from genvision.models.pixel_base import PixelAutoregressive, PixelModelConfig
from genvision.nn.masked import CausalConv2d


@dataclasses.dataclass
class _OneLayerConfig(PixelModelConfig):
    pass


class _OneLayer(PixelAutoregressive):
    config_class = _OneLayerConfig

    def __init__(self, config: _OneLayerConfig):
        super().__init__(config)
        c = config.channels
        torch.manual_seed(config.seed)
        self.conv = CausalConv2d(c, c * self.head.params_per_channel, 3, data_channels=c,
                                 mask_type="A")
        self.label_bias = torch.nn.Embedding(max(config.num_classes, 1),
                                             c * self.head.params_per_channel)

    def params(self, x, y=None):
        out = self.conv(self.head.network_input(x))
        if y is not None:
            out = out + self.label_bias(y)[:, :, None, None]
        return out


OneLayer = base._REGISTRY.get("test-one-layer") or base.register("test-one-layer")(_OneLayer)


def gv(*argv: object) -> int:
    return main([str(a) for a in argv])


@pytest.fixture()
def model_dir(tmp_path):
    model = OneLayer(_OneLayerConfig(channels=1, image_size=(6, 6)))
    model.save_pretrained(tmp_path / "m")
    return tmp_path / "m"


def _png(path, array):
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def test_completion_keeps_the_top_rows(model_dir, tmp_path, capsys):
    img = np.zeros((6, 6), dtype=np.uint8)
    img[:3, 1:5] = 255
    src = _png(tmp_path / "digit.png", img)
    out = tmp_path / "done.npz"
    assert gv("sample", model_dir, "--complete", src, "--keep-rows", "3", "-n", "4",
              "-o", out) == 0
    x = np.load(out)["x"]  # original, kept part, 4 completions
    assert x.shape == (6, 1, 6, 6)
    assert set(np.unique(x)) <= {0.0, 1.0}
    np.testing.assert_array_equal(x[2:, :, :3], np.repeat(x[:1, :, :3], 4, axis=0))
    np.testing.assert_array_equal(x[1, :, 3:], 0)  # the kept-part panel blanks the rest
    assert gv("sample", model_dir, "--complete", src, "-o", tmp_path / "grid.png") == 0
    assert "completions" in capsys.readouterr().out


@pytest.mark.parametrize("make, extra, message", [
    (lambda p: _png(p, np.zeros((7, 6))), [], "is 6x7 pixels but the model generates 6x6"),
    (lambda p: _png(p, np.zeros((6, 6, 3)) + [[[255, 0, 0]]]), [], "is a colour image"),
    (lambda p: _png(p, np.zeros((6, 6))), ["--keep-rows", "6"], "--keep-rows 6 is out of range"),
    (lambda p: _png(p, np.zeros((6, 6))), ["--keep-rows", "-1"], "out of range"),
    (lambda p: _png(p, np.zeros((6, 6))), ["--label", "3"], "unconditional"),
    (lambda p: (p.write_bytes(b"\x89PNG broken"), p)[1], [], "cannot read image"),
])
def test_bad_completion_input_is_one_line(model_dir, tmp_path, capsys, make, extra, message):
    src = make(tmp_path / "in.png")
    out = tmp_path / "out.png"
    assert gv("sample", model_dir, "--complete", src, *extra, "-o", out) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not out.exists()


def test_keep_rows_needs_complete_and_models_must_support_it(model_dir, tmp_path, capsys):
    assert gv("sample", model_dir, "--keep-rows", "2", "-o", tmp_path / "x.png") == 2
    assert "--keep-rows only applies with --complete" in capsys.readouterr().err
    from genvision.models.vae import VAE, VAEConfig

    VAE(VAEConfig(image_size=(6, 6), hidden=(4, 8), fc_dim=8, latent_dim=2, ar_layers=0)
        ).save_pretrained(tmp_path / "vae")
    src = _png(tmp_path / "in.png", np.zeros((6, 6)))
    assert gv("sample", tmp_path / "vae", "--complete", src, "-o", tmp_path / "y.png") == 2
    assert "vae cannot complete images" in capsys.readouterr().err
