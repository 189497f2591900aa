"""Why two evaluation protocols of ``genvision compare`` differ, in words, and the commands
that would measure the runs under one protocol.

:func:`genvision.report.compare.collect` groups each column group's entries by their
comparability key (:func:`genvision.runs.records.comparable`); when a group holds several
keys, every key other than the main one (the one most runs share) is explained here
against the main one: :func:`differences` lists the fields that differ,
:func:`why_words` says how, and :func:`fix_words` gives a fix that works -- an
``evaluate`` flag when evaluation chose the field, a ``train`` flag when training did
(the binarisation of a run's data is chosen when it trains: ``evaluate`` scores each model
on the data kind it models, so no evaluate flag changes it), and nothing when no command
can make the numbers comparable (an AIS estimate is never an exact likelihood).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import UserError
from ..runs.records import LIKELIHOOD, SAMPLES
from .compare_table import GROUP_LABELS, features_text
from .format import fmt_number, fmt_value

#: what to do instead of ``--strict`` when the fix is not wanted
SIDE_BY_SIDE = "or leave out --strict to see them side by side, each marked with its protocol"

#: fields looked at first when listing differences (the rest follow alphabetically)
FIELD_ORDER = ("data", "split", "n", "quantity", "kind", "protocol", "source", "shape",
               "binarize", "data_kind", "features", "name", "key", "n_real", "n_fake", "k",
               "pr_k")

_BINARY_WORDS = {"none": "not binarised (grey levels)", "static": "binarised",
                 "dynamic": "binarised"}
#: evaluate flags that set a protocol field (the main protocol's value is passed)
_EVAL_FLAGS = {"data.source": "--data", "data.split": "--split", "split": "--split",
               "data.n": "--n", "n": "--n", "protocol.n_real": "--n",
               "protocol.n_fake": "--samples", "protocol.pr_k": "--pr-k",
               "protocol.kid_subsets": "--kid-subsets",
               "protocol.kid_subset_size": "--kid-subset-size"}
#: training-time data fields: evaluate scores each model on the data kind it models
_TRAIN_FIELDS = ("data.binarize", "data.data_kind", "data.dequantize")


def _ordered(keys: set[str]) -> list[str]:
    order = {k: i for i, k in enumerate(FIELD_ORDER)}
    return sorted(keys, key=lambda k: (order.get(k, len(order)), k))


def differences(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Every (dotted field, value in a, value in b) where two protocols differ, in
    :data:`FIELD_ORDER`; a field that is a dict on one side only is one difference."""
    if isinstance(a, dict) and isinstance(b, dict):
        found: list[tuple[str, Any, Any]] = []
        for name in _ordered(set(a) | set(b)):
            found += differences(a.get(name), b.get(name), f"{prefix}{name}.")
        return found
    return [] if a == b else [(prefix.rstrip(".") or "value", a, b)]


def short(value: Any, limit: int = 60) -> str:
    text = fmt_value(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field_words(field: str, va: Any, vb: Any) -> str:
    """One difference in words: ``binarised vs not binarised (grey levels)``."""
    if field in ("data.binarize", "data.binarize.scheme"):
        scheme_a = va.get("scheme") if isinstance(va, dict) else va
        scheme_b = vb.get("scheme") if isinstance(vb, dict) else vb
        if scheme_a != scheme_b:
            return (f"evaluation images {_BINARY_WORDS.get(str(scheme_a), short(scheme_a))} vs "
                    f"{_BINARY_WORDS.get(str(scheme_b), short(scheme_b))}")
        return f"binarisation seed {short(va, 40)} vs {short(vb, 40)}"
    if field == "data.binarize.seed":
        return f"binarisation seed {short(va, 40)} vs {short(vb, 40)}"
    if field == "data.data_kind":
        return f"data kind {short(va, 40)} vs {short(vb, 40)}"
    if field == "data.dequantize":
        return f"{'dequantised' if va else 'not dequantised'} vs " \
               f"{'dequantised' if vb else 'not dequantised'}"
    if field == "data.training_images":
        return "held-out images vs training images" if not va else \
            "training images vs held-out images"
    if field == "quantity":
        return f"{va} vs {vb}"
    if field == "kind":
        return "a stochastic estimate (e.g. AIS) vs an exact NLL or a bound"
    if field.startswith("protocol.features"):
        return "a different feature network"
    if field in ("protocol.sampler", "sampler"):
        return f"sampler {short(va, 40)} vs {short(vb, 40)}"
    name = field.removeprefix("protocol.").removeprefix("data.")
    return f"{name} {short(va, 40)} vs {short(vb, 40)}"


def why_words(diffs: list[tuple[str, Any, Any]], limit: int = 3) -> str:
    """The differences in words, feature-network ones once, at most ``limit`` of them."""
    words: list[str] = []
    fields = {field for field, _, _ in diffs}
    for diff in diffs:
        if diff[0] == "data.binarize.seed" and "data.binarize.scheme" in fields:
            continue  # no seed without binarisation: the scheme says it all
        text = _field_words(*diff)
        if text not in words:
            words.append(text)
    more = len(words) - limit
    return "; ".join(words[:limit]) + (f"; and {more} more" if more > 0 else "")


def _binarize_flag(value: Any) -> str:
    scheme = value.get("scheme") if isinstance(value, dict) else value
    return "none" if scheme in (None, "none") else "dynamic"


def _train_flag(field: str, value: Any) -> str:
    """The ``genvision train`` flag that gives a run's evaluation data ``value``."""
    if field.startswith("data.dequantize"):
        return "--dequantize" if value else "--binarize none"
    if field == "data.data_kind":
        return "--binarize dynamic" if value == "binary" else "--binarize none"
    return f"--binarize {_binarize_flag(value)}"


def fix_words(diffs: list[tuple[str, Any, Any]], main_runs: list[str],
              other_runs: list[str]) -> str:
    """Commands that would put ``other_runs``' numbers under the main protocol (that of
    ``main_runs``): values are the main protocol's (``va``). "" when no command can."""
    others, mains = " ".join(other_runs), ", ".join(main_runs)
    fixes: list[str] = []
    flags: dict[str, str] = {}
    trained = False
    for field, va, vb in diffs:
        if field.startswith(_TRAIN_FIELDS):
            if trained:  # one retraining fix covers binarisation, data kind, dequantisation
                continue
            trained = True
            text = (f"the data kind is chosen when a run trains (evaluate scores each model on "
                    f"the data it models, so no evaluate flag changes it): retrain "
                    f"{', '.join(other_runs)} with `{_train_flag(field, va)}` (like {mains}), "
                    f"or {mains} with `{_train_flag(field, vb)}` (like "
                    f"{', '.join(other_runs)})")
            fixes.append(text)
        elif field.startswith("protocol.features"):
            flags["--features"] = "DIR"
        elif field in ("protocol.sampler", "sampler"):
            sampler = va if isinstance(va, dict) else {}
            flags["--sampler"] = str(sampler.get("name") or "NAME")
            opts = [f"{k}={v}" for k, v in sampler.items() if k != "name"]
            if opts:
                flags["--sampler-opt"] = " --sampler-opt ".join(opts)
        elif field == "quantity":
            fixes.append("`genvision evaluate RUN --metrics nll` for each conditional run "
                         "records -log p(x) (summed over labels) beside -log p(x|y)")
        elif field == "data.training_images":
            flags["--split"] = "test"
        elif field in _EVAL_FLAGS and va is not None and not isinstance(va, dict):
            flags[_EVAL_FLAGS[field]] = str(va)
    if trained:  # runs retrained alike get the same automatic feature network
        flags.pop("--features", None)
    if flags:
        opts = " ".join(f"{k} {v}" for k, v in flags.items())
        prefix = ("`genvision features train --data DATA --out DIR`, then "
                  if "--features" in flags else "")
        who = "every run" if "--features" in flags else others
        fixes.insert(0, f"{prefix}`genvision evaluate RUN {opts}` for {who}")
    return "; ".join(fixes)


# ----- --strict refusals ---------------------------------------------------------------
def _where(entry: dict[str, Any], group: str) -> str:
    """Short words for where an entry's numbers come from: ``mnist5k test n=500``."""
    data = entry.get("data")
    if isinstance(data, dict):
        source, split, n = data.get("source"), data.get("split", entry.get("split")), data.get("n")
    else:
        source, split, n = data, entry.get("split"), entry.get("n")
    text = f"{source or '?'} {split or '?'} n={fmt_number(n) if n is not None else '?'}"
    features = features_text(entry)
    if group == SAMPLES and features:
        text += f" in {features}"
    return text


def _weights_hash(entry: dict[str, Any]) -> str | None:
    """The SHA-256 of the feature network a samples entry was computed with (None: not
    recorded, e.g. Inception, whose key holds its file's hash, or an old entry)."""
    protocol = entry.get("protocol")
    feats = protocol.get("features") if isinstance(protocol, dict) else None
    digest = feats.get("weights_sha256") if isinstance(feats, dict) else None
    return digest if isinstance(digest, str) else None


def _network_conflict(args: list[str], latest: dict[int, dict[str, Any]]
                      ) -> UserError | None:
    """Sample metrics made with different feature networks (by their weights' hash)."""
    first, *others = sorted(latest)
    want = _weights_hash(latest[first])
    for i in others:
        have = _weights_hash(latest[i])
        if have != want and (have or want):
            return UserError(
                f"sample metrics of {args[first]} and {args[i]} were computed with "
                f"different feature networks (weights SHA-256 {(want or 'not recorded')[:16]} "
                f"vs {(have or 'not recorded')[:16]})",
                "evaluate both with one network: `genvision features train --out DIR`, then "
                f"`genvision evaluate RUN --features DIR` for each run, {SIDE_BY_SIDE}")
    return None


def conflict(args: list[str], group: str, latest: dict[int, dict[str, Any]],
             key_dict: Callable[[dict[str, Any]], dict[str, Any]]) -> UserError:
    """The ``--strict`` refusal for ``group``: the first run pair whose latest entries
    differ, how, and the command that measures them alike."""
    if group == SAMPLES and (refusal := _network_conflict(args, latest)):
        return refusal
    first, *others = sorted(latest)
    a = latest[first]
    for i in others:
        diffs = differences(key_dict(a), key_dict(latest[i]))
        if diffs:
            break
    else:  # unreachable: equal latest keys would have been a common key
        raise AssertionError("no differing protocol found")
    field, va, vb = diffs[0]
    label = GROUP_LABELS[group]
    verb = "is" if group == LIKELIHOOD else "are"
    fix = fix_words(diffs, [args[first]], [args[i]])
    return UserError(
        f"{label} of {args[first]} {verb} on {_where(a, group)} but {args[i]} on "
        f"{_where(latest[i], group)} ({field} differs: {short(va)} vs {short(vb)}); no "
        f"{label} protocol is shared by all runs",
        f"{fix}, {SIDE_BY_SIDE}" if fix else f"no command makes them one protocol; "
                                               f"{SIDE_BY_SIDE}")
