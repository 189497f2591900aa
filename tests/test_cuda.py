"""The CUDA code paths: mixed precision (bfloat16, and float16 with a GradScaler),
``torch.compile`` with inductor, channels-last, pinned-memory batches, an exact resume on
the GPU and NCCL data parallelism under torchrun.

Every test here is marked ``cuda`` and skips, with the reason, where torch sees no CUDA
device (``tests/conftest.py``). Run just these with ``pytest -m cuda tests``;
``benchmarks/gpu_check.py`` runs them first on a GPU machine.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genvision.cli import main
from genvision.train import TrainConfig, TrainData, load_training_state, train
from genvision.train import device as device_mod
from genvision.train.phases import Stepper
from test_compile_channels_last import assert_same_step, one_step
from test_conformance import MODELS, build, images
from torchrun import run_two_processes

pytestmark = pytest.mark.cuda
GPU = torch.device("cuda")


def close(a: dict[str, float], b: dict[str, float], rel: float) -> bool:
    return a.keys() == b.keys() and all(
        math.isclose(a[k], b[k], rel_tol=rel, abs_tol=rel) for k in a)


@pytest.mark.parametrize("name", MODELS)
def test_every_family_steps_on_the_gpu_with_and_without_mixed_precision(name):
    fp32, _ = one_step(name, TrainConfig(ema_decay=0, amp=False), device=GPU)
    amp, _ = one_step(name, TrainConfig(ema_decay=0, amp=True), device=GPU)
    assert all(math.isfinite(v) for v in [*fp32.values(), *amp.values()]), (fp32, amp)
    # bfloat16 keeps ~3 significant digits: one step's terms agree to a few percent
    assert close(fp32, amp, 0.05), (name, fp32, amp)


def test_float16_uses_a_grad_scaler_and_stays_finite(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    model = build("vae").to(GPU)
    stepper = Stepper(model, TrainConfig(ema_decay=0, amp=True), GPU)
    assert stepper.runner.scaler is not None  # float16 needs loss scaling
    x = images(model, n=16).to(GPU)
    for step in range(5):
        terms = stepper.step(x, None, step)
    assert all(math.isfinite(v) for v in terms.values())


def test_inductor_compiled_step_equals_the_eager_step():
    torch._dynamo.reset()
    eager = one_step("vae", TrainConfig(ema_decay=0, amp=False), device=GPU)
    compiled = one_step("vae", TrainConfig(ema_decay=0, amp=False, compile=True), device=GPU)
    # TF32 and fused kernels round differently from eager: agreement to 1%
    assert_same_step(eager, compiled, "vae", rel=1e-2)


def test_channels_last_step_equals_the_contiguous_step_under_amp():
    plain = one_step("gated-pixelcnn", TrainConfig(ema_decay=0), device=GPU)
    last = one_step("gated-pixelcnn", TrainConfig(ema_decay=0), device=GPU, channels_last=True)
    assert_same_step(plain, last, "gated-pixelcnn", rel=0.05)  # bfloat16 rounding


def test_batches_go_through_pinned_memory(monkeypatch):
    pinned = []
    real = torch.Tensor.pin_memory

    def spy(self, *args, **kwargs):
        pinned.append(self.shape)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "pin_memory", spy)
    x = torch.rand(4, 1, 8, 8)
    y = device_mod.to_device(x, GPU, channels_last=True)
    assert pinned == [x.shape] and y.is_cuda and torch.equal(y.cpu(), x)
    assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.fixture
def deterministic(monkeypatch):
    """cuDNN/cuBLAS without run-to-run variation (atomics in some backward kernels would
    otherwise differ in the last bit between two identical runs)."""
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    torch.use_deterministic_algorithms(True, warn_only=True)
    yield
    torch.use_deterministic_algorithms(False)


def test_a_resumed_gpu_run_equals_an_uninterrupted_one(tmp_path, deterministic):
    model = build("vae")
    x = images(model, n=64)
    cfg = dict(batch_size=16, checkpoint_every=2, log_every=1, progress=False,
               device="cuda", amp=True, sample_every=0, tensorboard=False)
    train(build("vae"), TrainData(x=x), TrainConfig(steps=4, **cfg), tmp_path / "whole")
    train(build("vae"), TrainData(x=x), TrainConfig(steps=2, **cfg), tmp_path / "split")
    train(build("vae"), TrainData(x=x), TrainConfig(steps=2, **cfg), tmp_path / "split",
          resume=True)
    a, b = (load_training_state(tmp_path / d) for d in ("whole", "split"))
    assert a.step == b.step == 4
    for key, value in a.model.items():
        assert torch.equal(value, b.model[key]), key


def test_cli_trains_on_the_gpu_with_compile_and_channels_last(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "vae", "--data", "digits", "--steps", "3", "--out", str(out),
                 "--device", "cuda", "--compile", "--channels-last", "--latent-dim", "4",
                 "--hidden", "8", "16", "--fc-dim", "32", "--batch-size", "32",
                 "--no-progress", "--no-tensorboard"]) == 0
    assert load_training_state(out).step == 3


NCCL_SCRIPT = """
import sys, torch
from safetensors.torch import save_file
from genvision.train import TrainConfig, TrainData, train
from genvision.train import distributed as dist
sys.path.insert(0, {tests!r})
from test_conformance import build, images
dist.init()
rank = dist.get_rank()
assert torch.distributed.get_backend() == "nccl"
torch.manual_seed(rank)
model = build("vae")
with torch.no_grad():  # different weights per rank: DDP must broadcast rank 0's
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.1 * rank)
x = images(model, n=64)
cfg = TrainConfig(steps=4, batch_size=8, progress=False, device="cuda", tensorboard=False)
train(model, TrainData(x=x), cfg, sys.argv[1])
flat = torch.cat([p.detach().flatten().cpu() for p in model.parameters()])
save_file({{"params": flat}}, f"{{sys.argv[2]}}/rank{{rank}}.safetensors")
dist.cleanup()
"""


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL data parallelism needs 2 GPUs")
def test_nccl_ddp_on_two_gpus_keeps_replicas_identical(tmp_path):
    script = tmp_path / "nccl_train.py"
    script.write_text(NCCL_SCRIPT.format(tests=str(Path(__file__).parent)))
    _, out = run_two_processes(script, tmp_path, cuda=True)
    r0, r1 = (load_file(str(out / f"rank{r}.safetensors")) for r in (0, 1))
    assert torch.equal(r0["params"], r1["params"])
