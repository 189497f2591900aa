"""The probe's results as JSON and as a Markdown table that states its protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...storage import atomic_write_json, atomic_write_text

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


def _acc(entry: dict[str, Any]) -> str:
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}"


def short_source(source: str) -> str:
    """``idx:/long/path/mnist`` -> ``idx:mnist`` (figure titles); names stay as they are."""
    prefix, sep, path = source.partition(":")
    return f"{prefix}:{Path(path).name}" if sep else source


def _data_line(proto: dict[str, Any]) -> str:
    scheme = (proto.get("binarize") or {}).get("scheme", "none")
    seed = (proto.get("binarize") or {}).get("seed")
    if scheme == "none":
        pixels = f"{proto.get('data_kind', 'grey8')} pixels, not binarised"
    else:
        pixels = f"binarised {scheme}" + (f" with seed {seed}" if seed is not None else "")
    return f"{proto['source']} {proto['split']} (n={proto['n']}, {pixels})"


def markdown_table(results: dict[str, Any]) -> str:
    """A Markdown table (one row per representation) followed by its protocol lines."""
    proto = results["protocol"]
    counts = proto["labels"]
    head = ["representation", "dim", *[f"probe acc, {n} labels" for n in counts],
            "k-means NMI", "k-means ARI"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rep in results["representations"].values():
        cells = [rep["name"], str(rep["dim"]),
                 *[_acc(rep["probe"][str(n)]) for n in counts],
                 f"{rep['kmeans']['nmi']:.3f}", f"{rep['kmeans']['ari']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    seeds = proto["label_seeds"]
    lines += [
        "",
        f"Run: `{results['run']}` ({proto['run_model']}).",
        f"Probe labels from: {_data_line(proto['label_pool'])}; "
        f"{proto['label_subset']}; seeds {seeds[0]}..{seeds[-1]} (mean ± std over "
        f"{len(seeds)}).",
        f"Evaluated on: {_data_line(proto['evaluation'])}: {proto['evaluation_reason']}.",
        f"Probe: {proto['probe']}.",
        f"Clustering: {proto['clustering']}.",
    ]
    return "\n".join(lines) + "\n"


def write_results(results: dict[str, Any], out: str | Path) -> None:
    """``results.json`` and ``results.md`` in ``out`` (atomically)."""
    out = Path(out)
    atomic_write_json(out / RESULTS_JSON, results)
    atomic_write_text(out / RESULTS_MD, markdown_table(results))
