"""The training loop: exact resume, budgets, NaN guard, run-directory rules, metrics."""

from __future__ import annotations

import json
import math
import os
import signal
from pathlib import Path

import pytest
import torch

import tiny_model as tiny  # tests/tiny_model.py: the loop's tiny test model
from genvision.errors import TrainingDiverged, UserError
from genvision.train import Callback, TrainConfig, load_training_state, train

VOLATILE = {"time_s", "images_per_s"}  # wall-clock numbers: the only things allowed to differ


def config(**kw) -> TrainConfig:
    opts = dict(batch_size=8, lr=0.05, log_every=2, checkpoint_every=5, eval_every=4,
                sample_every=6, ema_decay=0.9, warmup_steps=3, grad_clip=1.0, seed=3,
                progress=False, keep_checkpoints=2)
    opts.update(kw)
    return TrainConfig(**opts)


def run(run_dir, *, resume=False, callbacks=(), model_kw=None, **kw):
    model = tiny.TinyModel(tiny.TinyConfig(**(model_kw or {})))
    return train(model, tiny.make_data(), config(**kw), run_dir, resume=resume,
                 callbacks=callbacks)


class StopAt(Callback):
    """Simulates a crash / Ctrl-C right after step ``at``."""

    def __init__(self, at: int, how: str):
        self.at, self.how = at, how

    def on_step_end(self, state):
        if state.step != self.at:
            return
        if self.how == "sigint":
            os.kill(os.getpid(), signal.SIGINT)  # the real Ctrl-C path
        elif self.how == "keyboard":
            raise KeyboardInterrupt
        else:
            raise RuntimeError("simulated crash")


def metrics(run_dir) -> list[dict]:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(s).items() if k not in VOLATILE} for s in lines]


def assert_same_training(a, b):
    sa, sb = load_training_state(a), load_training_state(b)
    assert sa.step == sb.step
    assert sorted(sa.tensors) == sorted(sb.tensors)
    for k in sa.tensors:  # raw + EMA weights, AdamW moments and steps, all RNG states
        assert torch.equal(sa.tensors[k], sb.tensors[k]), k
    for key in ("epoch", "epoch_index", "batch_in_epoch", "images_seen", "optimizers"):
        assert sa.meta[key] == sb.meta[key], key
    assert sa.meta["log_window"]["sums"] == sb.meta["log_window"]["sums"]
    assert (sa.path / "model.safetensors").read_bytes() == \
        (sb.path / "model.safetensors").read_bytes()
    assert metrics(a) == metrics(b)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("baseline")
    result = run(run_dir, steps=20)
    assert result.step == 20
    return run_dir


@pytest.mark.parametrize("how,at,every,resumed_from", [
    ("crash", 13, 5, 10),     # exception: resume from the last periodic checkpoint
    ("keyboard", 13, 5, 13),  # KeyboardInterrupt: a checkpoint at the current step
    ("sigint", 8, 3, 8),      # real SIGINT mid-epoch; the resume crosses epoch boundaries
    ("crash", 7, 3, 6),       # resume from a mid-epoch checkpoint
])
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path, baseline, how, at, every,
                                                       resumed_from):
    expected = KeyboardInterrupt if how in ("keyboard", "sigint") else RuntimeError
    with pytest.raises(expected):
        run(tmp_path, steps=20, checkpoint_every=every, callbacks=[StopAt(at, how)])
    state = load_training_state(tmp_path)
    assert state.step == resumed_from
    result = run(tmp_path, resume=True, steps=20 - resumed_from, checkpoint_every=every)
    assert result.step == 20 and result.epochs == 4.0
    assert_same_training(tmp_path, baseline)
    steps = [(m["split"], m["step"]) for m in metrics(tmp_path)]
    assert len(steps) == len(set(steps))  # nothing duplicated by the resume


def test_train_lines_and_val_lines(baseline):
    lines = metrics(baseline)
    train_lines = [m for m in lines if m["split"] == "train"]
    val_lines = [m for m in lines if m["split"] == "val"]
    assert [m["step"] for m in train_lines] == list(range(2, 21, 2))
    assert [m["step"] for m in val_lines] == [4, 8, 12, 16, 20]
    for m in lines:
        assert {"loss", "mse", "reg", "lr", "epoch"} <= set(m)
    assert train_lines[0]["lr"] == pytest.approx(0.05 * 2 / 3)  # warm-up: step 2 of 3
    assert train_lines[-1]["lr"] == 0.05 and train_lines[-1]["epoch"] == 4.0
    raw = [json.loads(s) for s in (baseline / "metrics.jsonl").read_text().splitlines()]
    assert all(r["time_s"] >= 0 and r["images_per_s"] > 0 for r in raw)
    assert sorted(p.name for p in (baseline / "samples").iterdir()) == [
        "step-00000006.png", "step-00000012.png", "step-00000018.png", "step-00000020.png"]


def test_validation_is_reproducible(tmp_path, baseline):
    # Same weights, same val set, fixed generator: same numbers, whatever came before.
    run(tmp_path, steps=20, eval_every=0, sample_every=0)
    ours = [m for m in metrics(tmp_path) if m["split"] == "val"]
    theirs = [m for m in metrics(baseline) if m["split"] == "val" and m["step"] == 20]
    assert ours == theirs


@pytest.mark.parametrize("budget,steps", [
    ({"steps": 7}, 7),
    ({"epochs": 1.5}, 8),              # ceil(1.5 * 5 steps per epoch)
    ({}, 5),                           # no budget: one epoch
    ({"steps": 3, "epochs": 2}, 3),    # first budget reached wins
    ({"minutes": 1e-9}, 1),            # time is up after the first step
    ({"minutes": 1e-9, "steps": 50}, 1),
])
def test_budgets(tmp_path, budget, steps):
    result = run(tmp_path, **budget)
    assert result.step == steps
    assert load_training_state(tmp_path).step == steps


def test_budgets_are_additional_on_resume(tmp_path):
    run(tmp_path, steps=7)
    assert run(tmp_path, resume=True, epochs=1).step == 12  # one more epoch = 5 steps
    assert run(tmp_path, resume=True, steps=3).step == 15
    assert run(tmp_path, resume=True, minutes=1e-9).step == 16


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_lr_schedule_decays_over_the_budget(tmp_path, schedule):
    run(tmp_path, steps=10, warmup_steps=0, log_every=1, eval_every=0, sample_every=0,
        lr_schedule=schedule)
    lrs = [m["lr"] for m in metrics(tmp_path) if m["split"] == "train"]
    # step s (1-based) trains with the factor at progress (s - 1) / 10
    p = [s / 10 for s in range(10)]
    want = [0.05 * (0.5 * (1 + math.cos(math.pi * q)) if schedule == "cosine" else 1 - q)
            for q in p]
    assert lrs == pytest.approx(want)
    assert lrs[0] == pytest.approx(0.05)
    assert all(a > b for a, b in zip(lrs[:-1], lrs[1:], strict=True))


def test_lr_schedule_composes_with_warm_up_and_restarts_on_resume(tmp_path):
    run(tmp_path, steps=4, warmup_steps=2, log_every=1, eval_every=0, sample_every=0,
        lr_schedule="linear")
    run(tmp_path, resume=True, steps=4, warmup_steps=2, log_every=1, eval_every=0,
        sample_every=0, lr_schedule="linear")
    lrs = [m["lr"] for m in metrics(tmp_path) if m["split"] == "train"]
    first = [0.05 * 0.5 * 1.0, 0.05 * 1.0 * 0.75, 0.05 * 0.5, 0.05 * 0.25]
    assert lrs == pytest.approx(first + [0.05, 0.05 * 0.75, 0.05 * 0.5, 0.05 * 0.25])


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_an_interrupted_schedule_continues_on_resume_with_the_rest_of_its_budget(
        tmp_path, schedule, capsys):
    """Gated PixelCNN's recipe is cosine: stopped and resumed with the rest of its
    budget it must be the run it would have been (its schedule does not restart)."""
    kw = dict(checkpoint_every=4, lr_schedule=schedule, log_every=1)
    run(tmp_path / "whole", steps=12, **kw)
    with pytest.raises(RuntimeError):
        run(tmp_path / "cut", steps=12, callbacks=[StopAt(9, "crash")], **kw)
    run(tmp_path / "cut", resume=True, steps=12 - 8, **kw)  # the checkpoint is at step 8
    assert "continuing the interrupted" in capsys.readouterr().err
    assert_same_training(tmp_path / "cut", tmp_path / "whole")
    lrs = [m["lr"] for m in metrics(tmp_path / "cut") if m["split"] == "train"]
    assert lrs == pytest.approx([m["lr"] for m in metrics(tmp_path / "whole")
                                 if m["split"] == "train"])


def test_a_resume_that_moves_the_end_starts_a_new_schedule_and_says_so(tmp_path, capsys):
    kw = dict(checkpoint_every=4, lr_schedule="cosine", log_every=1)
    with pytest.raises(RuntimeError):
        run(tmp_path, steps=12, callbacks=[StopAt(9, "crash")], **kw)
    run(tmp_path, resume=True, steps=10, **kw)  # ends at 18, not 12
    assert "a new cosine decay" in capsys.readouterr().err
    lrs = [m["lr"] for m in metrics(tmp_path) if m["split"] == "train"]
    assert lrs[8] == pytest.approx(0.05)  # step 9 of the new call: the base rate again


def test_a_non_finite_buffer_is_never_checkpointed(tmp_path):
    """Losses can stay finite while a buffer blows up (SNGAN at absurd rates: infinite
    BatchNorm variances): the run stops as diverged and the last good checkpoint stays."""

    class BlowUp(Callback):
        def on_step_end(self, state):
            if state.step == 6:
                state.model.running_mean.fill_(math.inf)

    with pytest.raises(TrainingDiverged, match=r"step 8: the model tensor 'running_mean'"):
        run(tmp_path, steps=12, checkpoint_every=4, callbacks=[BlowUp()])
    state = load_training_state(tmp_path)
    assert state.step == 4  # step 8's checkpoint was refused, step 4's kept
    assert all(bool(torch.isfinite(t).all()) for t in state.tensors.values()
               if t.is_floating_point())


def test_unknown_lr_schedule_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="lr-schedule"):
        run(tmp_path, steps=1, lr_schedule="step")


def test_bad_budget_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"--steps must be >= 1, got 0"):
        run(tmp_path, steps=0)
    with pytest.raises(UserError, match="batch-size"):
        run(tmp_path, steps=1, batch_size=41)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    with pytest.raises(TrainingDiverged) as info:
        run(tmp_path, steps=20, log_every=1, model_kw={"nan_at_step": 7})
    msg = str(info.value)
    assert "\n" not in msg
    assert "step 8" in msg and "'loss'" in msg and "step-00000005" in msg
    assert "--lr" in msg and "--grad-clip" in msg
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["latest", "step-00000005"]           # nothing written for bad weights
    assert max(m["step"] for m in metrics(tmp_path)) == 7
    assert [p.name for p in (tmp_path / "samples").iterdir()] == ["step-00000006.png"]
    model = tiny.load_model(tmp_path)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # The fix works: resume from the good checkpoint without the fault.
    assert run(tmp_path, resume=True, steps=2).step == 7


def test_nan_gradient_is_caught_and_no_checkpoint_is_named(tmp_path):
    with pytest.raises(TrainingDiverged, match="gradient norm.*no checkpoint"):
        run(tmp_path, steps=20, grad_clip=0.0, model_kw={"nan_grad_at_step": 2})
    assert not (tmp_path / "checkpoints").exists()


def test_new_run_never_overwrites_an_existing_one(tmp_path):
    run(tmp_path, steps=5)
    before = (tmp_path / "checkpoints" / "step-00000005" / "trainer.safetensors").read_bytes()
    with pytest.raises(UserError, match="already has a run.*--resume"):
        run(tmp_path, steps=5)
    after = (tmp_path / "checkpoints" / "step-00000005" / "trainer.safetensors").read_bytes()
    assert before == after


def test_resume_without_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="nothing to resume"):
        run(tmp_path, resume=True, steps=2)


def test_the_step_is_passed_to_every_training_loss_call_never_set_on_the_model(
        tmp_path, monkeypatch):
    seen = []
    original = tiny.TinyModel.training_loss

    def spy(self, x, y, ctx):
        seen.append(ctx.step)
        return original(self, x, y, ctx)

    monkeypatch.setattr(tiny.TinyModel, "training_loss", spy)
    run(tmp_path, steps=4)
    assert not hasattr(tiny.TinyModel(tiny.TinyConfig()), "step")
    assert seen == [0, 1, 2, 3]  # the loss of step n (1-based) sees n - 1 steps done
