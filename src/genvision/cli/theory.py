"""``genvision theory kl-mle``: check numerically that minimising KL is maximum likelihood.

    genvision theory kl-mle [--family both] [--target bars] [--steps 500] [--samples 0]

Prints, per family, a table over training steps of the exact KL(p_D || p_theta), the exact
NLL E_{p_D}[-log p_theta], H(p_D) and NLL - KL, and writes ``kl_mle.png`` and
``kl_mle.json`` to ``--out``. Exit status 1 if a check fails: normalisation, KL >= 0,
KL = 0 only at p_D (Pinsker), the fitted KL falling, and NLL - KL = H (an identity that
holds for any log q, so it is reported but proves nothing alone).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..storage import atomic_write_json
from ..theory.kl_mle import (
    FAMILIES,
    TARGETS,
    check_fit,
    fit,
    max_identity_error,
    target_distribution,
)
from ..theory.plot import plot_kl_mle
from .parser import Parser

USAGE = __doc__.strip().split("\n\n")[1]


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="genvision theory kl-mle",
                description="Fit a model to a known distribution over 2x2 binary images by "
                            "maximum likelihood and show, by exact enumeration, that KL(p_D || "
                            "p_theta) falls in step with the NLL, the gap being H(p_D).")
    p.add_argument("--family", choices=[*FAMILIES, "both"], default="both",
                   help="model family: mixture of Bernoullis, FVSBN (autoregressive), both")
    p.add_argument("--components", type=int, default=2, help="mixture components (default 2)")
    p.add_argument("--target", choices=TARGETS, default="bars",
                   help="p_D: bars (noisy bars, default) or random (seeded Dirichlet draw)")
    p.add_argument("--steps", type=int, default=500, help="Adam steps (default 500)")
    p.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default 0.05)")
    p.add_argument("--samples", type=int, default=0,
                   help="0 = ascend the exact expected log-likelihood; N = ascend the mean "
                        "log-likelihood of N images drawn from p_D (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of init, target and samples")
    p.add_argument("--out", default="runs/theory-kl-mle",
                   help="folder for kl_mle.png and kl_mle.json (default runs/theory-kl-mle)")
    return p


def _check(args: argparse.Namespace) -> None:
    if args.steps < 0 or args.samples < 0:
        raise UserError("--steps and --samples must be >= 0", "pass non-negative counts")
    if args.lr <= 0 or args.components < 1:
        raise UserError("--lr must be > 0 and --components >= 1", "change the value")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file", "pass a folder")


def format_table(family: str, rows: list[dict[str, float]]) -> str:
    """A fixed-width text table of one fit's rows (nats)."""
    has_train = "train_nll" in rows[0]
    head = f"{'step':>6} {'KL(p_D||p)':>12} {'NLL=E[-log p]':>14} {'H(p_D)':>9} " \
           f"{'NLL-KL':>9} {'sum p':>9}" + (f" {'train NLL':>10}" if has_train else "")
    lines = [f"{family}:", head]
    for r in rows:
        line = (f"{r['step']:>6} {r['kl']:>12.6f} {r['nll']:>14.6f} {r['entropy']:>9.6f} "
                f"{r['nll_minus_kl']:>9.6f} {r['total_prob']:>9.6f}")
        lines.append(line + (f" {r['train_nll']:>10.6f}" if has_train else ""))
    return "\n".join(lines)


def cmd_theory(argv: list[str]) -> int:
    """Entry point of ``genvision theory``; returns the exit status."""
    if not argv or argv[0] in ("-h", "--help"):
        print(f"genvision theory: exact numerical checks of the theory\n\n{USAGE}\n\n"
              "`genvision theory kl-mle --help` lists every option.")
        return 0
    if argv[0] != "kl-mle":
        raise UserError(f"unknown theory check {argv[0]!r}", "use: genvision theory kl-mle")
    args = _parser().parse_args(argv[1:])
    _check(args)
    p_data = target_distribution(args.target, args.seed)
    families = FAMILIES if args.family == "both" else (args.family,)
    results = [fit(f, p_data, steps=args.steps, lr=args.lr, samples=args.samples,
                   components=args.components, seed=args.seed) for f in families]
    for res in results:
        print(format_table(res.family, res.rows) + "\n")
    err = max(max_identity_error(r.rows) for r in results)
    checks = [check_fit(r.rows, p_data) for r in results]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    plot_kl_mle(results, p_data, out / "kl_mle.png")
    atomic_write_json(out / "kl_mle.json", {
        "target": args.target, "p_data": p_data.tolist(), "steps": args.steps, "lr": args.lr,
        "samples": args.samples, "seed": args.seed, "units": "nats",
        "max_identity_error": err,
        "checks": {r.family: {k: {"passed": v[0], "detail": v[1]} for k, v in c.items()}
                   for r, c in zip(results, checks, strict=True)},
        "fits": {r.family: r.rows for r in results}})
    for res, c in zip(results, checks, strict=True):
        for name, (passed, detail) in c.items():
            print(f"{res.family} {name}: {'holds' if passed else 'FAILS'} ({detail})")
    ok = all(passed for c in checks for passed, _ in c.values())
    print(f"max |(NLL - KL) - H(p_D)| over every row: {err:.1e} "
          f"({'all checks hold' if ok else 'a check FAILS'}: a normalised model whose KL "
          f"falls as its likelihood rises)\nwrote {out / 'kl_mle.png'} and "
          f"{out / 'kl_mle.json'}")
    return 0 if ok else 1
