"""``genvision evaluate``: score a trained model on a dataset split, stamped with its protocol.

For likelihood models this is the test negative log-likelihood in nats per image and
bits/dim, with the estimator (exact, ELBO, IWAE-k), the dataset, split, number of
images and the binarisation used. Results are merged into ``RUN/metrics.json`` keyed by
their protocol, so re-running the same evaluation replaces its entry and a different
protocol adds one.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from . import config as cfg
from .data import prepare_eval
from .data.config import DataConfig
from .errors import UserError
from .io import atomic_write_json, read_json
from .metrics.likelihood import nll_summary
from .models.base import GenerativeModel, load
from .runs import read_run
from .train.checkpoint import latest_checkpoint, list_checkpoints
from .train.device import resolve_device

METRICS_FILE = "metrics.json"


@dataclasses.dataclass
class EvalOptions:
    data: str | None = dataclasses.field(
        default=None, metadata={"help": "dataset to score on (default: the run's own)"})
    split: str = dataclasses.field(default="test", metadata={"help": "split to score"})
    n: int | None = dataclasses.field(
        default=None, metadata={"help": "score only the first N images of the split"})
    k: int | None = dataclasses.field(
        default=None, metadata={"help": "importance samples for bound models (IWAE-k)"})
    batch_size: int = dataclasses.field(default=100, metadata={"help": "images per batch"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of the estimator noise"})
    device: str = dataclasses.field(default="auto", metadata={"help": "auto, cpu, cuda"})


def _eval_data(info: dict[str, Any], opts: EvalOptions, kind: str):
    """The evaluation images [N, C, H, W], labels and their protocol.

    Binary models get the split statically binarised (whole split, file order) before the
    first ``n`` are kept; continuous models get dequantisation noise seeded by ``--seed``.
    """
    data_cfg = cfg.from_dict(DataConfig, info["data_config"], what="data option")
    if opts.data:
        data_cfg = dataclasses.replace(data_cfg, data=opts.data)
    if opts.n is not None and opts.n < 1:
        raise UserError(f"--n must be positive, got {opts.n}", "pass --n 1 or more")
    prepared = prepare_eval(data_cfg, opts.split, model_data_kind=kind, n=opts.n)
    x = prepared.x
    if prepared.batch_transform is not None:
        x = prepared.batch_transform(x, torch.Generator().manual_seed(opts.seed))
        prepared.protocol["dequantize_seed"] = opts.seed
    return x, prepared.y, prepared.protocol


def _log_prob_kwargs(model: GenerativeModel, opts: EvalOptions) -> dict[str, Any]:
    params = inspect.signature(model.log_prob).parameters
    if opts.k is not None and "k" not in params:
        raise UserError(f"{model.name} computes an {model.likelihood_kind} likelihood "
                        "without importance samples", "drop --k")
    return {"k": opts.k} if opts.k is not None else {}


def evaluate_nll(model: GenerativeModel, x: torch.Tensor, y: torch.Tensor | None,
                 opts: EvalOptions, *, device: torch.device) -> torch.Tensor:
    """log p(x) in nats for every image, [N], computed in batches with a progress bar."""
    kwargs = _log_prob_kwargs(model, opts)
    if "generator" in inspect.signature(model.log_prob).parameters:
        kwargs["generator"] = torch.Generator(device=device).manual_seed(opts.seed)
    else:
        torch.manual_seed(opts.seed)
    out = []
    with torch.no_grad():
        for i in tqdm(range(0, x.shape[0], opts.batch_size), desc="log-likelihood",
                      unit="batch", leave=False):
            xb = x[i:i + opts.batch_size].to(device)
            yb = None if y is None else y[i:i + opts.batch_size].to(device)
            out.append(model.log_prob(xb, yb, **kwargs).double().cpu())
    return torch.cat(out)


def sampling_speed(model: GenerativeModel, n: int = 64, *, device: torch.device) -> float:
    """Images per second of ``model.sample`` for one batch of ``n`` (after a warm-up)."""
    y = torch.arange(n, device=device) % model.config.num_classes \
        if model.config.num_classes else None
    gen = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        model.sample(min(n, 4), y=None if y is None else y[:4], generator=gen)
        t0 = time.perf_counter()
        model.sample(n, y=y, generator=gen)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def evaluate_run(run_dir: str | Path, opts: EvalOptions) -> dict[str, Any]:
    """Score the run's model and merge the result into ``run_dir/metrics.json``."""
    run_dir = Path(run_dir)
    info = read_run(run_dir)
    device = resolve_device(opts.device)
    model = load(run_dir, device=device)
    if model.likelihood_kind == "none":
        raise UserError(f"{model.name} has no likelihood to evaluate",
                        "use sample-quality metrics for implicit models")
    kind = model.config.data_kind
    x, y, protocol = _eval_data(info, opts, kind)
    if not model.config.num_classes:
        y = None
    model.check_input(x[:1], None if y is None else y[:1])
    t0 = time.perf_counter()
    logp = evaluate_nll(model, x, y, opts, device=device)
    seconds = time.perf_counter() - t0
    lp_protocol = model.likelihood_protocol(**_log_prob_kwargs(model, opts))
    if protocol.get("dequantize"):
        # A density of y = (x*255 + u)/256 on [0, 1)^D becomes a bound on the 8-bit
        # likelihood: log P(x) >= E_u[log p(y)] - D ln 256 (Theis et al. 2016,
        # https://arxiv.org/abs/1511.01844), so it compares with discrete models' nats.
        logp = logp - model.config.dims * math.log(256)
        lp_protocol["dequantized"] = "log p(y) - D ln 256: a bound on the 8-bit likelihood"
    result = nll_summary(logp, model.config.dims, lp_protocol) | {
        "data": protocol, "split": opts.split, "time_s": round(seconds, 2),
        "seed": opts.seed, "sampling_images_per_s": round(sampling_speed(model, device=device), 1),
        "device": str(device), "steps": _trained_steps(run_dir),
    }
    _merge(run_dir / METRICS_FILE, result)
    return result


def _trained_steps(run_dir: Path) -> int | None:
    latest = latest_checkpoint(run_dir)
    return next((step for step, path in list_checkpoints(run_dir) if path == latest), None)


def _protocol_key(entry: dict[str, Any]) -> str:
    return json.dumps({k: entry.get(k) for k in ("data", "split", "protocol", "seed")},
                      sort_keys=True)


def _merge(path: Path, result: dict[str, Any]) -> None:
    data = read_json(path, what="metrics file") if path.exists() else {}
    evals = [e for e in data.get("evaluations", []) if _protocol_key(e) != _protocol_key(result)]
    evals.append(result)
    data["evaluations"] = evals
    atomic_write_json(path, data)


def describe(result: dict[str, Any]) -> str:
    """One human line: the number and its protocol."""
    proto = result["protocol"]
    data = result["data"]
    binar = data.get("binarize") or "none"
    if isinstance(binar, dict):  # {"scheme": "static", "seed": 0}
        binar = " seed ".join(str(v) for v in binar.values() if v is not None)
    return (f"{data.get('source', '?')} {result['split']} split (n={result['n']}): "
            f"NLL {result['nll_nats']:.2f} ± {result['nll_nats_stderr']:.2f} nats/image, "
            f"{result['bits_per_dim']:.4f} bits/dim "
            f"[{proto.get('estimator', proto.get('kind'))}, binarisation: {binar}, "
            f"seed {result['seed']}, {result['time_s']:.0f} s]")
