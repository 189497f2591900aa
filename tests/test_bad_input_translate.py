"""Bad-input corpus, ``genvision translate``'s part (issue 19): data options, pix2pix on
unpaired data, a run's data changed, and apply on files it cannot translate.

Every case asserts the whole refusal contract of :mod:`bad_input` (exit 2, one line, no
traceback, nothing pre-existing changed, nothing written).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bad_input import Case, check_refusal
from genvision.cli import main
from genvision.models.translation import CycleGAN, CycleGANConfig, Pix2Pix, TranslationConfig

TINY = ["--width", "4", "--depth", "1", "--disc-width", "4", "--disc-layers", "1",
        "--batch-size", "4", "--eval-every", "0", "--no-progress"]
NETS = {"width": 4, "depth": 1, "disc_width": 4, "disc_layers": 1, "image_size": (8, 8),
        "channels": 4, "a_channels": 1}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A grey -> RGB CycleGAN and pix2pix, saved (apply reads a model directory too)."""
    root = tmp_path_factory.mktemp("translators")
    CycleGAN(CycleGANConfig(**NETS, pool_size=2)).save_pretrained(root / "cyclegan")
    Pix2Pix(TranslationConfig(**NETS)).save_pretrained(root / "pix2pix")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A translate run with one method trained (1 step on digits-mnist)."""
    out = tmp_path_factory.mktemp("translate-run") / "run"
    assert main(["translate", "train", "--method", "cyclegan", "--pair", "digits-mnist",
                 "--steps", "1", "--out", str(out), *TINY]) == 0
    return out


def grey(folder: Path, name: str = "digit.png", size: tuple[int, int] = (8, 8)) -> Path:
    path = folder / name
    Image.fromarray(np.zeros(size, np.uint8)).save(path)
    return path


def colour(folder: Path, name: str = "photo.png") -> Path:
    path = folder / name
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    return path


def subfolder(f: Path) -> Path:
    (f / "sub").mkdir()
    return f / "sub"


def apply_case(name, make, words, method="cyclegan", extra=()):
    def build(f: Path) -> list[object]:
        inputs = make(f)
        return ["translate", "apply", f.parent / "models" / method, *inputs,
                "--out", f / "out", *extra]
    return Case(name, build, words)


def not_an_image(f: Path) -> list[Path]:
    path = f / "notes.png"
    path.write_text("not an image")
    return [path]


def huge(f: Path) -> list[Path]:
    return [grey(f, "huge.png", (2100, 2100))]


def existing_output(f: Path) -> list[Path]:
    (f / "out").mkdir()
    (f / "out" / "digit_a2b.png").write_bytes(b"the user's own file")
    return [grey(f)]


APPLY_CASES = [
    apply_case("apply a text file", not_an_image, ("cannot read image", "notes.png")),
    apply_case("apply a colour image to a grey domain", lambda f: [colour(f)],
               ("colour (RGB) image", "domain A", "convert it to grey")),
    apply_case("apply a grey image to a colour domain (b2a)", lambda f: [grey(f)],
               ("grey image", "domain B", "RGB"), extra=("--direction", "b2a")),
    apply_case("apply a huge image", huge, ("2100x2100", "downscale")),
    apply_case("apply over an existing file", existing_output,
               ("already exists", "never replaces")),
    apply_case("one bad file among good ones", lambda f: [grey(f), *not_an_image(f)],
               ("cannot read image",)),
    apply_case("two inputs of one name", lambda f: [grey(f), grey(subfolder(f))],
               ("both be written to digit_a2b.png",)),
    apply_case("pix2pix b2a", lambda f: [colour(f)], ("pix2pix translates a2b only",),
               method="pix2pix", extra=("--direction", "b2a")),
    apply_case("apply a missing file", lambda f: [f / "absent.png"], ("does not exist",)),
]


@pytest.mark.parametrize("case", APPLY_CASES, ids=str)
def test_apply_refuses(case, models, tmp_path, capsys):
    shutil.copytree(models, tmp_path / "models")
    (tmp_path / "case").mkdir()
    check_refusal(case, tmp_path / "case", capsys)


def npz(f: Path, name: str, shape: tuple[int, ...]) -> str:
    np.savez(f / name, x=np.zeros(shape, np.uint8))
    return f"npz:{f / name}"


def train_case(name, extra, words):
    return Case(name, lambda f: ["translate", "train", *extra(f), "--steps", "1",
                                 "--out", f / "run", *TINY], words)


TRAIN_CASES = [
    train_case("pix2pix on an unpaired pair",
               lambda f: ["--method", "pix2pix", "--pair", "digits-mnist"],
               ("pix2pix trains on pairs", "unpaired", "--method cyclegan")),
    train_case("sides of different sizes",
               lambda f: ["--method", "cyclegan", "--a", npz(f, "a.npz", (20, 8, 8)),
                          "--b", npz(f, "b.npz", (20, 12, 12))],
               ("8x8", "12x12", "--image-size")),
    train_case("--paired sides of different counts",
               lambda f: ["--method", "pix2pix", "--a", npz(f, "a.npz", (20, 8, 8)),
                          "--b", npz(f, "b.npz", (30, 8, 8)), "--paired"],
               ("--paired needs as many", "drop --paired")),
    train_case("--pair and --a", lambda f: ["--method", "cyclegan", "--pair", "mnist-mnistm",
                                            "--a", "digits"], ("--pair or --a/--b",)),
    train_case("no data", lambda f: ["--method", "cyclegan"], ("--a SPEC --b SPEC",)),
    train_case("--paired with a built-in pair",
               lambda f: ["--method", "pix2pix", "--pair", "mnist-mnistm", "--paired"],
               ("--paired applies to --a/--b",)),
    train_case("an unknown pair", lambda f: ["--method", "cyclegan", "--pair", "horses-zebras"],
               ("unknown domain pair", "mnist-mnistm")),
    train_case("a tiny --image-size", lambda f: ["--method", "cyclegan", "--pair",
                                                 "digits-mnist", "--image-size", "2"],
               ("--image-size must be in [4, 1024]",)),
    train_case("a CycleGAN option for pix2pix",
               lambda f: ["--method", "pix2pix", "--pair", "mnist-mnistm", "--cycle-weight",
                          "5"], ("--cycle-weight", "other method")),
]


@pytest.mark.parametrize("case", TRAIN_CASES, ids=str)
def test_train_refuses(case, tmp_path, capsys):
    check_refusal(case, tmp_path, capsys)


def run_case(name, extra, words):
    def build(f: Path) -> list[object]:
        return ["translate", "train", *extra, "--steps", "1", "--out", f / "run", *TINY]
    return Case(name, build, words)


RUN_CASES = [
    run_case("another pair into a run", ["--method", "pix2pix", "--pair", "mnist-mnistm"],
             ("trained on other data", "--pair")),
    run_case("the same method again", ["--method", "cyclegan"],
             ("already holds a trained cyclegan", "--resume")),
    Case("compare with --images of a folder", lambda f: [
        "translate", "compare", f / "run", "--images", "folder:x"], ("not a split",)),
    Case("compare a folder that is not a run", lambda f: [
        "translate", "compare", f], ("not a translate run",)),
]


@pytest.mark.parametrize("case", RUN_CASES, ids=str)
def test_an_existing_run_refuses(case, trained, tmp_path, capsys):
    shutil.copytree(trained, tmp_path / "run")
    check_refusal(case, tmp_path, capsys)
