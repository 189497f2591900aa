"""Translation benchmark: pix2pix and CycleGAN per domain pair, each with the same CPU budget,
scored on held-out images in both directions beside the identity baseline.

For each pair, trains CycleGAN (denied the pairs) and, on paired pairs, pix2pix (the paired
upper bound) into ``OUT/<pair>`` through ``genvision translate train``, then runs
``genvision translate compare`` on the test split (label preservation with the target
domain's classifier, PSNR/SSIM to the true counterpart, FID/KID on that classifier's
features, cycle error). Prints one JSON object: per pair, the rows (method x direction x
metric), the classifiers and the training records.

    python benchmarks/translation.py --minutes 10 --out runs/translation-bench
    python benchmarks/translation.py --steps 5 --pairs digits-mnist --out /tmp/tb  (smoke)
    python benchmarks/translation.py --minutes 10 --methods cyclegan --out runs/translation-bench
        (CycleGAN again; the pix2pix runs already in OUT are compared beside it)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

import torch

from genvision.cli import main as genvision
from genvision.data.domain_pairs import DOMAIN_PAIRS, load_domain_pair


def _run(argv: list[str]) -> None:
    """A genvision command, its output kept off the JSON on stdout."""
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = genvision(argv)
    if code != 0:
        raise SystemExit(f"genvision {' '.join(argv)} failed ({code}):\n{out.getvalue()}")


def bench_pair(pair: str, out: Path, budget: list[str], args: argparse.Namespace) -> dict:
    methods = ["cyclegan"] + (["pix2pix"] if load_domain_pair(pair, "val").paired else [])
    for method in (m for m in methods if m in args.methods.split(",")):
        _run(["translate", "train", "--method", method, "--pair", pair, "--out", str(out),
              "--no-progress", *budget])
    t0 = time.perf_counter()
    _run(["translate", "compare", str(out), "--n", str(args.n),
          "--classifier-steps", str(args.classifier_steps)])
    results = json.loads((out / "compare" / "compare.json").read_text())
    info = json.loads((out / "run.json").read_text())
    methods = [m for m in methods if m in info["stages"]]  # trained now or by an earlier call
    return {"rows": results["rows"], "classifiers": results["classifiers"],
            "n": results["n"], "protocol": results["protocol"], "data": info["data"],
            "training": {m: {k: info["stages"][m].get(k) for k in
                             ("steps", "time_s", "images_per_s", "num_parameters",
                              "model_config", "training_rows", "command")}
                         for m in methods},
            "figure": str(out / "compare" / "compare.png"),
            "evaluation_s": round(time.perf_counter() - t0, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for one run per pair")
    p.add_argument("--pairs", default=",".join(DOMAIN_PAIRS),
                   help="comma-separated pair names (default: all)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--minutes", type=float, help="CPU minutes per model")
    budget.add_argument("--steps", type=int, help="steps per model (smoke runs)")
    p.add_argument("--methods", default="cyclegan,pix2pix",
                   help="methods to train now; a method trained into OUT/<pair> by an earlier "
                        "call is compared too (retrain one method without the other)")
    p.add_argument("--n", type=int, default=500, help="held-out images per side")
    p.add_argument("--classifier-steps", type=int, default=3000)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    flags = ["--minutes", str(args.minutes)] if args.minutes else ["--steps", str(args.steps)]
    results = {pair: bench_pair(pair, Path(args.out) / pair, flags, args)
               for pair in args.pairs.split(",") if pair}
    print(json.dumps({"benchmark": "translation", "budget_per_model": flags,
                      "threads": args.threads, "pairs": results}, indent=2))


if __name__ == "__main__":
    main()
