"""genvision augment: classic jitter, generated samples, the summary and the CLI."""

import json

import numpy as np
import pytest
import torch

from genvision.apps.augment.classic import ShiftRotate
from genvision.apps.augment.experiment import summarise
from genvision.apps.augment.synthetic import balanced_labels, generate
from genvision.apps.classify.generative import GenBudget, train_conditional
from genvision.cli import main


def test_shift_moves_a_pixel_by_whole_pixels_and_stays_binary():
    x = torch.zeros(64, 1, 9, 9)
    x[:, 0, 4, 4] = 1.0
    out = ShiftRotate(max_shift=2, max_degrees=0)(x, torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(out.sum((1, 2, 3)) == 1)  # the dot survives, exactly one pixel
    pos = out[:, 0].flatten(1).argmax(1)
    rows, cols = pos // 9, pos % 9
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 10  # shifts really vary
    again = ShiftRotate(max_shift=2, max_degrees=0)(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_no_jitter_is_identity_and_rotation_keeps_mass():
    gen = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((8, 1, 12, 12), 0.3), generator=gen)
    same = ShiftRotate(max_shift=0, max_degrees=0)(x, torch.Generator().manual_seed(0))
    assert torch.equal(same, x)
    bar = torch.zeros(4, 1, 15, 15)
    bar[:, 0, 7, 3:12] = 1.0  # a horizontal stroke through the centre
    rot = ShiftRotate(max_shift=0, max_degrees=10)(bar, torch.Generator().manual_seed(0))
    assert rot[:, 0, 7, 7].eq(1).all()  # the centre is fixed by a rotation
    assert (rot.sum((1, 2, 3)) - 9).abs().max() <= 3


def test_balanced_labels():
    y = balanced_labels(23, 10, seed=0)
    counts = torch.bincount(y, minlength=10)
    assert counts.min() == 2 and counts.max() == 3 and counts.sum() == 23


def test_generated_samples_are_binary_labelled_and_seeded():
    g = torch.Generator().manual_seed(0)
    x = torch.bernoulli(torch.full((16, 1, 8, 8), 0.4), generator=g)
    y = torch.arange(16) % 2
    model = train_conditional("vae", x, y, 2, GenBudget(steps=2, batch_size=8), seed=0)
    xg, yg = generate(model, 7, 2, seed=3, batch=4)
    assert xg.shape == (7, 1, 8, 8) and yg.tolist().count(0) in (3, 4)
    assert set(xg.unique().tolist()) <= {0.0, 1.0}
    xg2, yg2 = generate(model, 7, 2, seed=3, batch=4)
    assert torch.equal(xg, xg2) and torch.equal(yg, yg2)


def test_summarise_mean_sd_and_paired_difference():
    rows = [{"arm": "real", "seed": s, "accuracy": a, "log_loss": 1.0, "cpu_s": 1.0}
            for s, a in enumerate([0.80, 0.82, 0.84])]
    rows += [{"arm": "generated", "seed": s, "accuracy": a, "log_loss": 2.0, "cpu_s": 2.0}
             for s, a in enumerate([0.81, 0.82, 0.86])]
    real, gen = summarise(rows, ("real", "generated"))
    assert real["accuracy_mean"] == pytest.approx(0.82)
    assert real["accuracy_std"] == pytest.approx(0.02)
    assert gen["vs_real_mean"] == pytest.approx((0.01 + 0.0 + 0.02) / 3)
    assert gen["vs_real_wins"] == 2 and gen["classifier_cpu_s"] == 6.0


def test_cli_runs_every_arm(tmp_path, capsys):
    out = tmp_path / "a"
    code = main(["augment", "--n", "30", "--seeds", "2", "--data", "digits", "--cnn-steps", "15",
                 "--gen-steps", "3", "--gen-batch", "8", "--n-test", "50", "--out", str(out)])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    for arm in ("| real |", "| classic |", "| generated |", "| generated+classic |"):
        assert arm in cap.out
    assert "digits seeded test split (50 images" in cap.out
    res = json.loads((out / "results.json").read_text())
    assert len(res["rows"]) == 8 and res["seeds"] == [0, 1]
    assert {r["n_generated"] for r in res["rows"]} == {0, 30}
    assert (out / "accuracy.png").stat().st_size > 0 and (out / "samples.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--n", "5"], "between the 10 classes"),
    (["--n", "30", "--seeds", "0"], "--seeds must be >= 1"),
    (["--n", "30", "--arms", "real,magic"], "unknown arm"),
    (["--n", "30", "--generator", "gan"], "invalid choice"),
])
def test_cli_bad_input_exit_2(tmp_path, capsys, args, message):
    code = main(["augment", "--data", "digits", "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cli_unlabelled_data_exit_2(tmp_path, capsys):
    np.savez(tmp_path / "u.npz", x=np.zeros((40, 8, 8), np.uint8))
    code = main(["augment", "--n", "20", "--data", f"npz:{tmp_path / 'u.npz'}",
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "has no labels" in err
