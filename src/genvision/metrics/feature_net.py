"""A small per-dataset classifier whose penultimate layer is the feature space of FID etc.

FID, KID and precision/recall (:mod:`.sample_quality`) compare feature vectors of real and
generated images. The usual feature network, Inception-v3 trained on ImageNet
(Heusel et al. 2017, https://arxiv.org/abs/1706.08500), cannot be downloaded here and is a
poor fit for 28x28 digits anyway, so genvision trains a small CNN classifier on the
dataset itself (as Binkowski et al. 2018, https://arxiv.org/abs/1801.01401, do with a
LeNet for MNIST), caches it, and records its test accuracy: a feature space is only as
meaningful as the classifier behind it, and the accuracy travels with every FID.

**Grey and binary inputs.** Likelihood models of MNIST are trained on binarised digits and
sample binary images, while the real data is grey. A classifier trained on grey digits
alone sees binary samples as out-of-distribution and its features then measure "is it
binary" instead of "is it a good digit". So every training batch mixes grey images with
Bernoulli-binarised copies (each image independently, probability ``binarize_prob``), and
the accuracy is reported on both the grey and the statically binarised test set.

**One network per key.** Training runs single-threaded: multi-threaded convolution
gradients sum in a thread-count-dependent order (one key gave 98.50%, 98.40% and 98.33%).
The key and the weights' hash are in :mod:`.feature_identity`.

Public API::

    net, info = load_or_train_feature_net("mnist5k", split="all")
    feats = extract_features(net, images)          # [N, 1, 28, 28] -> [N, 128]
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data import load_dataset
from ..data.download import cache_root
from ..data.transforms import binarize_dynamic, binarize_static
from ..errors import CheckpointError, DataError, UserError
from ..nn.small_cnn import conv_body, fit_classifier, random_shift
from ..storage import atomic_write_json, load_tensors, read_json, save_tensors
from .feature_identity import (
    FEATURE_NET_VERSION,
    TRAIN_THREADS,
    cache_key,
    training_environment,
    weights_sha256,
)

__all__ = [
    "FEATURE_NET_VERSION",
    "FeatureNet",
    "FeatureNetConfig",
    "cache_key",
    "default_config",
    "evaluate_accuracy",
    "extract_features",
    "load_feature_net",
    "load_or_train_feature_net",
    "train_feature_net",
    "training_environment",
    "weights_sha256",
]



@dataclass
class FeatureNetConfig:
    """Everything that defines a feature network and how it is trained.

    Attributes:
        channels: input channels (1 grey, 3 RGB).
        image_size: input side H = W.
        num_classes: classifier outputs.
        width: channels of the first conv block; blocks use width, 2*width, 4*width.
        feature_dim: size of the embedding returned by :meth:`FeatureNet.features`.
        epochs: passes over the training images.
        lr: peak learning rate (AdamW; linear warm-up, cosine decay).
        batch_size: training batch size.
        augment: random integer shifts of up to ``max_shift`` pixels (zero padded).
        max_shift: largest shift in pixels, per axis.
        binarize_prob: probability that a training image is replaced by a Bernoulli draw
            of itself (see module docstring); 0 for RGB data.
        seed: seeds initialisation, shuffling, augmentation and binarisation.
    """

    channels: int = 1
    image_size: int = 28
    num_classes: int = 10
    width: int = 32
    feature_dim: int = 128
    epochs: int = 16
    lr: float = 3e-3
    batch_size: int = 128
    augment: bool = True
    max_shift: int = 2
    binarize_prob: float = 0.5
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureNetConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise CheckpointError(f"feature network config has unknown fields {unknown}",
                                  "it was written by another genvision version; retrain it")
        return cls(**d)


def default_config(shape: tuple[int, int, int], num_classes: int, **overrides: Any
                   ) -> FeatureNetConfig:
    """The default config for images of ``shape`` = (C, H, W) with ``num_classes`` labels.

    Binarised copies only make sense for grey data, so RGB data gets ``binarize_prob=0``.
    """
    c, h, w = shape
    if h != w:
        raise DataError(f"feature networks need square images, got {h}x{w}",
                        "resize the data with --image-size N")
    base = FeatureNetConfig(channels=c, image_size=h, num_classes=num_classes,
                            binarize_prob=0.5 if c == 1 else 0.0)
    return dataclasses.replace(base, **overrides)


class FeatureNet(nn.Module):
    """Three conv blocks, a ``feature_dim`` embedding and a linear classifier.

    Each block is conv3x3 -> BatchNorm -> ReLU -> 2x2 max-pool (the pool is skipped once
    the map is 2x2, so 8x8 inputs keep some spatial detail). The last map is average-pooled
    to 2x2 (keeps coarse layout, which matters for digits) and flattened. The body is
    :func:`genvision.nn.small_cnn.conv_body`, shared with the tasks' SmallCNN classifier.

    Args:
        cfg: the :class:`FeatureNetConfig`.
    """

    def __init__(self, cfg: FeatureNetConfig):
        super().__init__()
        self.config = cfg
        widths = [cfg.width, 2 * cfg.width, 4 * cfg.width]
        side = cfg.image_size
        self.body, _ = conv_body(cfg.channels, widths, (side, side), batch_norm=True,
                                 pool_min_side=4, out_pool=2)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(4 * widths[-1], cfg.feature_dim),
                                   nn.ReLU(inplace=True))
        self.classifier = nn.Linear(cfg.feature_dim, cfg.num_classes)

    def _check(self, x: Tensor) -> None:
        c, s = self.config.channels, self.config.image_size
        if x.dim() != 4 or x.shape[1] != c or x.shape[2] != s or x.shape[3] != s:
            raise UserError(f"feature network expects images [N, {c}, {s}, {s}], got "
                            f"{list(x.shape)}",
                            "use a feature network trained on data of the same shape")

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features (post-ReLU), the space FID/KID/PR are computed in.

        Args:
            x: float [N, C, H, W] images in [0, 1].

        Returns:
            float [N, feature_dim].
        """
        self._check(x)
        # Centre inputs on 0.5 so grey and binary images share one scale around zero.
        return self.embed(self.body(x - 0.5))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits.

        Args:
            x: float [N, C, H, W] images in [0, 1].

        Returns:
            float [N, num_classes].
        """
        return self.classifier(self.features(x))


def _training_batch(x: Tensor, cfg: FeatureNetConfig, gen: torch.Generator) -> Tensor:
    """Augment a float batch: random shifts, then binarise a random subset of the images."""
    if cfg.augment and cfg.max_shift > 0:
        x = random_shift(x, cfg.max_shift, gen)
    if cfg.binarize_prob > 0:
        pick = torch.rand(x.shape[0], generator=gen) < cfg.binarize_prob
        bits = binarize_dynamic(x, gen)
        x = torch.where(pick.view(-1, 1, 1, 1), bits, x)
    return x


def _one_cycle(total: int, warmup: float = 0.2):
    """LR factor per step: linear warm-up over ``warmup`` of the steps, then cosine to 0.

    Written out rather than ``OneCycleLR``, which divides by zero for a handful of steps.
    """
    up = max(1, round(warmup * total))

    def factor(step: int) -> float:
        if step < up:
            return (step + 1) / up
        return 0.5 * (1 + math.cos(math.pi * (step - up) / max(1, total - up)))
    return factor


def _as_float(images: Tensor) -> Tensor:
    return images.to(torch.float32) / 255.0 if images.dtype == torch.uint8 else images.float()


def train_feature_net(images_uint8: Tensor, labels: Tensor, cfg: FeatureNetConfig, *,
                      progress: bool = True) -> FeatureNet:
    """Train a :class:`FeatureNet` classifier; deterministic given ``cfg.seed``.

    AdamW with a warm-up + cosine learning-rate schedule, label smoothing 0.1, random shifts and
    a random grey/binary mix per batch (see module docstring). The global RNG state is
    restored afterwards, so calling this does not change a caller's random stream.

    Args:
        images_uint8: uint8 [N, C, H, W] training images (float [0, 1] is accepted too).
        labels: int64 [N] labels in [0, num_classes).
        cfg: the config; its channels / image_size must match the images.
        progress: show progress (a bar on a terminal, plain lines in a log).

    Returns:
        The trained network, in eval mode, on the CPU.
    """
    x_all, y_all = _as_float(images_uint8), labels.to(torch.int64)
    if x_all.dim() != 4 or tuple(x_all.shape[1:]) != (cfg.channels, cfg.image_size,
                                                        cfg.image_size):
        raise UserError(f"images {list(x_all.shape)} do not match the feature network config "
                        f"({cfg.channels}x{cfg.image_size}x{cfg.image_size})",
                        "build the config with default_config(images.shape[1:], num_classes)")
    if len(y_all) != len(x_all) or len(x_all) == 0:
        raise UserError(f"need one label per image, got {len(y_all)} labels for "
                        f"{len(x_all)} images", "pass labelled data")
    gen = torch.Generator().manual_seed(cfg.seed)
    total = math.ceil(len(x_all) / cfg.batch_size) * cfg.epochs
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAIN_THREADS)  # see the module docstring: same weights anywhere
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)  # initialisation is the only user of the global RNG
            # channels-last convolutions are ~30% faster on CPU; the weights are identical
            net = FeatureNet(cfg).to(memory_format=torch.channels_last)
            fit_classifier(net, x_all, y_all, steps=total, batch_size=cfg.batch_size,
                           lr=cfg.lr, weight_decay=5e-4, generator=gen,
                           augment=lambda xb, g: _training_batch(xb, cfg, g),
                           label_smoothing=0.1, lr_factor=_one_cycle(total), drop_last=False,
                           channels_last=True, progress=progress, desc="feature net")
    finally:
        torch.set_num_threads(threads)
    return net.to(memory_format=torch.contiguous_format).eval()


@torch.no_grad()
def extract_features(net: FeatureNet, images: Tensor, batch_size: int = 500) -> Tensor:
    """Features of ``images`` in eval mode, without gradients, in batches.

    Args:
        net: a trained :class:`FeatureNet`.
        images: float [N, C, H, W] in [0, 1] (uint8 is converted as pixel / 255).
        batch_size: images per forward pass.

    Returns:
        float32 [N, feature_dim] on the CPU.
    """
    return _batched(net, images, batch_size, net.features)


@torch.no_grad()
def evaluate_accuracy(net: FeatureNet, images: Tensor, labels: Tensor,
                      batch_size: int = 500) -> float:
    """Top-1 accuracy of ``net`` on float [N, C, H, W] images and int [N] labels."""
    logits = _batched(net, images, batch_size, net)
    return float((logits.argmax(1) == labels.to(logits.device)).float().mean())


def _batched(net: FeatureNet, images: Tensor, batch_size: int, fn) -> Tensor:
    was_training = net.training
    net.eval()  # BatchNorm must use its running statistics, not the batch's
    device = next(net.parameters()).device
    try:
        outs = [fn(_as_float(images[i:i + batch_size]).to(device)).float().cpu()
                for i in range(0, images.shape[0], batch_size)]
    finally:
        net.train(was_training)
    if not outs:
        net._check(_as_float(images))
        width = net.config.feature_dim if fn == net.features else net.config.num_classes
        return torch.zeros(0, width)
    return torch.cat(outs)


# ----------------------------------------------------------------------------- cache


def _describe(spec: str, shape: tuple[int, int, int] | list[int]) -> str:
    c, h, w = shape
    return f"{spec} {h}x{w}" + (" RGB" if c == 3 else "")


def load_feature_net(path: str | os.PathLike, *, expect_data: str | None = None,
                     expect_shape: tuple[int, int, int] | None = None
                     ) -> tuple[FeatureNet, dict[str, Any]]:
    """Load a saved feature network (safetensors + JSON only; no pickled code is run).

    Args:
        path: a directory holding ``config.json``, ``model.safetensors`` and ``info.json``.
        expect_data: refuse a network trained on another dataset spec.
        expect_shape: refuse a network for another (C, H, W).

    Returns:
        (network in eval mode, info dict; its ``weights_sha256`` is computed from the
        weights read, so it names exactly the network returned).

    Raises:
        UserError: the network was trained on other data / another shape.
        CheckpointError: a file is missing, corrupt, does not match the config, or is not
            the one trained (its hash differs from the one info.json recorded).
    """
    path = Path(path)
    cfg = FeatureNetConfig.from_dict(read_json(path / "config.json", what="feature net config"))
    info = read_json(path / "info.json", what="feature net info")
    data = info.get("data", {})
    shape = tuple(data.get("shape", (cfg.channels, cfg.image_size, cfg.image_size)))
    if (expect_data is not None and data.get("spec") != expect_data) or (
            expect_shape is not None and shape != tuple(expect_shape)):
        want = _describe(expect_data or data.get("spec", "?"), expect_shape or shape)
        raise UserError(
            f"feature network at {path} was trained on {_describe(data.get('spec', '?'), shape)}"
            f", not {want}",
            f"delete {path} or train one for {want} with load_or_train_feature_net")
    net = FeatureNet(cfg)
    tensors = load_tensors(path / "model.safetensors")
    digest = weights_sha256(tensors)
    recorded = info.get("weights_sha256")
    if recorded is not None and recorded != digest:
        raise CheckpointError(f"{path / 'model.safetensors'} is not the network trained there "
                              f"(SHA-256 {digest[:12]}, info.json records {str(recorded)[:12]})",
                              f"delete {path} and retrain")
    info = {**info, "weights_sha256": digest}
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:  # missing / unexpected keys or wrong tensor shapes
        raise CheckpointError(f"{path / 'model.safetensors'} does not match its config "
                              f"({str(exc).splitlines()[0]})", f"delete {path} and retrain"
                              ) from None
    return net.eval(), info


def _save(net: FeatureNet, info: dict[str, Any], final: Path) -> None:
    """Write the three files into a temp dir beside ``final``, then rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        atomic_write_json(tmp / "config.json", net.config.to_dict())
        save_tensors(tmp / "model.safetensors", net.state_dict(),
                     metadata={"format": "genvision-feature-net",
                               "version": str(FEATURE_NET_VERSION)})
        atomic_write_json(tmp / "info.json",
                          {**info, "weights_sha256": weights_sha256(net.state_dict())})
        if final.exists():  # a corrupt entry being replaced
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError:
        if final.is_dir():  # another process finished the same entry first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
            return
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _test_accuracy(net: FeatureNet, spec: str, split: str, load_kw: dict[str, Any]
                   ) -> dict[str, Any] | None:
    try:
        test = load_dataset(spec, split, **load_kw)
    except DataError:
        return None
    if test.y is None or len(test) == 0:
        return None
    x = test.to_float()
    return {"spec": spec, "split": split, "n": len(test),
            "grey": evaluate_accuracy(net, x, test.y),
            # the benchmark's static binarisation of the whole split, seed 0
            "binarized": evaluate_accuracy(net, binarize_static(x, 0), test.y),
            "binarize": {"scheme": "static", "seed": 0}}


def load_or_train_feature_net(
        data_spec: str, *, split: str = "train", cache_dir: str | os.PathLike | None = None,
        cfg: FeatureNetConfig | None = None, progress: bool = True,
        image_size: int | None = None, grayscale: bool = False, split_seed: int = 0,
        test_spec: str | None = None, test_split: str = "test",
        out: str | os.PathLike | None = None,
) -> tuple[FeatureNet, dict[str, Any]]:
    """The cached feature network for a dataset, training (and caching) it on first use.

    Lives under ``<cache>/features/<key>/`` (``<cache>`` = ``cache_dir``, else
    ``$GENVISION_CACHE``, else ``~/.cache/genvision``) where ``key`` = :func:`cache_key` of
    the data identity and the config. A corrupt or unreadable cache entry is a cache miss:
    it is reported with a warning and retrained, since the cache can always be rebuilt
    (use :func:`load_feature_net` to get an error instead).

    Args:
        data_spec: dataset spec, e.g. ``"mnist5k"`` or ``"idx:/data/mnist"`` (needs labels).
        split: split to train on (``"all"`` for everything).
        cache_dir: cache root.
        cfg: network config; default :func:`default_config` for the data's shape.
        progress: show a progress bar while training.
        image_size, grayscale, split_seed: preprocessing, as for ``load_dataset``.
        test_spec: dataset for the recorded test accuracy (default ``data_spec``, whose
            ``test_split`` is used unless ``split`` is ``"all"``, which contains it).
        test_split: split of ``test_spec`` to score.
        out: train afresh and write the network to this new directory instead of the
            cache (refused when it exists, so nothing is overwritten).

    Returns:
        (network in eval mode, info dict with ``key``, ``data``, ``config``,
        ``environment``, ``weights_sha256``, ``test_accuracy`` (or None),
        ``train_seconds``, ``created``). A freshly trained network is returned as read
        back from its files, so its hash names it even when another process cached the
        same key first.

    Raises:
        UserError: unlabelled data, a config that does not fit the data, or a cached
            network recorded for other data.
    """
    load_kw = {"image_size": image_size, "grayscale": grayscale, "split_seed": split_seed}
    ds = load_dataset(data_spec, split, cache_dir=cache_dir, **load_kw)
    if ds.y is None:
        raise UserError(f"{data_spec} has no labels, so no feature classifier can be trained "
                        "on it", "use a labelled dataset (digits, mnist5k, cifar10, idx:, "
                        "folder: with class sub-folders)")
    if cfg is None:
        cfg = default_config(ds.shape, ds.num_classes)
    elif (cfg.channels, cfg.image_size, cfg.image_size) != ds.shape:
        have = "x".join(map(str, ds.shape))
        raise UserError(f"feature net config is for {cfg.channels}x{cfg.image_size}x"
                        f"{cfg.image_size} images but {data_spec} has {have}",
                        "use default_config(shape, num_classes) or fix channels/image_size")
    data = {"spec": data_spec, "split": split, "split_seed": split_seed,
            "image_size": image_size, "grayscale": grayscale}
    env = training_environment()
    key = cache_key(data, cfg, env)
    entry = cache_root(cache_dir) / "features" / key
    if out is not None:
        entry = Path(out)
        if entry.exists():
            raise UserError(f"{entry} already exists", "choose a new --out directory")
    elif entry.is_dir():
        try:
            return load_feature_net(entry, expect_data=data_spec, expect_shape=ds.shape)
        except CheckpointError as exc:
            warnings.warn(f"cached feature network unusable, retraining: {exc}", stacklevel=2)
    t0 = time.perf_counter()
    net = train_feature_net(ds.x, ds.y, cfg, progress=progress)
    seconds = time.perf_counter() - t0
    test = None
    if test_spec is not None or split != "all":
        test = _test_accuracy(net, test_spec or data_spec, test_split,
                              {**load_kw, "cache_dir": cache_dir})
    info = {"key": key, "version": FEATURE_NET_VERSION,
            "data": {**data, "n": len(ds), "shape": list(ds.shape),
                     "num_classes": ds.num_classes},
            "config": cfg.to_dict(), "test_accuracy": test,
            "train_seconds": round(seconds, 2), "created": time.time(),
            "torch": torch.__version__, "environment": env}
    _save(net, info, entry)
    return load_feature_net(entry, expect_data=data_spec, expect_shape=ds.shape)
