"""The `genvision` command line end to end, on tiny budgets and tiny models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import genvision
from genvision.cli import COMMANDS, main

TINY_MODEL = ["--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--res-blocks", "0",
              "--ar-layers", "1", "--ar-channels", "4", "--kl-warmup-steps", "10"]
TINY = [*TINY_MODEL, "--batch-size", "32", "--log-every", "5", "--checkpoint-every", "10",
        "--no-progress"]


def gv(*argv: str) -> int:
    return main([str(a) for a in argv])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert gv("train", "vae", "--data", "digits", "--steps", "20", "--eval-every", "10",
              "--out", out, *TINY) == 0
    return out


def test_data_list_names_every_source(capsys):
    assert gv("data", "list") == 0
    out = capsys.readouterr().out
    for name in ("digits", "mnist5k", "faces", "photos", "mnist", "fashion-mnist", "cifar10",
                 "idx:", "npz:", "folder:", "cifar:"):
        assert name in out


def test_train_writes_a_complete_run(tiny_run):
    for name in ("run.json", "metrics.jsonl", "samples.png", "reconstructions.png",
                 "interpolations.png", "loss.png", "report.html", "checkpoints/latest"):
        assert (tiny_run / name).exists(), name
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["model"] == "vae" and info["data"]["source"] == "digits"
    assert info["model_config"]["latent_dim"] == 4
    lines = [json.loads(s) for s in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert {m["split"] for m in lines} == {"train", "val"}
    assert max(m["step"] for m in lines) == 20
    html = (tiny_run / "report.html").read_text()
    assert "samples.png" in html and "loss.png" in html


def test_python_api_loads_the_run(tiny_run):
    model = genvision.load(tiny_run)
    x = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 1, 8, 8) and x.min() >= 0 and x.max() <= 1
    assert "vae" in genvision.list_models()


def test_sample_is_reproducible_by_seed(tiny_run, tmp_path):
    for name, seed in (("a.png", 1), ("b.png", 1), ("c.png", 2)):
        assert gv("sample", tiny_run, "-n", "16", "--seed", seed, "-o", tmp_path / name) == 0
    a, b, c = ((tmp_path / n).read_bytes() for n in ("a.png", "b.png", "c.png"))
    assert a == b and a != c
    assert gv("sample", tiny_run, "-n", "5", "-o", tmp_path / "s.npz") == 0
    import numpy as np

    assert np.load(tmp_path / "s.npz")["x"].shape == (5, 1, 8, 8)


def test_evaluate_writes_nll_with_its_protocol(tiny_run, capsys):
    assert gv("evaluate", tiny_run, "--split", "test", "--k", "5", "--n", "40",
              "--metrics", "nll") == 0
    assert "bits/dim" in capsys.readouterr().out
    entry = json.loads((tiny_run / "metrics.json").read_text())["evaluations"][-1]
    assert entry["n"] == 40 and entry["split"] == "test"
    assert entry["protocol"]["estimator"] == "IWAE-5" and entry["protocol"]["kind"] == "bound"
    assert entry["data"]["binarize"] == {"scheme": "static", "seed": 0}
    assert entry["bits_per_dim"] == pytest.approx(entry["nll_nats"] / (64 * 0.6931471805599453))
    # the report was re-rendered: it shows the new numbers, not "Not evaluated yet"
    html = (tiny_run / "report.html").read_text(encoding="utf-8")
    assert "Not evaluated yet" not in html and f"{entry['nll_nats']:.4g}" in html


def test_resume_continues_from_the_last_step(tmp_path):
    out = tmp_path / "r"
    assert gv("train", "vae", "--data", "digits", "--steps", "10", "--out", out, *TINY) == 0
    assert gv("train", "--resume", out, "--steps", "10", "--no-progress") == 0
    assert (out / "checkpoints" / "latest").read_text().strip() == "step-00000020"
    steps = [json.loads(s)["step"] for s in (out / "metrics.jsonl").read_text().splitlines()
             if json.loads(s)["split"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 20


def test_model_train_defaults_apply_unless_the_user_sets_them(tmp_path, monkeypatch, capsys):
    from genvision.models.vae import VAE

    monkeypatch.setattr(VAE, "train_defaults", {"lr": 0.02, "warmup_steps": 3})
    for name, extra, lr in (("a", [], 0.02), ("b", ["--lr", "0.005"], 0.005)):
        assert gv("train", "vae", "--data", "digits", "--steps", "2", "--out", tmp_path / name,
                  *TINY, *extra) == 0
        train_cfg = json.loads((tmp_path / name / "run.json").read_text())["train_config"]
        assert (train_cfg["lr"], train_cfg["warmup_steps"]) == (lr, 3)
    with pytest.raises(SystemExit):
        gv("train", "vae", "--help")
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal
    # the training flags show the recipe as their defaults (what a run uses)
    assert "AdamW learning rate (default: 0.02)" in help_text
    assert "linear learning-rate warm-up steps (default: 3)" in help_text
    assert "vae's measured recipe" in help_text


def test_info_prints_configs(tiny_run, capsys):
    assert gv("info", tiny_run, "--json") == 0
    assert json.loads(capsys.readouterr().out)["model"] == "vae"


@pytest.mark.parametrize("argv, message", [
    (["train", "nosuchmodel"], "unknown model 'nosuchmodel'"),
    (["train", "vae", "--no-such-flag", "1"], "unrecognized arguments: --no-such-flag"),
    (["train", "vae", "--data", "idx:/no/such/dir", "--steps", "1"], "/no/such/dir"),
    (["train", "vae", "--data", "nosuchdata", "--steps", "1"], "unknown dataset"),
    (["sample", "/no/such/run"], "does not exist"),
    (["frobnicate"], "unknown command"),
    (["train"], "needs a model name or --resume"),
])
def test_user_errors_are_one_line_with_exit_2(argv, message, capsys, tmp_path):
    assert gv(*argv, "--out", tmp_path / "x") == 2 if argv[0] == "train" else gv(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("error:") and "fix:" in err
    assert len(err.splitlines()) == 1


def test_existing_run_is_never_overwritten(tiny_run, capsys):
    before = (tiny_run / "run.json").read_bytes()
    assert gv("train", "vae", "--data", "digits", "--steps", "1", "--out", tiny_run) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (tiny_run / "run.json").read_bytes() == before


def test_label_on_unconditional_model_and_corrupt_weights(tiny_run, tmp_path, capsys):
    assert gv("sample", tiny_run, "--label", "3", "-o", tmp_path / "x.png") == 2
    assert "unconditional" in capsys.readouterr().err
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    ckpt = broken / "checkpoints" / (broken / "checkpoints" / "latest").read_text().strip()
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    assert gv("sample", broken, "-o", tmp_path / "y.png") == 2
    assert "not a readable safetensors file" in capsys.readouterr().err


def test_conditional_training_and_labelled_sampling(tmp_path):
    out = tmp_path / "cond"
    assert gv("train", "vae", "--conditional", "--data", "digits", "--steps", "4",
              "--out", out, *TINY) == 0
    assert genvision.load(out).config.num_classes == 10
    assert gv("sample", out, "-n", "4", "--label", "7", "-o", tmp_path / "s.png") == 0
    assert gv("sample", out, "-n", "4", "--label", "10", "-o", tmp_path / "t.png") == 2


def test_console_script_runs_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "genvision", "train", "vae", "--data",
                           f"folder:{tmp_path}/empty", "--steps", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error:")


def test_train_on_user_folder_and_idx_files(tmp_path):
    import gzip

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(12):  # mixed sizes: --image-size makes them one shape
            size = (10 + i % 3, 12)
            Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(
                tmp_path / "imgs" / label / f"{i}.png")
    out = tmp_path / "folder-run"
    assert gv("train", "vae", "--data", f"folder:{tmp_path / 'imgs'}", "--image-size", "8",
              "--split", "all", "--steps", "2", "--out", out, *TINY_MODEL, "--batch-size",
              "8", "--no-progress") == 0
    assert genvision.load(out).config.image_size == (8, 8)

    idx = tmp_path / "idx"
    idx.mkdir()
    images = rng.integers(0, 256, (40, 8, 8), dtype=np.uint8)
    header = np.array([2051, 40, 8, 8], dtype=">i4").tobytes()
    (idx / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes()))
    out = tmp_path / "idx-run"
    assert gv("train", "vae", "--data", f"idx:{idx}", "--epochs", "2", "--out", out,
              *TINY_MODEL, "--batch-size", "8", "--no-progress") == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["epoch"] == pytest.approx(2.0)


def test_top_level_help_lists_the_commands(capsys):
    assert gv() == 0
    out = capsys.readouterr().out
    for command in ("data list", "train MODEL", "train --resume", "sample RUN", "evaluate RUN",
                    "info RUN"):
        assert f"genvision {command}" in out
    for name in COMMANDS:  # every command of the table is in the usage
        assert f"genvision {name} " in out, name


def test_every_command_of_the_table_resolves_to_its_entry_point():
    for name, command in COMMANDS.items():
        assert command.help and "\n" not in command.help, name
        assert command.target.startswith("genvision.cli."), name
        assert callable(command.resolve()), name


def test_the_cli_imports_a_command_module_only_when_it_runs():
    code = ("import sys; from genvision.cli import main; main(['--help']); "
            "print(sorted(m for m in sys.modules if m.startswith('genvision.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()[-1]
    assert out == "[]", out  # `genvision --help` stays fast: no command module loaded


def test_dequantized_density_is_reported_on_the_8bit_scale(tmp_path):
    import math

    from genvision.evaluation.evaluate import EvalOptions, _eval_data, evaluate_nll
    from genvision.runs.start import read_run

    out = tmp_path / "cont"
    assert gv("train", "vae", "--data", "photos", "--image-size", "8", "--likelihood",
              "gaussian", "--dequantize", "--steps", "2", "--out", out, *TINY) == 0
    assert gv("evaluate", out, "--split", "test", "--k", "3", "--n", "20") == 0
    entry = json.loads((out / "metrics.json").read_text())["evaluations"][-1]
    assert "8-bit" in entry["protocol"]["dequantized"]
    opts = EvalOptions(split="test", k=3, n=20)
    x, _, protocol = _eval_data(read_run(out), opts, "continuous")
    assert protocol["dequantize"] and x.min() >= 0 and x.max() < 1
    assert not torch.equal(x * 255, (x * 255).round())  # the noise was added
    density = evaluate_nll(genvision.load(out), x, None, opts, device=torch.device("cpu"))
    expected = -density.mean().item() + 3 * 8 * 8 * math.log(256)
    assert entry["nll_nats"] == pytest.approx(expected, rel=1e-6)
