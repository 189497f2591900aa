"""Colorization: Lab conversion, the U-Net, regression and GAN training, apply, compare."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genvision.apps.colorize import load_colorizer
from genvision.apps.common.metrics import colourfulness
from genvision.cli.colorize import cmd_colorize
from genvision.data.lab import lab_to_rgb, patches_to_lab, rgb_to_lab
from genvision.errors import UserError
from genvision.models.colorize import ColorizeConfig, ColorizeRegression

TINY = ["--width", "4", "--depth", "2", "--disc-width", "4", "--disc-layers", "2",
        "--patch", "24", "--patches", "32", "--val-patches", "8", "--batch-size", "8",
        "--eval-every", "3", "--no-progress"]


def test_lab_round_trip_is_lossless():
    rng = np.random.default_rng(0)
    rgb = rng.random((64, 64, 3))
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-4)
    from skimage.data import coffee

    photo = coffee()[:64, :64]
    back = lab_to_rgb(rgb_to_lab(photo))
    np.testing.assert_allclose(back, photo / 255.0, atol=1e-4)
    lab = patches_to_lab(torch.from_numpy(photo).permute(2, 0, 1)[None].contiguous())
    assert lab.shape == (1, 3, 64, 64) and 0 <= float(lab[:, 0].min()) <= 1
    assert float(lab[:, 1:].abs().max()) < 1.0  # ab / 110


def test_unet_colours_any_image_size():
    model = ColorizeRegression(ColorizeConfig(width=4, depth=3)).eval()
    for h, w in ((37, 53), (8, 5), (64, 64)):
        ab = model.predict_ab(torch.rand(1, 1, h, w))
        assert ab.shape == (1, 2, h, w) and float(ab.abs().max()) < 1


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("col") / "color"
    assert cmd_colorize(["train", "--steps", "8", "--out", str(out), *TINY]) == 0
    return out


def one_line_error(argv: list[str], match: str) -> None:
    with pytest.raises(UserError, match=match) as info:
        cmd_colorize(argv)
    assert "\n" not in str(info.value) and info.value.exit_code == 2


def test_train_writes_regression_then_gan(run):
    info = json.loads((run / "run.json").read_text())
    assert set(info["stages"]) == {"regression", "gan"}
    assert info["stages"]["gan"]["init"].endswith("regression")
    assert load_colorizer(run).name == "colorize-regression"
    assert load_colorizer(run, "gan").name == "colorize-gan"
    last = json.loads((run / "gan" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"l1", "chroma_pred", "chroma_true"} <= set(last)


def test_gan_from_scratch(tmp_path, capsys):
    out = tmp_path / "scratch"
    assert cmd_colorize(["train", "--method", "gan", "--init", "none", "--steps", "2",
                         "--out", str(out), *TINY]) == 0
    assert "from scratch" in capsys.readouterr().out


def test_compare_reports_psnr_ssim_and_colourfulness(run, tmp_path, capsys):
    assert cmd_colorize(["compare", str(run), "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    for word in ("grey input", "regression", "GAN", "truth", "colourfulness", "chelsea"):
        assert word in text
    results = json.loads((tmp_path / "compare.json").read_text())
    assert results["methods"] == ["grey", "regression", "gan"]
    assert results["mean"]["grey"]["colourfulness"] < 1.0
    assert results["mean"]["truth"]["colourfulness"] > 10
    assert Image.open(tmp_path / "compare.png").width > 4 * 200


def test_apply_colours_a_grey_image(run, tmp_path, capsys):
    from skimage.data import chelsea

    grey = tmp_path / "grey.png"
    Image.fromarray(chelsea()[:40, :50].mean(axis=2).astype(np.uint8)).save(grey)
    out = tmp_path / "colour.png"
    assert cmd_colorize(["apply", str(run), str(grey), "-o", str(out), "--method", "gan"]) == 0
    result = np.asarray(Image.open(out))
    assert result.shape == (40, 50, 3)
    colour = tmp_path / "colour_in.png"
    Image.fromarray(chelsea()[:40, :50]).save(colour)
    cmd_colorize(["apply", str(run), str(colour), "-o", str(out)])
    assert "replaced" in capsys.readouterr().out
    assert np.asarray(Image.open(out)).shape == (40, 50, 3)


def test_colourfulness_of_grey_and_of_hand_computed_images():
    """Hasler and Suesstrunk's M = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)
    with rg = R - G, yb = (R + G) / 2 - B (population std)."""
    grey = np.repeat(np.arange(0, 250, 10, dtype=np.uint8).reshape(5, 5, 1), 3, axis=2)
    assert colourfulness(grey) == 0.0  # R = G = B everywhere: no colour at all
    red = np.zeros((2, 3, 3), np.uint8)
    red[..., 0] = 255  # rg = 255, yb = 127.5 everywhere: no spread
    assert colourfulness(red) == pytest.approx(0.3 * math.hypot(255, 127.5))
    # one pure red and one pure blue pixel: rg = (255, 0), yb = (127.5, -255)
    rb = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    spread = math.hypot(127.5, 191.25)  # std of (255, 0) and of (127.5, -255)
    centre = math.hypot(127.5, -63.75)  # their means
    assert colourfulness(rb) == pytest.approx(spread + 0.3 * centre)
    assert colourfulness(rb / 255.0) == pytest.approx(spread + 0.3 * centre)  # float [0, 1]


def test_bad_inputs_give_one_line_errors(run, tmp_path):
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    one_line_error(["apply", str(run), str(corrupt), "-o", str(tmp_path / "x.png")],
                   "cannot read image")
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((30, 30), 50, np.uint8)).save(grey)
    one_line_error(["compare", str(run), "--images", str(grey)], "no true colour")
    one_line_error(["paint"], "unknown colorize action")
    one_line_error(["apply", str(tmp_path), str(grey), "-o", str(tmp_path / "x.png")],
                   "not a colorize run|holds no model")
    one_line_error(["train", "--method", "regression", "--out", str(run), "--steps", "1"],
                   "already holds a trained regression")
    one_line_error(["train", "--out", str(run), "--resume"], "continues one stage")


def test_errors_print_one_line_through_the_genvision_cli(capsys, tmp_path):
    from genvision import cli

    assert cli.COMMANDS["colorize"].resolve() is cmd_colorize  # the table finds the command
    assert cli.main(["colorize", "apply", str(tmp_path / "none"), "a.png", "-o", "b.png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert cli.main(["colorize", "--help"]) == 0
    assert "colorize apply" in capsys.readouterr().out
