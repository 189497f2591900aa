"""The evaluation section of a run's report, and the headline numbers of ``genvision info``.

``metrics.json`` holds one entry per evaluation protocol, each with its numbers and the
settings they were made under. The page shows one table per kind of evaluation
(likelihood, samples, image-to-image), one row per evaluation, the headline metrics first
(NLL and bits/dim with the likelihood's kind, FID, precision/recall, then the rest), each
column headed by its unit and whether lower or higher is better, numbers rounded for
reading. Under each row, its protocol is folded into a one-line summary, with every raw
setting in a ``<details>`` element.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from . import format as fmt

LOWER, HIGHER = "lower", "higher"
ARROWS = {LOWER: "↓", HIGHER: "↑"}
ARROW_TITLES = {LOWER: "lower is better", HIGHER: "higher is better"}

#: metric key -> (short label, unit, which way is better); the order is the column order
METRICS: dict[str, tuple[str, str, str | None]] = {
    "nll_nats": ("NLL", "nats/image", LOWER),
    "bits_per_dim": ("bits/dim", "bits/dim", LOWER),
    "elbo": ("ELBO", "nats/image", HIGHER),
    "fid": ("FID", "", LOWER),
    "precision": ("precision", "", HIGHER),
    "recall": ("recall", "", HIGHER),
    "density": ("density", "", HIGHER),
    "coverage": ("coverage", "", HIGHER),
    "kid_mean": ("KID", "", LOWER),
    "kid": ("KID", "", LOWER),
    "cas_accuracy": ("CAS", "accuracy", HIGHER),
    "psnr_y": ("PSNR (Y)", "dB", HIGHER),
    "psnr_rgb": ("PSNR (RGB)", "dB", HIGHER),
    "psnr": ("PSNR", "dB", HIGHER),
    "ssim_y": ("SSIM (Y)", "", HIGHER),
    "ssim_rgb": ("SSIM (RGB)", "", HIGHER),
    "ssim": ("SSIM", "", HIGHER),
    "accuracy": ("accuracy", "", HIGHER),
    "auroc": ("AUROC", "", HIGHER),
    "inception_score": ("Inception score", "", HIGHER),
    "memorisation_score": ("memorisation", "0 none, 1 all", LOWER),
    "near_copy_share": ("near copies", "share", LOWER),
    "duplicate_share": ("duplicates", "share", LOWER),
    "train_closer_share": ("nearest is a training image", "share", None),
    "expected_share": ("…expected without memorisation", "share", None),
    "feature_accuracy": ("feature net accuracy", "real images", HIGHER),
    "sampling_images_per_s": ("sampling", "images/s", HIGHER),
    "time_s": ("evaluation time", "s", LOWER),
    "peak_memory_mb": ("peak memory", "MB", LOWER),
}
#: the numbers ``genvision info`` prints for each evaluation
HEADLINE = ("nll_nats", "bits_per_dim", "fid", "precision", "recall", "kid_mean", "psnr_y",
            "ssim_y", "psnr", "ssim", "auroc", "accuracy")
#: kinds of evaluation, in the order their tables are shown
KIND_TITLES = {"likelihood": "Likelihood", "samples": "Samples",
               "image-to-image": "Image to image"}


def kind_of(entry: dict[str, Any]) -> str:
    """The evaluation's kind (entries written before kinds existed are likelihoods)."""
    return str(entry.get("kind", "likelihood"))


def result_keys(entry: dict[str, Any]) -> list[str]:
    """The numeric results of an entry (no standard errors), in :data:`METRICS` order,
    unknown ones after in file order."""
    keys = [k for k, v in entry.items() if fmt.is_result(k, v) and not _is_spread(k, entry)]
    order = {k: i for i, k in enumerate(METRICS)}
    return sorted(keys, key=lambda k: order.get(k, len(order)))


def _is_spread(key: str, entry: dict[str, Any]) -> bool:
    """Whether ``key`` is the standard error / spread of another result of the entry."""
    if key.endswith("_stderr"):
        base = key[: -len("_stderr")]
        return base in entry or f"{base}_nats" in entry
    return key.endswith("_std") and f"{key[: -len('_std')]}_mean" in entry


def value_text(entry: dict[str, Any], key: str) -> str:
    """A rounded number, with its standard error (``±``) when the entry records one."""
    text = round_number(entry[key])
    for spread in _spread_keys(key):
        err = entry.get(spread)
        if fmt.is_result(spread, err):
            return f"{text} ± {round_number(err, 2)}"
    return text


def _spread_keys(key: str) -> list[str]:
    keys = [f"{key}_stderr"]
    if key.endswith("_nats"):
        keys.append(key[: -len("_nats")] + "_stderr")
    if key.endswith("_mean"):
        keys.append(key[: -len("_mean")] + "_std")
    return keys


def round_number(value: Any, digits: int = 4) -> str:
    """A result for reading: ``digits`` significant digits (a standard error gets 2),
    thousands separators, no float noise (``0.9800000190734863`` -> ``0.98``)."""
    if isinstance(value, float) and math.isfinite(value) and value != 0 and abs(value) < 1000:
        value = float(f"{value:.{digits}g}")
    return fmt.fmt_number(value)


def metric_label(key: str) -> tuple[str, str, str | None]:
    """``(label, unit, better)`` of a result key; unknown keys are their own label."""
    return METRICS.get(key, (key, "", None))


def likelihood_kind(entry: dict[str, Any]) -> str | None:
    """``exact``, ``bound (IWAE-1000)``, ``estimate (AIS)`` ... of a likelihood entry."""
    protocol = entry.get("protocol") if isinstance(entry.get("protocol"), dict) else {}
    kind, estimator = protocol.get("kind"), protocol.get("estimator")
    if kind is None and estimator is None:
        return None
    if estimator is None or str(estimator) == str(kind):
        return str(kind)
    return f"{kind} ({estimator})" if kind else str(estimator)


def protocol_summary(entry: dict[str, Any]) -> str:
    """The protocol in one readable line: data, split, n, binarisation, estimator or
    feature space, sampler, seed and checkpoint step."""
    data = entry.get("data")
    parts: list[str] = []
    if isinstance(data, dict):
        source = data.get("source") or data.get("name")
        parts.append(" ".join(str(p) for p in (source, entry.get("split") or data.get("split"))
                              if p))
        n = entry.get("n", data.get("n"))
        if n is not None:
            parts.append(f"n {fmt.fmt_number(n)}")
        binar = data_kind_text(data)
        if binar:
            parts.append(binar)
        if data.get("training_images"):
            parts.append("TRAINING IMAGES")
    else:
        plain = " ".join(str(p) for p in (data, entry.get("split")) if p)
        parts.append(plain or "data not recorded")
        if entry.get("n") is not None:
            parts.append(f"n {fmt.fmt_number(entry['n'])}")
        protocol = entry.get("protocol")  # older entries kept the binarisation there
        parts.append((data_kind_text(protocol) or "") if isinstance(protocol, dict) else "")
    parts += _kind_parts(entry)
    if entry.get("seed") is not None:
        parts.append(f"seed {entry['seed']}")
    if entry.get("steps") is not None:
        parts.append(f"checkpoint step {fmt.fmt_number(entry['steps'])}")
    return " · ".join(p for p in parts if p)


_DATA_KINDS = {"grey8": "8-bit grey", "rgb8": "8-bit RGB", "continuous": "dequantised 8-bit",
               "binary": "binary"}


def data_kind_text(data: dict[str, Any]) -> str | None:
    """How the pixels were given to the model: ``static binarisation (seed 0)``,
    ``dynamic binarisation``, ``8-bit grey``, ... (None: not recorded)."""
    for key in ("binarize", "binarisation", "binarization"):
        value = data.get(key)
        if isinstance(value, dict):
            scheme, seed = value.get("scheme"), value.get("seed")
            if scheme in (None, "none"):
                continue
            return f"{scheme} binarisation" + (f" (seed {seed})" if seed is not None else "")
        if value not in (None, "none", False):
            return f"{value} binarisation"
    kind = data.get("data_kind")
    if kind:
        return _DATA_KINDS.get(str(kind), str(kind))
    return "dequantised 8-bit" if data.get("dequantize") else None


def _kind_parts(entry: dict[str, Any]) -> list[str]:
    protocol = entry.get("protocol") if isinstance(entry.get("protocol"), dict) else {}
    kind = kind_of(entry)
    if kind == "likelihood":
        parts = [str(protocol["quantity"])] if protocol.get("quantity") else []
        return parts + (["dequantised"] if protocol.get("dequantized") else [])
    if kind == "samples":
        parts = []
        features = protocol.get("features")
        if isinstance(features, dict):  # the feature network's identity: name and key
            features = " ".join(str(features[k]) for k in ("name", "key") if features.get(k))
        if features:
            parts.append(f"features {features}")
        if protocol.get("n_fake") is not None:
            parts.append(f"{fmt.fmt_number(protocol['n_fake'])} samples")
        if protocol.get("pr_k") is not None:
            parts.append(f"PR k={protocol['pr_k']}")
        sampler = protocol.get("sampler")
        name = sampler.get("name") if isinstance(sampler, dict) else sampler
        if name:
            parts.append(f"sampler {name}")
        return parts
    return [f"{k} {fmt.fmt_value(protocol[k])}" for k in ("task", "method", "scale")
            if k in protocol] + [str(entry[k]) for k in ("task", "method") if k in entry]


def setting_rows(entry: dict[str, Any]) -> list[tuple[str, str]]:
    """Every non-result field of an entry as ``(dotted.key, text)``, floats rounded."""
    rows = []
    for key, value in entry.items():
        if fmt.is_result(key, value):  # results and their standard errors are in the row
            continue
        rows.extend(_flat(key, value))
    return rows


def _flat(prefix: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, dict) and value:
        return [row for k, v in value.items() for row in _flat(f"{prefix}.{k}", v)]
    if isinstance(value, float):
        return [(prefix, f"{value:.6g}")]
    return [(prefix, fmt.fmt_value(value))]


# ----- HTML --------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _header(key: str) -> str:
    label, unit, better = metric_label(key)
    arrow = (f' <span class="arrow" title="{ARROW_TITLES[better]}">{ARROWS[better]}</span>'
             if better else "")
    unit_html = f'<br><span class="unit">{_e(unit)}</span>' if unit else ""
    return f'<th data-metric="{_e(key)}">{_e(label)}{arrow}{unit_html}</th>'


def _protocol_row(entry: dict[str, Any], span: int) -> str:
    """The evaluation's protocol under its numbers: the one-line summary, then every raw
    setting behind a ``<details>`` element."""
    rows = setting_rows(entry)
    listing = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return (f'<tr class="proto"><td class="proto" colspan="{span}"><span class="pk">protocol:'
            f"</span> {_e(protocol_summary(entry))}<details><summary>all {len(rows)} "
            f'settings</summary><table class="raw">{listing}</table></details></td></tr>')


def evaluation_tables(evaluations: list[dict[str, Any]]) -> str | None:
    """The HTML tables of the evaluation section (None: no entry holds a number)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in evaluations:
        if result_keys(entry):
            groups.setdefault(kind_of(entry), []).append(entry)
    if not groups:
        return None
    order = list(KIND_TITLES) + [k for k in groups if k not in KIND_TITLES]
    html = []
    for kind in (k for k in order if k in groups):
        entries = groups[kind]
        seen: dict[str, None] = {}
        for entry in entries:
            seen.update(dict.fromkeys(result_keys(entry)))
        rank = {k: i for i, k in enumerate(METRICS)}
        keys = sorted(seen, key=lambda k: rank.get(k, len(rank)))
        with_kind = kind == "likelihood" and any(likelihood_kind(e) for e in entries)
        head = "".join(_header(k) for k in keys[:2] if k in ("nll_nats", "bits_per_dim"))
        lead = len([k for k in keys[:2] if k in ("nll_nats", "bits_per_dim")])
        head += "<th>kind</th>" if with_kind else ""
        head += "".join(_header(k) for k in keys[lead:])
        body = []
        for entry in entries:
            cells = [_num(entry, k) for k in keys[:lead]]
            if with_kind:
                cells.append(f'<td class="kind">{_e(likelihood_kind(entry) or "—")}</td>')
            cells += [_num(entry, k) for k in keys[lead:]]
            body.append("<tr>" + "".join(cells) + "</tr>" + _protocol_row(entry, len(cells)))
        title = KIND_TITLES.get(kind, kind)
        html.append(f'<h3>{_e(title)}</h3><div class="scroll"><table class="evals" '
                    f'data-kind="{_e(kind)}"><thead><tr>{head}</tr></thead><tbody>\n'
                    + "\n".join(body) + "</tbody></table></div>")
    legend = ('<p class="legend"><span class="arrow">↓</span> lower is better · '
              '<span class="arrow">↑</span> higher is better · ± one standard error</p>')
    return legend + "\n".join(html)


def _num(entry: dict[str, Any], key: str) -> str:
    if key not in entry or not fmt.is_result(key, entry[key]):
        return '<td class="num">—</td>'
    return f'<td class="num">{_e(value_text(entry, key))}</td>'


# ----- text (genvision info) ---------------------------------------------------------------
def headline_line(entry: dict[str, Any]) -> str:
    """The headline numbers of one evaluation as text, e.g.
    ``NLL 88.12 ± 0.4 nats/image ↓ (bound (IWAE-1000)), bits/dim 0.162 ↓``."""
    parts = []
    for key in result_keys(entry):
        if key not in HEADLINE:
            continue
        label, unit, better = metric_label(key)
        text = f"{label} {value_text(entry, key)}" + (f" {unit}" if unit not in ("", label)
                                                       else "")
        if key == "nll_nats" and likelihood_kind(entry):
            text += f" [{likelihood_kind(entry)}]"
        parts.append(text + (f" {ARROWS[better]}" if better else ""))
    if not parts:  # an entry of other numbers: the first few
        for key in result_keys(entry)[:3]:
            parts.append(f"{metric_label(key)[0]} {value_text(entry, key)}")
    return ", ".join(parts)
