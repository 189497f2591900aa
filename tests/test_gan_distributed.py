"""GANs under torchrun: 2 CPU processes (gloo) keep G, D and G_ema identical."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from torchrun import run_two_processes

SCRIPT = """
import json, sys
import torch
from safetensors.torch import save_file
from genvision.models.gan import SNGAN
from genvision.train import TrainConfig, TrainData, train
from genvision.train import distributed as dist

run_dir, out = sys.argv[1], sys.argv[2]
dist.init()
rank = dist.get_rank()
# Different initial weights per rank: the loop must start every rank from rank 0's.
cfg = SNGAN.config_class(image_size=(8, 8), data_kind="grey8", latent_dim=4, g_width=4,
                         d_width=4, label_dim=3, r1_gamma=1.0, diffaug="translation",
                         seed=rank, MODEL_KW)
model = SNGAN(cfg)
init = {k: v.clone() for k, v in model.state_dict().items()}
g = torch.Generator().manual_seed(0)
x = (torch.rand(32, 1, 8, 8, generator=g) * 255).round() / 255
data = TrainData(x=x, y=LABELS)
train(model, data, TrainConfig(steps=3, batch_size=4, log_every=1, checkpoint_every=3,
                               progress=False, ema_decay=0.5), run_dir)
state = {k: v.contiguous() for k, v in model.state_dict().items()}
save_file(state, f"{out}/rank{rank}.safetensors")
save_file({k: v.contiguous() for k, v in init.items()}, f"{out}/init{rank}.safetensors")
dist.cleanup()
"""


@pytest.mark.slow
@pytest.mark.parametrize(("model_kw", "labels"), [
    ("num_classes=3", "torch.arange(32) % 3"),   # conditional: projection D
    ("info_codes=3", "None"),                    # unconditional InfoGAN: codes and Q head
    ("self_condition=3", "None"),                # clusters fitted on each rank, as labels
], ids=["conditional", "info-codes", "self-condition"])
def test_two_process_ddp_keeps_g_d_and_g_ema_identical(tmp_path, model_kw, labels):
    script = tmp_path / "ddp_gan.py"
    script.write_text(SCRIPT.replace("MODEL_KW", model_kw).replace("LABELS", labels))
    run_dir, out = run_two_processes(script, tmp_path)
    r0, r1 = (load_file(str(out / f"rank{r}.safetensors")) for r in (0, 1))
    i0, i1 = (load_file(str(out / f"init{r}.safetensors")) for r in (0, 1))
    assert not i0["G.fc.weight"].equal(i1["G.fc.weight"])  # the ranks started different...
    for prefix in ("G.", "D.", "G_ema."):
        keys = [k for k in r0 if k.startswith(prefix)]
        assert keys
        for k in keys:  # ...every weight and buffer (BatchNorm stats, SN vectors) agrees
            assert r0[k].equal(r1[k]), k
    assert not r0["G.fc.weight"].equal(i0["G.fc.weight"])  # and they did train
    assert not r0["G_ema.fc.weight"].equal(i0["G_ema.fc.weight"])
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines if m["split"] == "train"] == [1, 2, 3]
