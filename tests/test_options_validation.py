"""Option values are validated in one layer (config field metadata) before anything runs.

Each bad value must give exit status 2, one line on stderr naming the option, the value and
the accepted range, no traceback, and nothing written. Sizes have upper bounds, so a typo or
a damaged ``config.json`` cannot ask for petabytes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genvision import dataclass_config as cfg
from genvision.cli import COMMANDS, main
from genvision.data.config import DataConfig
from genvision.data.files import load_folder
from genvision.errors import CheckpointError, UserError
from genvision.models.base import get_model_class, list_models, load
from genvision.models.vae import VAE
from genvision.models.vae_config import VAEConfig
from genvision.train.config import TrainConfig

TINY = ["--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--ar-layers", "1",
        "--ar-channels", "4", "--batch-size", "16", "--no-progress"]


def gv(*argv: object) -> int:
    return main([str(a) for a in argv])


def assert_one_line_error(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
    return err


BAD_TRAIN_OPTIONS = [
    ("--lr", "-1", "> 0"), ("--lr", "nan", "> 0"), ("--lr", "inf", "> 0"),
    ("--beta1", "1.5", "[0, 1)"), ("--beta2", "-0.5", "[0, 1)"),
    ("--weight-decay", "-1", ">= 0"), ("--ema-decay", "1.5", "[0, 1)"),
    ("--ema-decay", "-1", "[0, 1)"), ("--warmup-steps", "-5", ">= 0"),
    ("--grad-clip", "-1", ">= 0"), ("--eval-every", "-1", ">= 0"),
    ("--sample-every", "-1", ">= 0"), ("--split-seed", "-1", "[0, 9223372036854775807]"),
    ("--seed", "-1", "[0, 9223372036854775807]"),
    ("--seed", str(2**63), "[0, 9223372036854775807]"),
    ("--device", "tpu", "auto, cpu, cuda, cuda:N or mps"),
    ("--image-size", "3000", "[1, 1024]"), ("--latent-dim", "10000000000", "[1, 8192]"),
    ("--epochs", "nan", "> 0"), ("--batch-size", "0", "[1, 1000000]"),
]


@pytest.mark.parametrize(("flag", "value", "accepted"), BAD_TRAIN_OPTIONS)
def test_train_refuses_a_bad_option_in_one_line_before_writing(tmp_path, capsys, flag, value,
                                                                accepted):
    out = tmp_path / "run"
    assert gv("train", "vae", "--data", "digits", "--steps", "1", "--out", out, *TINY,
              flag, value) == 2
    err = assert_one_line_error(capsys, flag, value, accepted)
    assert "--" + err.split("--", 1)[1].split()[0] == flag  # names this flag first
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _config_classes() -> list[type]:
    classes = {TrainConfig, DataConfig}
    for name in list_models():  # genvision's own (tests register toy models too)
        config_class = get_model_class(name).config_class
        if config_class.__module__.startswith("genvision."):
            classes.add(config_class)
    return sorted(classes, key=lambda c: c.__name__)


def _numeric_fields(cls: type) -> list[tuple[str, type, bool]]:
    """(name, int or float, is a tuple field) of every numeric field of ``cls``."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        is_tuple = typing.get_origin(tp) is tuple
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            tp = args[0]
        elif is_tuple:
            tp = typing.get_args(tp)[0]
        if tp in (int, float):
            out.append((f.name, tp, is_tuple))
    return out


@pytest.mark.parametrize("cls", _config_classes(), ids=lambda c: c.__name__)
def test_every_numeric_option_declares_its_range_and_refuses_nan(cls):
    numeric = _numeric_fields(cls)
    assert numeric
    for name, tp, is_tuple in numeric:
        meta = cls.__dataclass_fields__[name].metadata
        assert "min" in meta, f"{cls.__name__}.{name} declares no bounds"
        default = getattr(cls(), name)
        bad_values = [math.nan, math.inf, -math.inf] if tp is float else [1.5]
        for bad in bad_values:
            value = [bad] * len(default) if is_tuple else bad
            with pytest.raises(UserError, match=name.replace("_", "[-_]")) as err:
                cfg.from_dict(cls, {name: value})
            assert "finite" in str(err.value) if tp is float else "integer" in str(err.value)


def test_python_api_validates_too():
    with pytest.raises(UserError, match=r"--lr must be a finite number > 0, got nan"):
        TrainConfig(lr=math.nan)
    with pytest.raises(UserError, match=r"--split-seed"):
        DataConfig(split_seed=-1)
    # VAEConfig has its own __post_init__: the model still checks before allocating
    with pytest.raises(UserError, match=r"--latent-dim must be in \[1, 8192\]"):
        VAE(VAEConfig(latent_dim=10**10))


@pytest.fixture()
def saved_model(tmp_path) -> Path:
    model = VAE(VAEConfig(channels=1, image_size=(8, 8), latent_dim=4, hidden=(8,), fc_dim=8,
                          ar_layers=0))
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


@pytest.mark.parametrize(("key", "value", "words"), [
    ("image_size", [1_000_000, 1_000_000], ["image_size", "1000000", "[1, 1024]"]),
    ("latent_dim", 10**10, ["latent_dim", "10000000000", "[1, 8192]"]),
    ("latent_dim", 1e10, ["latent_dim", "integer"]),
    ("num_classes", 10**9, ["num_classes", "[0, 10000]"]),
    ("channels", "abc", ["channels", "'abc'"]),
    ("channels", -1, ["channels", "[1, 4]"]),
    ("image_size", 28, ["image_size", "list"]),
    ("image_size", [28], ["image_size", "2 values"]),
])
def test_damaged_config_json_is_refused_at_load_naming_the_file(saved_model, capsys, key,
                                                                 value, words):
    path = saved_model / "config.json"
    meta = json.loads(path.read_text())
    meta["config"][key] = value
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=str(path).replace("\\", "\\\\")):
        load(saved_model)
    out = saved_model.parent / "s.png"
    assert gv("sample", saved_model, "-n", "2", "-o", out) == 2
    assert_one_line_error(capsys, str(path), *words)
    assert not out.exists()


def test_config_json_that_is_not_an_object_is_refused(saved_model, capsys):
    path = saved_model / "config.json"
    for bad in ("x", [1, 2]):
        path.write_text(json.dumps({"model": "vae", "config": bad}))
        assert gv("sample", saved_model, "-n", "2", "-o", saved_model.parent / "s.png") == 2
        assert_one_line_error(capsys, str(path))


def test_sample_n_is_bounded(saved_model, capsys):
    out = saved_model.parent / "s.png"
    assert gv("sample", saved_model, "-n", 100_000_000, "-o", out) == 2
    assert_one_line_error(capsys, "-n", "100000000", "[1, 100000]", "--seed")
    assert not out.exists()


def test_a_huge_label_with_conditional_is_refused_before_allocating(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(64, 8, 8), dtype=np.uint8)
    y = np.zeros(64, dtype=np.int64)
    y[3] = 10**9  # one stray label: 1e9 classes would be a 64 GB embedding
    np.savez(tmp_path / "d.npz", x=x, y=y)
    out = tmp_path / "run"
    assert gv("train", "vae", "--data", f"npz:{tmp_path / 'd.npz'}", "--split", "all",
              "--conditional", "--steps", "1", "--out", out, *TINY) == 2
    assert_one_line_error(capsys, "1000000000", "10000", "0..K-1")
    assert not out.exists()


def test_16_bit_pngs_in_a_folder_are_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 25700, 65535]], dtype=np.uint16).repeat(4, axis=0)
    for k in range(10):
        Image.fromarray(values).save(tmp_path / f"{k}.png")
    assert Image.open(tmp_path / "0.png").mode.startswith("I")  # really a 16-bit file
    images = load_folder(str(tmp_path), "all")
    assert images.x.shape == (10, 1, 4, 4)
    # 65535 -> 255, 25700 -> 100, 257 -> 1 (clipping would give 0, 255, 255, 255)
    assert images.x[0, 0, 0].tolist() == [0, 1, 100, 255]


def test_memory_error_is_one_line_at_the_cli_boundary(monkeypatch, capsys):
    def explode(argv: list[str]) -> int:
        raise MemoryError

    monkeypatch.setitem(COMMANDS, "sample", types.SimpleNamespace(resolve=lambda: explode))
    assert gv("sample", "x") == 2
    assert_one_line_error(capsys, "out of memory")
