"""torchrun data parallelism: 2 CPU processes on gloo keep identical replicas; only rank 0
writes files. Also the single-process fallbacks of genvision.train.distributed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genvision.errors import UserError
from genvision.train import distributed as dist
from torchrun import run_two_processes

SCRIPT = """
import importlib.util, json, sys
import torch
from safetensors.torch import save_file
import genvision.storage as gio
from genvision.train import TrainConfig, train
from genvision.train import distributed as dist

spec = importlib.util.spec_from_file_location("tiny", {tiny!r})
sys.modules["tiny"] = tiny = importlib.util.module_from_spec(spec)  # dataclasses need it
spec.loader.exec_module(tiny)
run_dir, out = sys.argv[1], sys.argv[2]
dist.init()
rank = dist.get_rank()
writes = []
real_write = gio.atomic_write_bytes
def spy(path, data):
    writes.append(str(path))
    return real_write(path, data)
gio.atomic_write_bytes = spy

# Different initial weights per rank: DDP must broadcast rank 0's.
model = tiny.TinyModel(tiny.TinyConfig(seed=rank))
init0 = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
cfg = TrainConfig(steps=6, batch_size=4, checkpoint_every=3, log_every=1, ema_decay=0.9,
                  lr=0.05, progress=False, eval_every=3)
result = train(model, tiny.make_data(), cfg, run_dir)
flat = torch.cat([p.detach().flatten() for p in model.parameters()])
save_file({{"params": flat, "init": init0}}, f"{{out}}/rank{{rank}}.safetensors")
with open(f"{{out}}/rank{{rank}}.json", "w") as fh:
    json.dump({{"writes": writes, "world": dist.get_world_size(), "step": result.step,
               "epochs": result.epochs}}, fh)
dist.cleanup()
"""


@pytest.mark.slow
def test_two_process_ddp_keeps_replicas_identical_and_rank0_writes(tmp_path):
    script = tmp_path / "ddp_train.py"
    tiny_path = str(Path(__file__).with_name("tiny_model.py"))
    script.write_text(SCRIPT.format(tiny=tiny_path))
    run_dir, out = run_two_processes(script, tmp_path)
    r0, r1 = (load_file(str(out / f"rank{r}.safetensors")) for r in (0, 1))
    assert not r0["init"].equal(r1["init"])          # the ranks started different...
    assert r0["params"].equal(r1["params"])          # ...and DDP kept them identical
    assert not r0["params"].equal(r0["init"])        # and they did train
    info = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["world"] for i in info] == [2, 2] and [i["step"] for i in info] == [6, 6]
    # 40 images / (4 per rank x 2 ranks) = 5 steps per epoch
    assert info[0]["epochs"] == pytest.approx(6 / 5)
    assert info[1]["writes"] == [] and info[0]["writes"]   # only rank 0 writes
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines if m["split"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert [m["step"] for m in lines if m["split"] == "val"] == [3, 6]
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == "step-00000006"
    ckpt = load_file(str(run_dir / "checkpoints" / "step-00000006" / "trainer.safetensors"))
    assert {"rng/cpu/0", "rng/cpu/1", "rng/data/0", "rng/data/1"} <= set(ckpt)
    assert not ckpt["rng/data/0"].equal(ckpt["rng/data/1"])  # each rank its own stream


def test_single_process_fallbacks(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    dist.init()
    assert not dist.is_torchrun() and not dist.is_initialized()
    assert (dist.get_rank(), dist.get_world_size(), dist.is_main()) == (0, 1, True)
    assert dist.all_max([1.0, 0.0]) == [1.0, 0.0] and dist.agree(True) and not dist.agree(False)
    dist.barrier()
    dist.cleanup()


def test_more_processes_than_gpus_is_one_line_naming_nproc(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    joined = []
    monkeypatch.setattr(torch.distributed, "init_process_group", joined.append)
    with pytest.raises(UserError) as err:
        dist.init()
    assert "2 processes" in err.value.problem and "1 GPU" in err.value.problem
    assert "--nproc_per_node 1" in err.value.fix and joined == []  # refused before joining


CLOCK_SCRIPT = """
import importlib.util, json, sys, time, types
import torch
from safetensors.torch import save_file
from genvision.train import TrainConfig, train
from genvision.train import distributed as dist
from genvision.train import loop

spec = importlib.util.spec_from_file_location("tiny", {tiny!r})
sys.modules["tiny"] = tiny = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tiny)
run_dir, out = sys.argv[1], sys.argv[2]
dist.init()
rank = dist.get_rank()
if rank == 1:  # this rank's clock runs 1.5x fast: its own time budget would end sooner
    t0 = time.monotonic()
    loop.time = types.SimpleNamespace(
        monotonic=lambda: t0 + 1.5 * (time.monotonic() - t0), perf_counter=time.perf_counter)
model = tiny.TinyModel(tiny.TinyConfig(seed=0))
cfg = TrainConfig(minutes=0.03, batch_size=4, lr=0.05, lr_schedule="cosine", log_every=1,
                  checkpoint_every=10**6, ema_decay=0.0, progress=False)
result = train(model, tiny.make_data(), cfg, run_dir)
flat = torch.cat([p.detach().flatten() for p in model.parameters()])
save_file({{"params": flat}}, f"{{out}}/rank{{rank}}.safetensors")
with open(f"{{out}}/rank{{rank}}.json", "w") as fh:
    json.dump({{"step": result.step}}, fh)
dist.cleanup()
"""


@pytest.mark.slow
def test_wall_clock_schedule_is_agreed_by_every_rank(tmp_path):
    """--minutes with a decaying learning rate: each step's rate comes from one clock that
    every rank agrees on, so replicas stay identical even when the ranks' clocks differ."""
    script = tmp_path / "ddp_clock.py"
    script.write_text(CLOCK_SCRIPT.format(tiny=str(Path(__file__).with_name("tiny_model.py"))))
    run_dir, out = run_two_processes(script, tmp_path)
    r0, r1 = (load_file(str(out / f"rank{r}.safetensors")) for r in (0, 1))
    steps = [json.loads((out / f"rank{r}.json").read_text())["step"] for r in (0, 1)]
    assert steps[0] == steps[1] and steps[0] > 5
    assert r0["params"].equal(r1["params"])
    lrs = [json.loads(s)["lr"] for s in (run_dir / "metrics.jsonl").read_text().splitlines()
           if json.loads(s)["split"] == "train"]
    assert lrs[-1] < 0.5 * lrs[0]  # the cosine did decay over the clock
