"""Task run configs: `genvision superres|colorize|translate train` write RUN/config.toml,
`--config` re-launches it with the same resolved options, typed flags override the file,
--resume takes the run's own file but no other model options, bad files are one-line
errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import tomllib

from genvision.cli import main
from genvision.cli.stages import stage_request
from genvision.cli.superres import SPEC as SR_SPEC
from genvision.cli.superres import _train_parser

QUIET = ["--log-every", "1", "--no-progress", "--no-tensorboard"]
SR = ["--width", "4", "--blocks", "1", "--disc-width", "4", "--disc-layers", "2",
      "--patch", "24", "--patches", "32", "--val-patches", "0", "--batch-size", "8", *QUIET]
CO_DATA = ["--patch", "24", "--patches", "32", "--val-patches", "0", "--batch-size", "8",
           *QUIET]
TR = ["--width", "4", "--depth", "1", "--disc-width", "4", "--disc-layers", "1",
      "--batch-size", "4", "--eval-every", "0", "--checkpoint-every", "1", *QUIET]


def gv(*argv) -> int:
    return main([str(a) for a in argv])


def train_lines(stage_dir: Path) -> list[dict]:
    """The training log lines of a stage, without their timings."""
    lines = [json.loads(s) for s in (stage_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in ("time_s", "images_per_s")}
            for line in lines if line["split"] == "train"]


def resolved(run: Path) -> dict:
    """What a task run trained with, from its run.json: data options, scale, and each
    stage's model and training configs."""
    info = json.loads((run / "run.json").read_text())
    return {"data": info.get("patch_options", info.get("pair_options")),
            "scale": info.get("scale"),
            "stages": {s: {k: r[k] for k in ("model", "model_config", "train_config")}
                       for s, r in info["stages"].items()}}


def toml(path: Path) -> dict:
    return tomllib.loads(path.read_text())


# ----- superres: re-launch, resume ----------------------------------------------------------
@pytest.fixture(scope="module")
def sr(tmp_path_factory) -> tuple[Path, Path]:
    """A two-stage x2 run, and the same run re-launched from its config.toml."""
    root = tmp_path_factory.mktemp("srconf")
    a, b = root / "a", root / "b"
    assert gv("superres", "train", "--scale", "2", "--steps", "2", "--out", a, *SR) == 0
    assert gv("superres", "train", "--config", a / "config.toml", "--out", b) == 0
    return a, b


def test_superres_relaunched_from_its_config_toml_is_the_same_run(sr):
    a, b = sr
    text = (a / "config.toml").read_text()
    conf = tomllib.loads(text)
    assert conf["task"] == {"name": "superres", "method": "both", "scale": 2,
                            "gan_share": 0.3, "perceptual": "disc"}
    assert conf["model"]["width"] == 4 and conf["model"]["upsampler"] == "espcn"
    assert conf["gan"]["disc_width"] == 4 and "width" not in conf["gan"]
    assert conf["data"]["patches"] == 32 and conf["training"]["steps"] == 2
    # the stages learn at different rates: left out, each keeps its own
    assert "lr" not in conf["training"] and "leaves out lr" in text
    assert f"genvision superres train --config {a / 'config.toml'} --out" in text
    assert toml(b / "config.toml") == conf
    assert resolved(a) == resolved(b)
    for stage in ("srresnet", "srgan"):
        assert train_lines(a / stage) and train_lines(a / stage) == train_lines(b / stage)


def test_resume_takes_the_runs_own_config_but_no_other_model_options(sr, tmp_path, capsys):
    _, b = sr
    conf = b / "config.toml"
    other = tmp_path / "wider.toml"
    other.write_text(re.sub(r"(?m)^width = 4$", "width = 8", conf.read_text()))
    before = (b / "srresnet" / "metrics.jsonl").read_text()
    steps = json.loads((b / "run.json").read_text())["stages"]["srresnet"]["steps"]
    assert gv("superres", "train", "--resume", "--method", "srresnet", "--config", other,
              "--out", b, "--steps", "3") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "width = 8" in err and "--resume" in err
    assert (b / "srresnet" / "metrics.jsonl").read_text() == before  # nothing trained
    assert gv("superres", "train", "--resume", "--method", "srresnet", "--config", conf,
              "--out", b, "--steps", "3") == 0
    # --steps on --resume: that many more
    assert json.loads((b / "run.json").read_text())["stages"]["srresnet"]["steps"] == steps + 3
    assert toml(conf)["training"]["steps"] == 2  # a resume leaves the run's config as it was


def test_flags_typed_override_the_file_which_overrides_the_defaults(tmp_path):
    conf = tmp_path / "sr.toml"
    conf.write_text('[task]\nscale = 3\n\n[training]\nsteps = 7\nlr = 0.002\n\n'
                    '[model]\nwidth = 8\n\n[gan]\nadv_weight = 0.01\n')
    args = _train_parser().parse_args(["--config", str(conf), "--lr", "0.003"])
    req = stage_request(args, SR_SPEC, [], lambda task: f"runs/sr{task.get('scale') or 4}")
    assert req.train == {"steps": 7, "lr": 0.003}  # flag over file
    assert req.model == {"width": 8} and req.gan == {"adv_weight": 0.01}
    assert req.task["scale"] == 3 and req.out == Path("runs/sr3")
    assert req.method == "both" and req.gan_share == 0.3  # defaults where neither says


# ----- colorize: a stage added to a run, re-launched with a flag over its file --------------
def test_a_stage_added_to_a_run_writes_its_own_config_which_relaunches_it(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    model = ["--width", "4", "--depth", "2"]
    gan = ["--disc-width", "4", "--disc-layers", "2"]
    assert gv("colorize", "train", "--method", "regression", "--steps", "1", "--out", a,
              *model, *CO_DATA) == 0
    first = (a / "config.toml").read_text()
    assert toml(a / "config.toml")["model"] == {"width": 4, "depth": 2}
    assert "gan" not in toml(a / "config.toml")
    assert gv("colorize", "train", "--method", "gan", "--steps", "1", "--out", a, *gan,
              *CO_DATA) == 0
    assert (a / "config.toml").read_text() == first  # the run's first file is kept
    added = toml(a / "gan" / "config.toml")
    assert added["task"] == {"name": "colorize", "method": "gan",
                             "init": str(a / "regression")}
    assert "model" not in added and added["gan"]["disc_width"] == 4
    assert gv("colorize", "train", "--config", a / "gan" / "config.toml", "--out", b,
              "--disc-width", "8") == 0
    ra, rb = resolved(a)["stages"]["gan"], resolved(b)["stages"]["gan"]
    assert rb["model_config"]["disc_width"] == 8  # the typed flag wins
    assert {**ra["model_config"], "disc_width": 8} == rb["model_config"]
    assert ra["train_config"] == rb["train_config"]
    assert toml(b / "config.toml")["gan"]["disc_width"] == 8


# ----- translate ----------------------------------------------------------------------------
def test_translate_relaunched_from_its_config_toml_is_the_same_run(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert gv("translate", "train", "--method", "cyclegan", "--pair", "digits-mnist",
              "--steps", "1", "--out", a, *TR) == 0
    conf = toml(a / "config.toml")
    assert conf["task"] == {"name": "translate", "method": "cyclegan"}
    assert conf["data"]["pair"] == "digits-mnist" and conf["training"]["batch_size"] == 4
    assert conf["model"]["block"] == "residual" and "l1_weight" not in conf["model"]
    assert gv("translate", "train", "--config", a / "config.toml", "--out", b) == 0
    assert resolved(a) == resolved(b)
    assert train_lines(a / "cyclegan") and train_lines(a / "cyclegan") == train_lines(
        b / "cyclegan")


# ----- bad files ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, words", [
    ("[training]\nlr = 'fast'\n", ["lr in [training]", "a number"]),
    ("[model]\nwidht = 4\n", ["unknown key(s) widht", "[model]"]),
    ("[gan]\nwidth = 4\n", ["unknown key(s) width", "[gan]"]),  # a generator option
    ("[task]\nscale = 5\n", ["scale in [task]", "2, 3, 4"]),
    ("[optimiser]\nlr = 0.1\n", ["unknown section(s)", "optimiser", "[task]"]),
    ('[model]\nname = "vae"\nlatent_dim = 4\n', ["`genvision train` config", "vae"]),
    ('[task]\nname = "colorize"\n', ["config of 'colorize'", "genvision colorize train"]),
    ("[training\nlr = 1\n", ["not valid TOML"]),
])
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, text, words):
    conf = tmp_path / "sr.toml"
    conf.write_text(text)
    assert gv("superres", "train", "--config", conf, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for word in words:
        assert word in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, words", [
    (["colorize", "train", "--config", "no/such.toml"], ["no/such.toml does not exist"]),
    (["translate", "train", "--config", "{task}", "--out", "{out}"],
     ["config of 'superres'", "genvision superres train"]),
    (["train", "--config", "{task}", "--out", "{out}"],
     ["image-to-image task", "genvision superres train --config"]),
    (["translate", "train", "--out", "{out}"], ["needs a method", "--method cyclegan"]),
])
def test_a_missing_file_or_another_commands_config_is_refused(tmp_path, capsys, argv, words):
    task = tmp_path / "sr.toml"
    task.write_text('[task]\nname = "superres"\nscale = 2\n')
    argv = [a.format(task=task, out=tmp_path / "out") for a in argv]
    assert gv(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    for word in words:
        assert word in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("task", ["superres", "colorize", "translate"])
def test_train_help_offers_config(task, capsys):
    with pytest.raises(SystemExit) as done:
        main([task, "train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert done.value.code == 0
    assert "--config FILE" in out and "[training]" in out and "[model]" in out
