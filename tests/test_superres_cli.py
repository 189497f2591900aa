"""`genvision superres train|apply|compare` end to end on tiny models, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genvision.apps.superres import load_sr_model
from genvision.cli.superres import cmd_superres
from genvision.errors import UserError
from genvision.train.checkpoint import latest_checkpoint

TINY = ["--width", "4", "--blocks", "1", "--disc-width", "4", "--disc-layers", "2",
        "--patch", "24", "--patches", "32", "--val-patches", "8", "--batch-size", "8",
        "--eval-every", "3", "--no-progress"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sr") / "sr4"
    assert cmd_superres(["train", "--scale", "4", "--steps", "8", "--out", str(out),
                         *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    from skimage.data import astronaut

    path = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(astronaut()[:50, :70]).save(path)
    return path


def one_line_error(argv: list[str], match: str) -> str:
    with pytest.raises(UserError, match=match) as info:
        cmd_superres(argv)
    text = str(info.value)
    assert "\n" not in text and info.value.exit_code == 2
    return text


def test_train_writes_both_stages(run):
    info = json.loads((run / "run.json").read_text())
    assert info["scale"] == 4 and set(info["stages"]) == {"srresnet", "srgan"}
    assert "discriminator" in info["stages"]["srgan"]["perceptual"]
    assert "antialias" in info["degradation"]
    for stage in ("srresnet", "srgan"):
        assert latest_checkpoint(run / stage) is not None
        lines = [json.loads(s) for s in (run / stage / "metrics.jsonl").read_text().split("\n")
                 if s]
        assert {"psnr", "psnr_gain"} <= set(lines[-1])
    assert load_sr_model(run).name == "srresnet"
    assert load_sr_model(run, "srgan").name == "srgan"


def test_train_states_the_perceptual_network(tmp_path, capsys, run):
    out = tmp_path / "again"
    cmd_superres(["train", "--method", "srgan", "--init", str(run / "srresnet"), "--steps",
                  "1", "--out", str(out), "--perceptual", "none", *TINY[4:]])
    assert "perceptual loss: none" in capsys.readouterr().out


def test_apply_upscales_in_tiles(run, photo, tmp_path, capsys):
    out = tmp_path / "big.png"
    assert cmd_superres(["apply", str(run), str(photo), "-o", str(out), "--tile", "16"]) == 0
    assert Image.open(out).size == (280, 200)
    assert "srresnet" in capsys.readouterr().out
    for method in ("srgan", "bicubic"):
        cmd_superres(["apply", str(run), str(photo), "-o", str(out), "--method", method])
        assert Image.open(out).size == (280, 200)


def test_compare_writes_table_figure_and_numbers(run, tmp_path, capsys):
    assert cmd_superres(["compare", str(run), "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    for word in ("bicubic", "SRResNet", "SRGAN", "chelsea", "coffee", "mean", "PSNR-Y",
                 "SSIM-RGB", "4 px cropped"):
        assert word in text
    results = json.loads((tmp_path / "compare.json").read_text())
    assert results["methods"] == ["bicubic", "srresnet", "srgan"]
    assert results["mean"]["bicubic"]["psnr_y"] > 20
    fig = Image.open(tmp_path / "compare.png")
    assert fig.width > 4 * 96 and fig.height > 2 * 96


def test_resume_continues_one_stage(run, capsys):
    before = latest_checkpoint(run / "srresnet")
    assert cmd_superres(["train", "--method", "srresnet", "--resume", "--steps", "2",
                         "--out", str(run), "--no-progress"]) == 0
    assert latest_checkpoint(run / "srresnet").name > before.name


def test_bad_inputs_give_one_line_errors(run, photo, tmp_path):
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((20, 20), 90, np.uint8)).save(grey)
    one_line_error(["apply", str(run), str(grey), "-o", str(tmp_path / "x.png")],
                   "greyscale")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(Image.open(photo).tobytes()[:100])
    one_line_error(["apply", str(run), str(corrupt), "-o", str(tmp_path / "x.png")],
                   "cannot read image")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(photo.read_bytes()[:200])
    one_line_error(["apply", str(run), str(truncated), "-o", str(tmp_path / "x.png")],
                   "cannot read image")
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((12, 30, 3), np.uint8)).save(small)
    one_line_error(["compare", str(run), "--images", str(small)], "too small to evaluate at x4")
    one_line_error(["apply", str(run), str(photo), "-o", str(tmp_path / "x.xyz")],
                   "unknown file type")
    one_line_error(["apply", str(tmp_path / "nope"), str(photo), "-o", str(tmp_path / "x.png")],
                   "does not exist")
    one_line_error(["enhance"], "unknown superres action")
    one_line_error(["train", "--scale", "5"], "invalid choice")


def test_bad_training_requests_give_one_line_errors(run, tmp_path):
    fresh = str(tmp_path / "fresh")
    one_line_error(["train", "--method", "srgan", "--out", fresh, "--steps", "1"],
                   "starts from a trained srresnet")
    one_line_error(["train", "--method", "srresnet", "--out", str(run), "--steps", "1"],
                   "already holds a trained srresnet")
    one_line_error(["train", "--scale", "2", "--out", str(run), "--steps", "1"], "x4 run")
    one_line_error(["train", "--method", "srgan", "--init", str(run / "srresnet"), "--out",
                    fresh, "--perceptual", "vgg19:/no/such/vgg19.pth", "--steps", "1", *TINY[4:]],
                   "VGG19 weights .* do not exist")
    one_line_error(["train", "--out", fresh, "--perceptual", "alexnet"], "unknown --perceptual")
    one_line_error(["train", "--out", fresh, "--perceptual", "vgg19:/no/such.pth"],
                   "do not exist")
    assert not (tmp_path / "fresh" / "srresnet").exists()  # refused before any training


def test_errors_print_one_line_through_the_genvision_cli(capsys, tmp_path):
    from genvision import cli

    assert cli.COMMANDS["superres"].resolve() is cmd_superres  # the table finds the command
    assert cli.main(["superres", "compare", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "(fix: " in err
    assert cli.main(["superres", "--help"]) == 0
    assert "superres apply" in capsys.readouterr().out
