"""The identity of a trained feature network: what its cache key holds and its content hash.

A FID is only comparable with another computed by the same network
(:mod:`genvision.metrics.feature_net`). Training is deterministic for one torch build and
CPU kind whatever the thread count (it runs with :data:`TRAIN_THREADS` threads), so the
cache key (:func:`cache_key`) holds the data, the config and :func:`training_environment`;
:func:`weights_sha256` names the trained weights themselves, and every FID/KID/PR record
carries it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch import Tensor

__all__ = ["FEATURE_NET_VERSION", "TRAIN_THREADS", "cache_key", "training_environment",
           "weights_sha256"]

#: bump whenever the architecture, training recipe or preprocessing changes: it is part of
#: the cache key, so old cached networks are never silently reused by new code
#: (2: trained single-threaded, key holds the torch build, info the weights' SHA-256)
FEATURE_NET_VERSION = 2
#: intra-op threads of training: one, so the weights do not depend on the machine's count
TRAIN_THREADS = 1


def training_environment() -> dict[str, Any]:
    """What besides data and config changes the trained weights: the torch version (its
    kernels), whether it uses MKL / oneDNN, and the CPU's vector instruction set (which
    kernel variant runs). The thread count does not (training is single-threaded)."""
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "mkl": torch.backends.mkl.is_available(),
            "mkldnn": torch.backends.mkldnn.is_available(), "threads": TRAIN_THREADS}


def weights_sha256(tensors: dict[str, Tensor]) -> str:
    """The content hash of a network: SHA-256 (hex) over its tensors in name order, each as
    its name, dtype, shape and raw bytes.

    Not the hash of the file: safetensors writes its metadata map in an order that varies
    between processes, so one network's ``model.safetensors`` bytes are not reproducible.
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_key(data: dict[str, Any], cfg: Any,
              environment: dict[str, Any] | None = None) -> str:
    """16 hex digits of the SHA-256 of everything that changes the network.

    Args:
        data: the training data's identity: spec, split, split_seed, image_size, grayscale.
        cfg: the network config (including the seed).
        environment: the training environment (default :func:`training_environment`).
    """
    env = training_environment() if environment is None else environment
    blob = {"version": FEATURE_NET_VERSION, "data": data, "config": cfg.to_dict(),
            "environment": env}
    text = json.dumps(blob, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
