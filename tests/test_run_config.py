"""Run configs: every run writes config.toml, `genvision train --config` re-launches it
exactly, flags override the file, bad files are one-line errors; `--help` shows the
defaults a run really uses."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

import pytest
import tomllib

from genvision import dataclass_config as cfg
from genvision.cli import main
from genvision.cli.train import run_spec, train_parser
from genvision.models.base import get_model_class, list_models
from genvision.models.image_to_image import ImageTaskModel
from genvision.train.config import TrainConfig

TINY = ["--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--res-blocks", "0",
        "--ar-layers", "1", "--ar-channels", "4", "--kl-warmup-steps", "10",
        "--batch-size", "32", "--log-every", "1", "--no-progress", "--no-tensorboard"]


def gv(*argv) -> int:
    return main([str(a) for a in argv])


def first_losses(run: Path, n: int = 3) -> list[float]:
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    return [line["loss"] for line in lines if line["split"] == "train"][:n]


def test_a_run_relaunched_from_its_config_toml_is_the_same_run(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert gv("train", "vae", "--data", "digits", "--steps", "3", "--out", a, *TINY) == 0
    text = (a / "config.toml").read_text()
    assert 'name = "vae"' in text and "[training]" in text and "lr = 0.001" in text
    assert "latent_dim = 4" in text and "hidden = [8, 16]" in text
    # no model name on the command line: the file names it
    assert gv("train", "--config", a / "config.toml", "--out", b) == 0
    assert tomllib.loads((b / "config.toml").read_text()) == tomllib.loads(text)
    assert f"--config {b / 'config.toml'} --out" in (b / "config.toml").read_text()
    ra, rb = (json.loads((d / "run.json").read_text()) for d in (a, b))
    for key in ("model_config", "train_config", "data_config", "conditional"):
        assert ra[key] == rb[key], key
    assert first_losses(a) == first_losses(b)


def _args(argv: list[str]) -> argparse.Namespace:
    return train_parser(argv[0]).parse_args(argv)


def test_flags_override_the_file_and_the_file_overrides_the_recipe(tmp_path):
    conf = tmp_path / "run.toml"
    conf.write_text('[model]\nname = "gated-pixelcnn"\nlayers = 3\n\n[data]\ndata = "digits"\n'
                    '\n[training]\nlr = 0.005\nsteps = 7\nbatch_size = 16\n')
    spec = run_spec(_args(["gated-pixelcnn", "--config", str(conf), "--batch-size", "8"]))
    recipe = get_model_class("gated-pixelcnn").train_defaults
    assert spec.train.lr == 0.005 and spec.train.steps == 7  # file over recipe
    assert spec.train.batch_size == 8  # flag over file
    assert spec.train.lr_schedule == recipe["lr_schedule"]  # recipe where neither says
    assert spec.model_overrides == {"layers": 3} and spec.data.data == "digits"


@pytest.mark.parametrize("text, words", [
    ("[training]\nlr = 'fast'\n", ["lr in [training]", "a number"]),
    ("[training]\nlearning_rate = 0.1\n", ["unknown key(s) learning_rate", "[training]"]),
    ("[optimiser]\nlr = 0.1\n", ["unknown section(s)", "optimiser"]),
    ("[model]\nname = \"vae\"\nchannels = 3\n", ["unknown key(s) channels", "[model]"]),
    ("[model]\nname = \"no-such-model\"\n", ["no-such-model"]),
    ("[data]\nbinarize = \"sometimes\"\n", ["binarize in [data]"]),
    ("[training\nlr = 1\n", ["not valid TOML"]),
])
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, text, words):
    conf = tmp_path / "run.toml"
    conf.write_text(text)
    assert gv("train", "vae", "--config", conf, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for word in words:
        assert word in err
    assert not (tmp_path / "out").exists()


def test_a_config_of_another_model_than_the_command_line_is_refused(tmp_path, capsys):
    conf = tmp_path / "run.toml"
    conf.write_text('[model]\nname = "nade"\n')
    assert gv("train", "vae", "--config", conf, "--out", tmp_path / "out") == 2
    assert "is a nade config" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_toml_round_trip():
    sections = {"a": {"s": 'quote " and \\ and é', "f": 1e-5, "i": 3, "b": False,
                      "t": (0.5, 0.9), "none": None}}
    text = cfg.toml_text(sections, header="hello")
    back = tomllib.loads(text)
    assert back == {"a": {"s": 'quote " and \\ and é', "f": 1e-5, "i": 3, "b": False,
                          "t": [0.5, 0.9]}}


# ----- --help defaults are the values used ----------------------------------------------------
def _shown(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    """dest -> the '(default: X)' text of every listed flag."""
    return {a.dest: cfg.shown_default(a.help) for a in parser._actions
            if a.help not in (None, argparse.SUPPRESS) and a.option_strings}


@pytest.mark.parametrize("name", [  # every model `genvision train` trains (not test doubles)
    m for m in list_models() if not issubclass(get_model_class(m), ImageTaskModel)
    and get_model_class(m).__module__.startswith("genvision.")])
def test_train_help_defaults_equal_the_values_a_run_uses(name):
    parser = train_parser(name)
    shown = _shown(parser)
    model_cls = get_model_class(name)
    spec = run_spec(parser.parse_args([name]))  # what `genvision train NAME` would train
    listed = 0
    for f in dataclasses.fields(TrainConfig):
        if f.name in model_cls.unused_train_options:
            assert f.name not in shown, f"{name}: --{f.name} does not apply but is listed"
            continue
        used = getattr(spec.train, f.name)
        if used is None or used == "":  # no value: no default shown
            assert shown[f.name] is None
            continue
        assert shown[f.name] == str(used), (name, f.name, shown[f.name], used)
        listed += 1
    # the model's own options: the config a run builds (before the data fixes its shape)
    model_cfg = model_cls.config_class(**spec.model_overrides)
    for f in dataclasses.fields(model_cfg):
        if f.metadata.get("cli") is False:
            continue  # set by the data (shape, classes, kind) or the run's --seed
        value = getattr(model_cfg, f.name)
        # "auto": a documented choice the data makes (e.g. DDPM's parameterization)
        if shown[f.name] != "auto":
            assert shown[f.name] == (None if value in (None, "") else str(value)), (name, f.name)
    assert listed > 10


def test_gated_pixelcnn_help_shows_its_recipe(capsys):
    with pytest.raises(SystemExit):
        main(["train", "gated-pixelcnn", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    recipe = get_model_class("gated-pixelcnn").train_defaults
    assert f"(default: {recipe['lr']})" in out
    assert f"(default: {recipe['lr_schedule']})" in out


def test_gan_help_lists_only_its_own_learning_rates(capsys):
    with pytest.raises(SystemExit):
        main(["train", "sngan", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--lr-g LR_G" in out and "--lr-d LR_D" in out
    for flag in ("--lr LR", "--beta1 BETA1", "--beta2 BETA2", "--weight-decay WEIGHT_DECAY"):
        assert flag not in out
    assert "sngan does not use --lr, --beta1, --beta2, --weight-decay" in out


def _flag_help(text: str, flag: str) -> str:
    """The help of ``flag`` in a --help text whose whitespace is normalised."""
    match = re.search(rf"{flag} [A-Z_]+ (.*?)(?= --[a-z]|$)", text)
    assert match, flag
    return match.group(1)


@pytest.mark.parametrize("task, stages", [("superres", ("srresnet", "srgan")),
                                          ("colorize", ("regression", "gan"))])
def test_task_help_shows_each_stages_defaults(task, stages, capsys):
    module = __import__(f"genvision.apps.{task}.train", fromlist=["TRAIN_DEFAULTS"])
    with pytest.raises(SystemExit):
        main([task, "train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    defaults = module.TRAIN_DEFAULTS
    assert _flag_help(out, "--batch-size").endswith(
        f"(default: {defaults[stages[0]]['batch_size']})")
    assert _flag_help(out, "--lr").endswith(
        f"(default: {defaults[stages[0]]['lr']} ({stages[0]}), {defaults[stages[1]]['lr']} "
        f"({stages[1]}))")


@pytest.mark.parametrize("argv, prog", [(["features", "train", "--help"],
                                         "genvision features train"),
                                        (["data", "list", "--help"], "genvision data list")])
def test_sub_commands_print_their_own_help(argv, prog, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {prog}")
