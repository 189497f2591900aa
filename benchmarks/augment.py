"""Data augmentation with generated images: N = 100 and 500 real digits, 3 seeds.

Runs ``genvision augment --n N`` for each N: a small CNN trained on N class-balanced real
mnist5k digits, with classic augmentation (shifts, rotations), and with M generated digits
from a class-conditional generator trained on the same N; tested on the official MNIST test
split (or mnist5k's test split when ``../shared/data/mnist`` is absent; the output says
which), statically binarised with seed 0. Prints one JSON object with each table, its
command and CPU time; ``--figures DIR`` copies the PNGs to
``DIR/augment_n<N>_<generator>_<fig>.png``.
Defaults fit ~8 minutes of 1-thread CPU.

    OMP_NUM_THREADS=1 python benchmarks/augment.py --figures docs/images
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli_runs import MNIST_TEST, machine, run_genvision, test_data_spec


def run_n(n: int, generator: str, args: argparse.Namespace) -> dict:
    out = Path(args.out_root) / f"augment-n{n}-{generator}"
    test = test_data_spec(args.test_data)
    cmd = ["genvision", "augment", "--n", str(n), "--seeds", str(args.seeds),
           "--generator", generator, "--cnn-steps", str(args.cnn_steps),
           "--gen-steps", str(args.gen_steps), "--test-data", test, "--out", str(out),
           "--force", "--no-progress"]
    if args.generated:
        cmd += ["--generated", str(args.generated)]
    if args.n_test:
        cmd += ["--n-test", str(args.n_test)]
    res, timing = run_genvision(cmd, out, args.figures, f"augment_n{n}_{generator}_{{kind}}.png")
    return {**timing, "protocol": res["protocol"], "summary": res["summary"],
            "markdown": res["markdown"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", default="100,500", help="real training sizes, comma-separated")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--generators", default="vae",
                   help="comma-separated: vae and/or gated-pixelcnn (one table per N each)")
    p.add_argument("--generated", type=int, default=0, help="M (0 = N, the CLI default)")
    p.add_argument("--cnn-steps", type=int, default=500)
    p.add_argument("--gen-steps", type=int, default=300)
    p.add_argument("--n-test", type=int, default=0, help="test images (0 = all 10,000)")
    p.add_argument("--test-data", default=str(MNIST_TEST))
    p.add_argument("--out-root", default="runs/bench-augment")
    p.add_argument("--figures", help="copy the PNG figures here (e.g. docs/images)")
    args = p.parse_args()
    results = {f"n{n}-{g}": run_n(int(n), g, args)
               for g in args.generators.split(",") for n in args.n.split(",")}
    print(json.dumps({
        "benchmark": "augment", "runs": results,
        "total_cpu_s": round(sum(r["cpu_s"] for r in results.values()), 1),
        "machine": machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
