"""Plain-text formatting for the report: numbers, durations, protocols, flattened configs.

Everything here returns unescaped text; :mod:`genvision.report.html` escapes it.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: known evaluation keys -> (label, unit); unknown numeric keys are shown by their name
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "nll_nats": ("NLL", "nats/image"),
    "bits_per_dim": ("bits/dim", "bits/dim"),
    "elbo": ("ELBO", "nats/image"),
    "fid": ("FID", ""),
    "kid": ("KID", ""),
    "kid_mean": ("KID (mean ± std over subsets)", ""),
    "precision": ("precision", ""),
    "recall": ("recall", ""),
    "density": ("density", ""),
    "coverage": ("coverage", ""),
    "cas_accuracy": ("classification accuracy score (CAS)", ""),
    "feature_accuracy": ("feature network accuracy on the real images", ""),
    "train_closer_share": ("share of samples whose nearest real image is a training image",
                           ""),
    "expected_share": ("that share expected without memorisation", ""),
    "memorisation_score": ("memorisation score (0 none, 1 all samples at training images)", ""),
    "near_copy_share": ("share of near copies of training images", ""),
    "duplicate_share": ("share of samples with a near-identical other sample (collapse)", ""),
    "inception_score": ("Inception score", ""),
    "psnr": ("PSNR", "dB"),
    "ssim": ("SSIM", ""),
    "accuracy": ("accuracy", ""),
    "auroc": ("AUROC", ""),
    "time_s": ("evaluation time", "s"),
    "sampling_images_per_s": ("sampling speed", "images/s"),
    "peak_memory_mb": ("peak memory", "MB"),
}
#: evaluation keys that describe the protocol rather than being results (always shown)
PROTOCOL_KEYS = ("data", "split", "n")
#: numeric evaluation keys that are settings, not results (shown with the protocol)
PROTOCOL_NUMBERS = frozenset({"seed", "steps", "step", "epoch", "k", "batch_size"})
#: protocol-dict keys shown first, in this order; the rest follow alphabetically
_PROTOCOL_ORDER = ("source", "name", "data", "split", "binarize", "binarise", "binarisation",
                   "binarization", "binarisation_scheme", "scheme",
                   "binarisation_seed", "seed", "kind", "estimator", "k")


def fmt_number(value: Any) -> str:
    """A number for humans: ints with thousands separators, floats with ~4 significant digits."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:.4g}"
    return str(value)


def fmt_duration(seconds: float) -> str:
    """``3725.4`` -> ``"1 h 02 min 05 s"``; short times keep one decimal."""
    if not math.isfinite(seconds):
        return str(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {sec:02d} s" if hours else f"{minutes} min {sec:02d} s"


def fmt_value(value: Any) -> str:
    """Any config/protocol value as short text (dicts/lists as compact JSON)."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, separators=(", ", ": "), default=str)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)  # configs are shown exactly (3e-4 stays 0.0003)
    if value is None:
        return "none"
    return str(value)


def _protocol_items(protocol: dict[str, Any]) -> list[tuple[str, Any]]:
    order = {k: i for i, k in enumerate(_PROTOCOL_ORDER)}
    return sorted(protocol.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))


def protocol_parts(evaluation: dict[str, Any]) -> list[tuple[str, str]]:
    """``(name, text)`` pairs describing how an evaluation was made.

    Data source, split and n come first (``"not recorded"`` when absent, because a number
    without them is not comparable), then every entry of its ``protocol`` dict
    (binarisation, likelihood kind, estimator, k, ...), then any other non-numeric keys.
    """
    parts: list[tuple[str, str]] = []
    for key in PROTOCOL_KEYS:
        value = evaluation.get(key)
        if isinstance(value, dict):  # e.g. data: {source, split, binarize, seed, ...}
            parts.extend((f"{key}.{k}", fmt_value(v)) for k, v in _protocol_items(value))
        else:
            parts.append((key, "not recorded" if key not in evaluation else fmt_value(value)))
    protocol = evaluation.get("protocol")
    if isinstance(protocol, dict):
        for key, value in _protocol_items(protocol):
            if isinstance(value, dict):
                value = ", ".join(f"{k} {fmt_value(v)}" for k, v in value.items())
            parts.append((key, fmt_value(value)))
    elif protocol is not None:
        parts.append(("protocol", fmt_value(protocol)))
    for key, value in evaluation.items():
        if key in PROTOCOL_KEYS or key == "protocol" or is_result(key, value):
            continue
        parts.append((key, fmt_value(value)))
    return parts


def is_result(key: str, value: Any) -> bool:
    """Whether an evaluation entry is a numeric result (not protocol, not a stderr)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and key not in PROTOCOL_KEYS and key not in PROTOCOL_NUMBERS)


def result_rows(evaluation: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(label, value text, unit)`` per numeric result; a standard error (``X_stderr``,
    or ``nll_stderr`` for ``nll_nats``) is joined to its value as ``±``."""
    results = [k for k, v in evaluation.items() if is_result(k, v)]
    stderrs = {k: _stderr_key(k, evaluation) for k in results}
    consumed = {s for s in stderrs.values() if s}
    rows = []
    for key in results:
        if key in consumed:
            continue
        label, unit = METRIC_LABELS.get(key, (key, ""))
        text = fmt_number(evaluation[key])
        if stderrs[key]:
            text += f" ± {fmt_number(evaluation[stderrs[key]])}"
        rows.append((label, text, unit))
    return rows


def _stderr_key(key: str, evaluation: dict[str, Any]) -> str | None:
    if key.endswith("_stderr"):
        return None
    candidates = [f"{key}_stderr"]
    if key.endswith("_mean"):  # kid_mean -> kid_std (a spread over subsets)
        candidates.append(key[: -len("_mean")] + "_std")
    if key.endswith("_nats"):  # nll_nats -> nll_stderr
        candidates.append(key[: -len("_nats")] + "_stderr")
    return next((c for c in candidates if is_result(c, evaluation.get(c))), None)


def flatten(config: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dict -> sorted ``(dotted.key, text)`` rows; lists stay as compact JSON."""
    if not isinstance(config, dict):
        return [(prefix or "value", fmt_value(config))]
    rows: list[tuple[str, str]] = []
    for key in sorted(config, key=str):
        name = f"{prefix}.{key}" if prefix else str(key)
        value = config[key]
        if isinstance(value, dict) and value:
            rows.extend(flatten(value, name))
        else:
            rows.append((name, fmt_value(value)))
    return rows
