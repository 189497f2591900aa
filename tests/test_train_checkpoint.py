"""Checkpoints: safetensors + JSON only, loadable with genvision.load, atomic, prunable."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import tiny_model as tiny  # tests/tiny_model.py: the loop's tiny test model
from genvision.errors import CheckpointError
from genvision.models.protocol import OptimizerSpec, Phase
from genvision.train import Callback, TrainConfig, load_training_state, train
from genvision.train import checkpoint as ckpt


def run(run_dir, model=None, resume=False, callbacks=(), run_info=None, **kw):
    opts = dict(batch_size=8, lr=0.05, log_every=5, checkpoint_every=5, ema_decay=0.8,
                progress=False, keep_checkpoints=2, sample_every=0)
    opts.update(kw)
    model = model or tiny.TinyModel(tiny.TinyConfig())
    return train(model, tiny.make_data(), TrainConfig(**opts), run_dir, resume=resume,
                 callbacks=callbacks, run_info=run_info)


def test_checkpoint_files_are_safetensors_and_json_only(tmp_path):
    result = run(tmp_path, steps=17, run_info={"command": "genvision train tiny-test"})
    root = tmp_path / "checkpoints"
    assert (root / "latest").read_text() == "step-00000017\n"
    assert result.checkpoint == root / "step-00000017"
    # keep_checkpoints=2: the periodic ones at 5 and 10 were pruned, 15 and the final kept
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000015",
                                                     "step-00000017"]
    files = sorted(p.name for p in result.checkpoint.iterdir())
    assert files == ["config.json", "model.safetensors", "trainer.json", "trainer.safetensors"]
    for p in result.checkpoint.iterdir():
        assert not p.read_bytes().startswith(b"\x80")  # no pickle protocol header
        if p.suffix == ".json":
            json.loads(p.read_text())
        else:
            load_file(str(p))
    meta = json.loads((result.checkpoint / "trainer.json").read_text())
    assert meta["step"] == 17 and meta["epoch"] == pytest.approx(17 / 5)
    assert meta["train_config"]["ema_decay"] == 0.8
    assert meta["run_info"] == {"command": "genvision train tiny-test"}
    assert meta["optimizers"]["model"]["param_groups"][0]["betas"] == [0.9, 0.999]
    state = load_training_state(tmp_path)
    keys = set(state.tensors)
    assert {"optim/model/0/exp_avg", "optim/model/0/exp_avg_sq", "optim/model/0/step",
            "rng/cpu/0", "rng/data/0", "model/running_mean", "ema/enc.weight"} <= keys


def test_genvision_load_gives_the_ema_weights(tmp_path):
    run(tmp_path, steps=10)
    state = load_training_state(tmp_path)
    model = tiny.load_model(tmp_path)
    assert torch.equal(model.enc.weight, state.tensors["ema/enc.weight"])
    assert not torch.equal(model.enc.weight, state.tensors["model/enc.weight"])
    assert torch.equal(model.running_mean, state.tensors["model/running_mean"])


def test_optimizer_state_round_trips_without_pickle():
    p = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.AdamW([p], lr=0.1, betas=(0.8, 0.9), weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        (p ** 2).sum().backward()
        opt.step()
    tensors, meta = ckpt.flatten_optimizer("m", opt)
    assert set(tensors) == {"optim/m/0/exp_avg", "optim/m/0/exp_avg_sq", "optim/m/0/step"}
    json.dumps(meta)
    fresh = torch.optim.AdamW([torch.nn.Parameter(p.detach().clone())], lr=1.0)
    ckpt.restore_optimizer("m", fresh, tensors, meta)
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for k, v in a["state"][0].items():
        assert torch.equal(v, b["state"][0][k]), k


def test_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = ckpt.save_tensors

    def flaky(path, tensors, metadata=None):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint dies half-written
            raise OSError("disk full")
        return real(path, tensors, metadata)

    monkeypatch.setattr(ckpt, "save_tensors", flaky)
    # a failed write is one line naming the checkpoint, the step kept and how to go on
    with pytest.raises(CheckpointError, match=r"could not write checkpoint .*step-00000010 "
                       r"\(disk full\); step-00000005 is kept"):
        run(tmp_path, steps=20)
    monkeypatch.undo()
    root = tmp_path / "checkpoints"
    assert (root / "latest").read_text().strip() == "step-00000005"
    assert not (root / "step-00000010").exists()
    assert not (root / ".tmp-step-00000010").exists()   # what it wrote is removed
    assert load_training_state(tmp_path).step == 5
    tiny.load_model(tmp_path)
    # A resume continues from step 5 and cleans the debris up.
    assert run(tmp_path, resume=True, steps=10).step == 15
    assert not list(root.glob(".tmp-*"))


class TwoOptimizers(tiny.TinyModel):
    """GAN-shaped: two phases with their own optimisers (AdamW, and Adam run twice)."""

    def phases(self, cfg):
        def objective(x, y, ctx):
            out = self.loss(x, y, step=ctx.step)
            return out["loss"], {"mse": out["mse"]}

        return [Phase("enc", self.enc.parameters(), OptimizerSpec("adamw", cfg.lr), objective),
                Phase("dec", self.dec.parameters(), OptimizerSpec("adam", cfg.lr, (0.5, 0.9)),
                      objective, repeats=2)]


def test_custom_training_step_with_two_optimizers_resumes_exactly(tmp_path):
    def make():
        return TwoOptimizers(tiny.TinyConfig())

    run(tmp_path / "a", make(), steps=12, ema_decay=0.0)

    class Crash(Callback):
        def on_step_end(self, state):
            if state.step == 8:
                raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        run(tmp_path / "b", make(), steps=12, ema_decay=0.0, callbacks=[Crash()])
    run(tmp_path / "b", make(), resume=True, steps=7, ema_decay=0.0)
    sa, sb = load_training_state(tmp_path / "a"), load_training_state(tmp_path / "b")
    assert {"optim/enc/0/exp_avg", "optim/dec/0/exp_avg_sq"} <= set(sa.tensors)
    assert sorted(sa.tensors) == sorted(sb.tensors)
    for k in sa.tensors:
        assert torch.equal(sa.tensors[k], sb.tensors[k]), k
