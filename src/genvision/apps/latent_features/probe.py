"""The whole probe of one run: data, features, scores, maps, written with their protocol.

Every representation (the run's latent and the raw-pixel baseline) goes through the same
steps on the same images, so the rows of the table differ only in the features.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import CheckpointError, UserError
from ...models.base import load
from ...progress import progress_bar
from ...runs.claim import refuse_foreign_output
from ...runs.layout import RunLayout
from ...runs.start import read_run
from ...train.device import resolve_device
from .data import ProbeData, load_probe_data
from .extract import FEATURE_KINDS, check_supported, extract, feature_fn, pixels
from .maps import embed_2d, plot_maps, subset_for_map
from .report import RESULTS_JSON, RESULTS_MD, short_source, write_results
from .scores import PROBE_MAX_ITER, cluster_scores, linear_probe

PROBE_DIR = "probe"
MAP_METHODS = ("pca", "tsne")  # the maps drawn, each written as METHOD.png


@dataclasses.dataclass
class ProbeOptions:
    """Options of ``genvision features probe`` (one flag per field)."""

    labels: str = field(default="100,1000", metadata={
        "help": "comma list of labelled-image counts the probe trains on"})
    seeds: int = field(default=5, metadata={
        "help": "label subsets (seeds 0..S-1) per count; mean and std are reported"})
    data: str | None = field(default=None, metadata={
        "help": "evaluation dataset (default: official MNIST test digits for MNIST runs when "
                "a copy is found beside the project, else the run's dataset)"})
    split: str = field(default="test", metadata={"help": "evaluation split"})
    n: int | None = field(default=None, metadata={
        "help": "use only the first N evaluation images"})
    map_n: int = field(default=2000, metadata={
        "help": "evaluation images drawn in the PCA / t-SNE maps (seeded random subset)"})
    tsne: bool = field(default=True, metadata={"help": "draw the t-SNE map (slowest step)"})
    probe_c: float = field(default=1.0, metadata={
        "help": "inverse L2 strength C of the logistic-regression probe"})
    kmeans_init: int = field(default=4, metadata={"help": "k-means restarts"})
    batch_size: int = field(default=500, metadata={"help": "images per feature batch"})
    seed: int = field(default=0, metadata={"help": "seed of k-means, maps and noise"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda"})

    def __post_init__(self) -> None:
        counts = self.label_counts  # parses; raises ValueError on bad input
        if not counts or min(counts) < 1:
            raise ValueError(f"--labels must be positive counts, got {self.labels!r}")
        if self.seeds < 1 or self.map_n < 0 or self.kmeans_init < 1 or self.batch_size < 1:
            raise ValueError("need seeds >= 1, map_n >= 0, kmeans_init >= 1, batch_size >= 1")
        if self.probe_c <= 0 or (self.n is not None and self.n < 2):
            raise ValueError("need probe_c > 0 and n >= 2")

    @property
    def label_counts(self) -> list[int]:
        try:
            return sorted({int(s) for s in str(self.labels).split(",") if s.strip()})
        except ValueError:
            raise ValueError(f"--labels must be a comma list of integers, got "
                             f"{self.labels!r}") from None


def read_probe_run(run_dir: str | Path) -> dict[str, Any]:
    """run.json of ``run_dir``, checked to be a run whose features the probe defines."""
    info = read_run(run_dir)
    if not isinstance(info, dict) or not {"model", "data_config", "model_config"} <= set(info):
        raise CheckpointError(f"{RunLayout(run_dir).run_json} is not a genvision run file",
                              "pass a run directory written by `genvision train`")
    check_supported(info["model"], bool(info.get("conditional")))
    return info


def _check_counts(counts: list[int], y: np.ndarray, source: str) -> None:
    k, n = len(np.unique(y)), len(y)
    if max(counts) > n or min(counts) < k:
        raise UserError(f"--labels {','.join(map(str, counts))} is outside what {source} "
                        f"allows ({k} classes, {n} labelled images)",
                        f"pass counts between {k} and {n}")


def _features(run_dir: Path, info: dict[str, Any], data: ProbeData, opts: ProbeOptions,
              progress: bool) -> tuple[dict[str, dict[str, np.ndarray]], float]:
    """{"latent": {"train", "eval"}, "pixels": {...}} feature arrays and extraction seconds."""
    device = resolve_device(opts.device)
    model = load(run_dir, device=device)
    fn = feature_fn(model, info["model"])
    t0 = time.perf_counter()
    latent = {split: extract(fn, x, batch_size=opts.batch_size, device=device,
                             progress=progress, desc=f"{info['model']} features ({split})")
              for split, x in (("train", data.train_x), ("eval", data.eval_x))}
    seconds = time.perf_counter() - t0
    return {"latent": latent,
            "pixels": {"train": pixels(data.train_x), "eval": pixels(data.eval_x)}}, seconds


def _score(feats: dict[str, np.ndarray], data: ProbeData, opts: ProbeOptions
           ) -> dict[str, Any]:
    train_y, eval_y = data.train_y.numpy(), data.eval_y.numpy()
    seeds = list(range(opts.seeds))
    probes = {str(n): linear_probe(feats["train"], train_y, feats["eval"], eval_y, n, seeds,
                                   C=opts.probe_c) for n in opts.label_counts}
    return {"dim": int(feats["eval"].shape[1]), "probe": probes,
            "kmeans": cluster_scores(feats["eval"], eval_y, seed=opts.seed,
                                     n_init=opts.kmeans_init)}


def _maps(all_feats: dict[str, dict[str, np.ndarray]], names: dict[str, str],
          data: ProbeData, opts: ProbeOptions, out: Path, progress: bool) -> dict[str, Any]:
    if not opts.map_n:
        return {}
    y = data.eval_y.numpy()
    idx = subset_for_map(y, opts.map_n, opts.seed)
    ev = data.eval_protocol
    written = {}
    methods = list(MAP_METHODS) if opts.tsne else list(MAP_METHODS[:1])
    for method in progress_bar(methods, desc="2-D maps", unit="map", disable=not progress,
                               leave=False):
        coords = {names[rep]: embed_2d(f["eval"][idx], method, seed=opts.seed)
                  for rep, f in all_feats.items()}
        title = (f"{method.upper() if method == 'pca' else 't-SNE'} of {len(idx)} "
                 f"{short_source(ev['source'])} {ev['split']} images, coloured by class")
        path = plot_maps(coords, y[idx], out / f"{method}.png", title=title)
        written[method] = path.name
    return {"files": written, "n": int(len(idx)), "seed": opts.seed}


def protocol(info: dict[str, Any], data: ProbeData, opts: ProbeOptions) -> dict[str, Any]:
    """What every number of the probe was measured on (copied into the JSON and Markdown)."""
    return {
        "run_model": info["model"], "features": FEATURE_KINDS[info["model"]],
        "label_pool": data.train_protocol, "evaluation": data.eval_protocol,
        "evaluation_reason": data.eval_reason,
        "labels": opts.label_counts, "label_seeds": list(range(opts.seeds)),
        "label_subset": "class-balanced: n // k per class, the rest uniform, per seed",
        "probe": f"StandardScaler + LogisticRegression(C={opts.probe_c}, lbfgs, multinomial, "
                 f"max_iter={PROBE_MAX_ITER}) (scikit-learn), test accuracy",
        "clustering": f"k-means, k = classes, k-means++, n_init={opts.kmeans_init}, "
                      f"seed {opts.seed}, unscaled evaluation features; NMI (arithmetic), ARI",
    }


def probe_run(run_dir: str | Path, opts: ProbeOptions, *, out: str | Path | None = None,
              progress: bool = False) -> dict[str, Any]:
    """Probe the run in ``run_dir``; writes results.json, results.md and the maps to ``out``.

    Every check (run, family, labels, counts) happens before anything is written.

    Returns:
        The results dict written to ``results.json``.
    """
    run_dir = Path(run_dir)
    t_cpu, t0 = time.process_time(), time.perf_counter()
    out = Path(out) if out else run_dir / PROBE_DIR
    # before any work: the results replace only files of their own names
    refuse_foreign_output(out, (RESULTS_JSON, RESULTS_MD, *(f"{m}.png" for m in MAP_METHODS)),
                          "features probe")
    info = read_probe_run(run_dir)
    data = load_probe_data(info, data=opts.data, split=opts.split, n_eval=opts.n,
                           seed=opts.seed)
    _check_counts(opts.label_counts, data.train_y.numpy(), data.train_protocol["source"])
    feats, extract_s = _features(run_dir, info, data, opts, progress)
    names = {"latent": f"{info['model']}: {FEATURE_KINDS[info['model']]}",
             "pixels": "raw pixels (baseline)"}
    t1 = time.perf_counter()
    bar = progress_bar(feats.items(), desc="probe + k-means", total=len(feats),
                       unit="representation", disable=not progress, leave=False)
    reps = {rep: {"name": names[rep], **_score(f, data, opts)} for rep, f in bar}
    score_s = time.perf_counter() - t1
    out.mkdir(parents=True, exist_ok=True)
    t2 = time.perf_counter()
    maps = _maps(feats, names, data, opts, out, progress)
    results = {
        "run": str(run_dir), "protocol": protocol(info, data, opts),
        "representations": reps, "maps": maps,
        "time_s": {"features": round(extract_s, 2), "scores": round(score_s, 2),
                   "maps": round(time.perf_counter() - t2, 2),
                   "total_wall": round(time.perf_counter() - t0, 2),
                   "total_cpu": round(time.process_time() - t_cpu, 2)},
    }
    write_results(results, out)
    return results
