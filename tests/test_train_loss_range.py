"""The loss's normal range: checkpoints marked in/out of it, the last good one kept and
named on divergence, and ``--from-step`` going back to it (issue 16: after a divergence
the kept checkpoint held blown-up, finite weights, so a resume diverged again at once)."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

import tiny_model as tiny
from genvision.cli import main
from genvision.errors import TrainingDiverged
from genvision.storage import load_tensors
from genvision.train import Callback, TrainConfig, load_training_state, train
from genvision.train.loss_range import WARMUP, WINDOW, LossRange


def config(**kw) -> TrainConfig:
    opts = dict(batch_size=8, lr=0.05, log_every=5, checkpoint_every=10, ema_decay=0.0,
                grad_clip=1.0, seed=3, progress=False, keep_checkpoints=1)
    opts.update(kw)
    return TrainConfig(**opts)


def run(run_dir, *, callbacks=(), model_kw=None, **kw):
    model = tiny.TinyModel(tiny.TinyConfig(**(model_kw or {})))
    return train(model, tiny.make_data(), config(**kw), run_dir, callbacks=callbacks,
                 run_info={"model": "tiny-test"})


class Explode(Callback):
    """Blows the decoder's weights up by 1e4 after step ``at``: the loss jumps by orders
    of magnitude and stays finite (what a too-high learning rate does)."""

    def __init__(self, at: int):
        self.at = at

    def on_step_end(self, state):
        if state.step == self.at:
            with torch.no_grad():
                state.model.dec.weight.mul_(1e4)


def meta(run_dir, step: int) -> dict:
    return json.loads((run_dir / "checkpoints" / f"step-{step:08d}" / "trainer.json")
                      .read_text())


def max_weight(run_dir, step: int) -> float:
    """The largest raw model weight (or buffer) in checkpoint ``step`` of ``run_dir``."""
    path = run_dir / "checkpoints" / f"step-{step:08d}" / "trainer.safetensors"
    return max(float(t.abs().max()) for k, t in load_tensors(path).items()
               if k.startswith("model/"))


# ----- the statistics ---------------------------------------------------------------------
def test_no_verdict_before_the_warm_up_then_noise_stays_in_range():
    r, rng = LossRange(), random.Random(0)
    for i in range(WARMUP - 1):
        r.observe({"loss": 2.0 + rng.gauss(0, 0.1)}, i)
        assert r.in_range() is None  # nothing to compare with yet
    for i in range(500):
        r.observe({"loss": 2.0 + rng.gauss(0, 0.1)}, i)
        assert r.in_range() is True, i


def test_a_blow_up_leaves_the_range_and_never_becomes_the_new_normal():
    r = LossRange()
    for i in range(100):
        r.observe({"loss": 1.0 + 0.01 * (i % 7)}, i)
    r.observe({"loss": 1e6}, 100)
    assert r.in_range() is True  # one noisy step: the recent median is still normal
    for i in range(101, 104):
        r.observe({"loss": 1e6}, i)
    assert r.in_range() is False and r.left_at == 100  # where the streak began
    for i in range(104, 104 + 3 * WINDOW):
        r.observe({"loss": 1e6 * (1 + 0.01 * (i % 5))}, i)
    assert r.in_range() is False and r.left_at == 100  # still out, still "left at 100"
    assert "normal range" in r.describe()


def test_a_loss_that_drops_to_a_new_level_is_followed():
    r = LossRange()
    for i in range(100):
        r.observe({"loss": 10.0 + 0.01 * (i % 7)}, i)
    for i in range(100, 100 + WINDOW):
        r.observe({"loss": 1.0 + 0.01 * (i % 7)}, i)
    assert r.in_range() is True and r.left_at is None


def test_every_phase_must_be_in_range():
    r = LossRange()
    for i in range(50):
        r.observe({"d": 1.0 + 0.01 * (i % 3), "g": 2.0 + 0.01 * (i % 3)}, i)
    for i in range(50, 55):
        r.observe({"d": 1.0, "g": 1e5}, i)
    assert r.in_range() is False and "phase 'g'" in r.describe()


def test_the_state_round_trips_through_json_exactly():
    a, rng = LossRange(), random.Random(1)
    values = [math.exp(rng.gauss(0, 1)) for _ in range(300)]
    for i, v in enumerate(values[:150]):
        a.observe({"loss": v}, i)
    b = LossRange()
    b.load_state(json.loads(json.dumps(a.state())))
    for i, v in enumerate(values[150:], 150):
        a.observe({"loss": v}, i)
        b.observe({"loss": v}, i)
        assert a.in_range() == b.in_range()
    assert a.state() == b.state()


# ----- the loop -----------------------------------------------------------------------------
def test_the_last_checkpoint_in_range_is_kept_named_and_resumable(tmp_path):
    """Loss blows up (finite) after step 33, NaN at step 53: checkpoints 40 and 50 hold
    blown-up weights; with keep_checkpoints=1 step 30 survives pruning, the one-line error
    names it with the command back, and resuming from it with a sane lr trains finitely."""
    with pytest.raises(TrainingDiverged) as info:
        run(tmp_path, steps=80, callbacks=[Explode(33)], model_kw={"nan_at_step": 52})
    msg = str(info.value)
    assert "\n" not in msg and "diverged at step 53" in msg
    assert "left its normal range at step 34" in msg
    assert f"genvision train --resume {tmp_path} --from-step 30 --lr 0.005" in msg
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["latest", "step-00000030", "step-00000050"]  # 30 protected, 40 pruned
    assert meta(tmp_path, 30)["loss_in_range"] is True
    assert meta(tmp_path, 50)["loss_in_range"] is False
    assert meta(tmp_path, 50)["last_in_range_step"] == 30
    assert max_weight(tmp_path, 30) < 10 < 1e3 < max_weight(tmp_path, 50)
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    (warned,) = [m for m in lines if m["split"] == "warning"]
    assert warned["step"] == 36  # said when the recent median left the range
    assert "left its normal range at step 34" in warned["warning"]

    model = tiny.TinyModel(tiny.TinyConfig())
    result = train(model, tiny.make_data(), config(steps=20, lr=0.005), tmp_path,
                   resume=True, from_step=30)
    assert result.step == 50
    assert all(bool(torch.isfinite(p).all()) and float(p.detach().abs().max()) < 10
               for p in model.parameters())
    assert meta(tmp_path, 50)["loss_in_range"] is True
    # the blown-up checkpoint 50 was set aside, not deleted (the new 50 replaced nothing)
    aside = tmp_path / "checkpoints" / "rewound-step-00000050" / "step-00000050"
    assert max_weight(aside.parent.parent.parent, 50) < 10  # the new step 50
    assert float(load_tensors(aside / "trainer.safetensors")["model/dec.weight"].abs().max()) > 1e3
    assert json.loads((aside / "trainer.json").read_text())["loss_in_range"] is False


def test_in_range_checkpoints_prune_as_before(tmp_path):
    run(tmp_path, steps=50)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "latest", "step-00000050"]
    assert meta(tmp_path, 50)["loss_in_range"] is True
    assert meta(tmp_path, 50)["last_in_range_step"] == 50


def test_a_resumed_run_marks_its_checkpoints_as_the_uninterrupted_run(tmp_path):
    class Stop(Callback):
        def on_step_end(self, state):
            if state.step == 45:
                raise KeyboardInterrupt  # saves step 45 (out of range), then stops

    run(tmp_path / "whole", steps=60, callbacks=[Explode(41)])
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", steps=60, callbacks=[Explode(41), Stop()])
    assert meta(tmp_path / "cut", 45)["loss_in_range"] is False
    model = tiny.TinyModel(tiny.TinyConfig())
    train(model, tiny.make_data(), config(steps=15), tmp_path / "cut", resume=True)
    for step in (40, 60):  # 40: the protected one; 60: the final, out of range
        a, b = meta(tmp_path / "whole", step), meta(tmp_path / "cut", step)
        for key in ("loss_in_range", "last_in_range_step", "loss_range"):
            assert a[key] == b[key], (step, key)
    assert meta(tmp_path / "whole", 60)["loss_in_range"] is False


def test_a_run_ending_out_of_range_says_how_to_go_back(tmp_path, capsys):
    run(tmp_path, steps=60, callbacks=[Explode(41)])
    err = capsys.readouterr().err
    assert "is still out of it" in err and "--from-step 40" in err


# ----- the CLI ------------------------------------------------------------------------------
TINY_VAE = ["--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--res-blocks", "0",
            "--ar-layers", "1", "--ar-channels", "4", "--batch-size", "16", "--no-progress"]


def test_cli_from_step_goes_back_after_a_learning_rate_blow_up(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "vae", "--data", "digits", "--steps", "40", "--checkpoint-every",
                 "10", "--out", str(out), *TINY_VAE]) == 0
    # a resume at an absurd rate: the loss explodes (finite, then NaN)
    code = main(["train", "--resume", str(out), "--steps", "40", "--lr", "1e5",
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and err.startswith("error: training diverged")
    assert f"genvision train --resume {out} --from-step 40 --lr 0.0001" in err
    assert main(["train", "--resume", str(out), "--from-step", "30", "--steps", "20",
                 "--lr", "1e-4", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "checkpoints/latest now names step-00000030" in err
    assert (out / "checkpoints" / "rewound-step-00000040" / "step-00000040").is_dir()
    state = load_training_state(out)
    assert state.step == 50 and all(bool(torch.isfinite(t).all())
                                    for t in state.tensors.values() if t.is_floating_point())
