"""genvision compare: the table of several runs, protocol checks and the HTML board
(run folders written by hand)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from genvision.cli.runs import cmd_compare
from genvision.errors import UserError
from genvision.report.board import render_board_html, write_board
from genvision.report.compare import collect, render_markdown

DATA = {"source": "mnist5k", "split": "test", "n": 500, "shape": [1, 28, 28],
        "num_classes": 10, "split_seed": 0, "binarize": {"scheme": "static", "seed": 0},
        "dequantize": None, "resize": None, "grayscale": False, "data_kind": "binary"}


def nll_entry(nll: float = 84.7431, *, estimator: str = "IWAE-100", kind: str = "bound",
              n: int = 500, steps: int = 3077, **extra: Any) -> dict[str, Any]:
    """A likelihood entry as `genvision evaluate` writes it."""
    return {"kind": "likelihood", "nll_nats": nll, "nll_nats_stderr": 0.9012,
            "bits_per_dim": nll / (784 * 0.6931), "bits_per_dim_stderr": 0.0017, "n": n,
            "protocol": {"kind": kind, "estimator": estimator, "k": 100},
            "data": DATA | {"n": n}, "split": "test", "seed": 0, "time_s": 12.3,
            "sampling_images_per_s": 86.0, "device": "cpu", "steps": steps} | extra


def samples_entry(fid: float = 3.2, *, key: str = "ab12cd34", seed: int = 0, n: int = 500,
                  steps: int = 3077, **extra: Any) -> dict[str, Any]:
    """A samples entry as `genvision evaluate` writes it."""
    return {"kind": "samples", "fid": fid, "kid_mean": 0.002, "kid_std": 0.0005,
            "precision": 0.8, "recall": 0.7, "density": 0.9, "coverage": 0.85,
            "protocol": {"features": {"name": "genvision-classifier", "key": key, "dim": 128},
                         "n_fake": n, "n_real": n, "k": 3, "kid_subsets": 100,
                         "kid_subset_size": n, "labels": None, "sample_seed": seed},
            "data": DATA | {"n": n}, "split": "test", "seed": seed, "time_s": 20.1,
            "sampling_images_per_s": 950.0, "device": "cpu", "steps": steps} | extra


def make_run(root: Path, name: str, *, model: str = "vae", evaluations: list | None = None,
             likelihood_kind: str = "bound", source: str = "mnist5k",
             shape: tuple[int, ...] = (1, 28, 28), samples: tuple[int, int, int] | None =
             (255, 0, 255), time_s: float = 125.0) -> Path:
    """A run folder: run.json, metrics.jsonl, metrics.json and a small samples.png."""
    run = root / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "model": model, "num_parameters": 1670881, "likelihood_kind": likelihood_kind,
        "conditional": False, "created": "2024-01-01T00:00:00",
        "data": {"source": source, "split": "train", "n": 4000, "shape": list(shape),
                 "num_classes": 10, "binarize": {"scheme": "dynamic", "seed": None}},
    }))
    records = [{"step": 1500 * i, "time_s": time_s * i / 2, "split": "train",
                "images_per_s": 1000.0, "loss": 100.0 / i} for i in (1, 2)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if evaluations is not None:
        (run / "metrics.json").write_text(json.dumps({"evaluations": evaluations}))
    if samples:
        Image.new("RGB", (20, 12), samples).save(run / "samples.png")
    return run


def _md(runs: list[Path], **kw: Any) -> str:
    return render_markdown(collect(runs, **kw))


def _column(markdown: str, label: str) -> list[str]:
    """The cells of one column of a Markdown table (header row first)."""
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            for line in markdown.splitlines() if line.startswith("|")]
    idx = rows[0].index(label)
    return [r[idx] for r in rows[2:]]


# ----- the table -----------------------------------------------------------------------------
def test_table_shows_numbers_estimators_and_protocol(tmp_path):
    a = make_run(tmp_path, "vae-a", evaluations=[nll_entry(84.7431)])
    b = make_run(tmp_path, "pcnn-b", model="pixelcnn", likelihood_kind="exact",
                 evaluations=[nll_entry(80.1, estimator="exact", kind="exact")])
    md = _md([a, b])
    assert _column(md, "run") == ["vae-a", "pcnn-b"]
    assert _column(md, "NLL (nats)") == ["84.74 ± 0.90 (IWAE-100)", "80.10 ± 0.90 (exact)"]
    assert _column(md, "model") == ["vae", "pixelcnn"]
    assert _column(md, "family") == ["explicit latent variable", "fully visible (autoregressive)"]
    assert _column(md, "params") == ["1,670,881"] * 2
    assert _column(md, "training time") == ["2 min 05 s"] * 2
    assert _column(md, "steps") == ["3,000"] * 2
    assert _column(md, "bits/dim")[0] == "0.1560 ± 0.0017"
    assert _column(md, "sampling images/s") == ["86", "86"]
    assert "FID" not in md.splitlines()[0]  # no run has sample metrics: no such columns
    notes = md.split("\n\n")[1]
    assert "mnist5k test split, n=500, static binarisation seed 0" in notes
    assert "IWAE-100 (vae-a)" in notes and "exact (pcnn-b)" in notes
    assert "bound" in notes  # a bound next to an exact value is labelled


def test_gan_without_likelihood_shows_dash(tmp_path):
    vae = make_run(tmp_path, "vae", evaluations=[nll_entry(), samples_entry(3.2)])
    gan = make_run(tmp_path, "gan", model="dcgan", likelihood_kind="none",
                   evaluations=[samples_entry(2.5, cas_accuracy=0.951, memorisation_score=0.01,
                                              near_copy_share=0.0, median_distance_ratio=1.0)])
    md = _md([vae, gan])
    assert _column(md, "NLL (nats)") == ["84.74 ± 0.90 (IWAE-100)", "—"]
    assert _column(md, "bits/dim")[1] == "—"
    assert _column(md, "FID") == ["3.20", "2.50"]
    assert _column(md, "KID") == ["0.00200 ± 0.00050"] * 2
    assert _column(md, "precision") == ["0.800"] * 2
    assert _column(md, "CAS") == ["—", "0.951"]
    assert _column(md, "memorisation score") == ["—", "0.010"]
    assert _column(md, "family")[1] == "implicit (GAN)"
    assert _column(md, "sampling images/s") == ["950", "950"]  # the samples entry's speed
    assert "genvision-classifier features ab12cd34 (128-d)" in md
    assert "500 generated vs 500 real images" in md and "k=3" in md


def test_unevaluated_run_shows_dashes_and_drops_empty_columns(tmp_path):
    a = make_run(tmp_path, "a")  # no metrics.json
    b = make_run(tmp_path, "b", evaluations=[nll_entry()])
    md = _md([a, b])
    assert _column(md, "NLL (nats)") == ["—", "84.74 ± 0.90 (IWAE-100)"]
    board = collect([a])
    assert [c.key for c in board.columns] == ["run", "model", "family", "params",
                                              "train_time", "steps"]


def test_old_entries_without_kind_are_likelihoods(tmp_path):
    old = nll_entry(90.0)
    del old["kind"]
    old["nll_stderr"] = old.pop("nll_nats_stderr")
    a = make_run(tmp_path, "a", evaluations=[old])
    assert _column(_md([a]), "NLL (nats)") == ["90.00 ± 0.90 (IWAE-100)"]


def test_markdown_escapes_pipes(tmp_path):
    a = make_run(tmp_path, "a|b", evaluations=[nll_entry()])
    md = _md([a])
    assert "a\\|b" in md
    assert _column(md, "run") == ["a\\|b"]


# ----- protocol checks -----------------------------------------------------------------------
def test_strict_refuses_a_different_nll_n_naming_runs_field_and_fix(tmp_path):
    a = make_run(tmp_path, "a", evaluations=[nll_entry(n=500)])
    b = make_run(tmp_path, "b", evaluations=[nll_entry(n=10000)])
    with pytest.raises(UserError) as err:
        collect([a, b], strict=True)
    msg = str(err.value)
    assert str(a) in msg and str(b) in msg
    assert "data.n differs: 500 vs 10000" in msg
    assert "n=500" in msg and "n=10,000" in msg
    assert f"`genvision evaluate RUN --n 500` for {b}" in msg  # a flag evaluate has
    assert "leave out --strict" in msg


def test_different_protocols_are_marked_side_by_side(tmp_path):
    a = make_run(tmp_path, "a", evaluations=[nll_entry(n=500)])
    b = make_run(tmp_path, "b", evaluations=[nll_entry(n=10000)])
    c = make_run(tmp_path, "c", evaluations=[nll_entry(n=500)])
    board = collect([a, b, c])
    md = render_markdown(board)
    nll = _column(md, "NLL (nats)")
    assert nll[0].endswith("[a]") and nll[1].endswith("[b]") and nll[2].endswith("[a]")
    assert _column(md, "bits/dim")[1].endswith("[b]")
    assert len(board.footnotes) == 2
    assert board.footnotes[0].startswith("[a] NLL: mnist5k test split, n=500")
    assert "(runs: a, c)" in board.footnotes[0]
    assert board.footnotes[1].startswith("[b] NLL: mnist5k test split, n=10,000")
    assert "Not comparable with [a]: n 500 vs 10000" in board.footnotes[1]
    assert f"To compare: `genvision evaluate RUN --n 500` for {b}" in board.footnotes[1]
    assert "Not comparable" not in board.footnotes[0]  # [a] is the main protocol
    assert md.rstrip().endswith(board.footnotes[1])
    assert "not comparable" in md and "[a] is the protocol most runs share" in md
    html = render_board_html(board)
    assert "<b>NLL</b> of a, c: mnist5k test split, n=500" in html
    assert "<b>Not comparable with [a]</b>: n 500 vs 10000" in html
    assert '<sup class="mk" title="not comparable with the main protocol: n 500 vs 10000">b' \
        in html


def test_mixed_uses_each_runs_latest_entry(tmp_path):
    a = make_run(tmp_path, "a", evaluations=[nll_entry(80.0, n=500, steps=3000),
                                             nll_entry(70.0, n=500, steps=6000)])
    b = make_run(tmp_path, "b", evaluations=[nll_entry(n=10000)])
    assert _column(_md([a, b], mixed=True), "NLL (nats)")[0].startswith("70.00")


def test_a_shared_protocol_is_chosen_among_several(tmp_path):
    # a was evaluated on 500 and (later) on 10000 images, b only on 500: 500 is shared
    a = make_run(tmp_path, "a", evaluations=[nll_entry(81.0, n=500),
                                             nll_entry(82.0, n=10000, steps=9000)])
    b = make_run(tmp_path, "b", evaluations=[nll_entry(83.0, n=500)])
    md = _md([a, b])
    assert _column(md, "NLL (nats)") == ["81.00 ± 0.90 (IWAE-100)", "83.00 ± 0.90 (IWAE-100)"]
    assert "[a]" not in md
    # among entries of the shared protocol, the latest checkpoint wins
    c = make_run(tmp_path, "c", evaluations=[nll_entry(85.0, steps=6000),
                                             nll_entry(84.0, steps=3000)])
    assert _column(_md([b, c]), "NLL (nats)")[1].startswith("85.00")


def test_estimators_may_differ_within_a_protocol(tmp_path):
    a = make_run(tmp_path, "a", evaluations=[nll_entry(estimator="ELBO")])
    b = make_run(tmp_path, "b", evaluations=[nll_entry(estimator="IWAE-100")])
    md = _md([a, b])
    assert _column(md, "NLL (nats)") == ["84.74 ± 0.90 (ELBO)", "84.74 ± 0.90 (IWAE-100)"]


def test_sample_seed_is_not_protocol(tmp_path):
    a = make_run(tmp_path, "a", evaluations=[samples_entry(3.0, seed=0)])
    b = make_run(tmp_path, "b", evaluations=[samples_entry(4.0, seed=7)])
    md = _md([a, b])
    assert _column(md, "FID") == ["3.00", "4.00"]
    assert "[a]" not in md


def test_memorisation_reference_does_not_block_comparison(tmp_path):
    # evaluate --metrics fid,mem records the run's own training set; --metrics fid does not
    a = make_run(tmp_path, "a", evaluations=[samples_entry(3.0)])
    mem = samples_entry(4.0, memorisation_score=0.01, near_copy_share=0.0)
    mem["protocol"]["memorisation_reference"] = {"split": "train", "n": 4000}
    b = make_run(tmp_path, "b", evaluations=[mem])
    md = _md([a, b])
    assert _column(md, "FID") == ["3.00", "4.00"]
    assert _column(md, "memorisation score") == ["—", "0.010"]


def test_different_feature_key_is_refused(tmp_path):
    a = make_run(tmp_path, "a", evaluations=[samples_entry(key="ab12cd34")])
    b = make_run(tmp_path, "b", evaluations=[samples_entry(key="ffff0000")])
    with pytest.raises(UserError, match=r"protocol\.features\.key differs: ab12cd34 vs ffff0000"):
        collect([a, b], strict=True)
    md = _md([a, b])
    assert _column(md, "FID") == ["3.20 [a]", "3.20 [b]"]
    assert "ffff0000" in md.split("\n\n")[-1]


def test_likelihood_conflict_does_not_hide_behind_samples(tmp_path):
    # sample metrics agree, NLL does not: still refused, and --mixed marks only NLL
    a = make_run(tmp_path, "a", evaluations=[nll_entry(n=500), samples_entry()])
    b = make_run(tmp_path, "b", evaluations=[nll_entry(n=1000), samples_entry()])
    with pytest.raises(UserError, match="NLL of"):
        collect([a, b], strict=True)
    md = _md([a, b])
    assert _column(md, "FID") == ["3.20", "3.20"]
    assert _column(md, "NLL (nats)")[1].endswith("[b]")


def test_speed_on_different_devices_is_labelled(tmp_path):
    a = make_run(tmp_path, "a", evaluations=[nll_entry()])
    b = make_run(tmp_path, "b", evaluations=[nll_entry(device="cuda",
                                                       sampling_images_per_s=9000.0)])
    md = _md([a, b])
    assert _column(md, "sampling images/s") == ["86 (cpu)", "9,000 (cuda)"]
    assert "different devices" in md


# ----- run checks ----------------------------------------------------------------------------
def test_different_dataset_or_shape_is_refused(tmp_path):
    a = make_run(tmp_path, "a")
    faces = make_run(tmp_path, "faces", source="faces", shape=(1, 25, 25))
    with pytest.raises(UserError) as err:
        collect([a, faces])
    assert f"{a} was trained on mnist5k 1x28x28 but {faces} on faces 1x25x25" in str(err.value)
    assert "same dataset and image size" in str(err.value)
    big = make_run(tmp_path, "big", shape=(1, 32, 32))
    with pytest.raises(UserError, match="1x32x32"):
        collect([a, big])


def test_missing_or_broken_runs_are_refused(tmp_path):
    a = make_run(tmp_path, "a")
    with pytest.raises(UserError, match="run directory .*nope does not exist"):
        collect([a, tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no run.json"):
        collect([tmp_path / "empty"])
    bad = make_run(tmp_path, "bad")
    (bad / "run.json").write_text("{not json")
    with pytest.raises(UserError, match="bad/run.json is not valid JSON"):
        collect([a, bad])
    broken = make_run(tmp_path, "broken")
    (broken / "metrics.json").write_text("[1, 2")
    with pytest.raises(UserError, match="metrics.json is not valid JSON"):
        collect([broken])
    with pytest.raises(UserError, match="at least one run"):
        collect([])


def test_duplicate_runs_are_refused(tmp_path):
    a = make_run(tmp_path, "a")
    with pytest.raises(UserError, match="given twice"):
        collect([a, tmp_path / "." / "a"])


def test_same_directory_names_are_told_apart(tmp_path):
    a = make_run(tmp_path / "x", "vae")
    b = make_run(tmp_path / "y", "vae")
    assert _column(_md([a, b]), "run") == [str(a), str(b)]


# ----- HTML board ----------------------------------------------------------------------------
def test_board_html_embeds_grids_and_escapes(tmp_path):
    a = make_run(tmp_path, "<b>run", model="<script>alert(1)</script>",
                 evaluations=[nll_entry()])
    b = make_run(tmp_path, "no-grid", samples=None, evaluations=[nll_entry(83.0)])
    html = render_board_html(collect([a, b]))
    assert "<script" not in html and "<b>run" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;run" in html
    assert '84.74<span class="q">± 0.90 · IWAE-100</span>' in html
    assert '83.00<span class="q">± 0.90 · IWAE-100</span>' in html
    uris = re.findall(r'<img src="data:image/png;base64,([^"]+)" width="20" height="12" '
                      r'alt="samples of', html)
    assert len(uris) == 1
    assert base64.b64decode(uris[0]) == (a / "samples.png").read_bytes()
    assert "no sample grid (samples.png) in this run" in html
    assert "mnist5k test split, n=500" in html
    assert not re.search(r'(src|href)="(?!data:|#)', html)  # nothing external (no reports)


def test_unreadable_grid_becomes_a_note(tmp_path):
    a = make_run(tmp_path, "a")
    (a / "samples.png").write_bytes(b"\x89PNG not really")
    html = render_board_html(collect([a]))
    assert "samples.png could not be read as an image" in html
    assert 'alt="samples of' not in html


# ----- command line --------------------------------------------------------------------------
def test_cmd_compare_prints_table_and_writes_board(tmp_path, capsys):
    a = make_run(tmp_path, "a", evaluations=[nll_entry()])
    b = make_run(tmp_path, "b", evaluations=[nll_entry(80.0)])
    out = tmp_path / "out" / "board.html"
    assert cmd_compare([str(a), str(b), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| a |" in text and "84.74 ± 0.90 (IWAE-100)" in text
    assert f"board: {out}" in text
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert not [p for p in out.parent.iterdir() if p.name != "board.html"]  # no temp left


def test_cmd_compare_failure_writes_nothing(tmp_path, capsys):
    a = make_run(tmp_path, "a", evaluations=[nll_entry(n=500)])
    b = make_run(tmp_path, "b", evaluations=[nll_entry(n=10000)])
    board = tmp_path / "board.html"
    write_board(collect([a]), board)
    before = board.read_bytes()
    with pytest.raises(UserError, match="data.n differs"):
        cmd_compare([str(a), str(b), "--strict", "-o", str(board)])
    with pytest.raises(UserError, match="does not exist"):
        cmd_compare([str(a), str(tmp_path / "missing"), "-o", str(board)])
    assert board.read_bytes() == before
    fresh = tmp_path / "fresh.html"
    with pytest.raises(UserError):
        cmd_compare([str(a), str(b), "--strict", "-o", str(fresh)])
    assert not fresh.exists()
    assert capsys.readouterr().out == ""
    assert cmd_compare([str(a), str(b), "-o", str(board)]) == 0
    assert board.read_bytes() != before


def test_cmd_compare_bad_arguments(tmp_path):
    with pytest.raises(UserError, match="genvision compare"):
        cmd_compare([])
    a = make_run(tmp_path, "a")
    with pytest.raises(UserError, match="-o NAME.html"):
        cmd_compare([str(a), "-o", str(tmp_path / "board.txt")])


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    from genvision.cli import main

    a = make_run(tmp_path, "a", evaluations=[nll_entry(n=500)])
    b = make_run(tmp_path, "b", evaluations=[nll_entry(n=10000)])
    assert main(["compare", str(a), str(b), "--strict"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: NLL of") and "(fix: " in err
    assert main(["compare", str(a), str(b)]) == 0
    assert main(["compare", str(a), str(b), "--mixed"]) == 0  # older scripts still run


def test_an_ais_estimate_is_kept_apart_from_exact_and_bound_unless_mixed(tmp_path):
    # an RBM's AIS NLL may lie on either side of the truth: not in a column with an
    # exact NLL or a bound, even on the same data (exact and bound do share one)
    ais = {"estimator": "AIS 100 runs x 10000 distributions (log Z s.e. 0.020)",
           "kind": "estimate"}
    rbm = make_run(tmp_path, "rbm", model="rbm", likelihood_kind="estimate",
                   evaluations=[nll_entry(86.1, **ais)])
    rbm2 = make_run(tmp_path, "rbm2", model="rbm", likelihood_kind="estimate",
                    evaluations=[nll_entry(87.3, **ais)])
    exact = make_run(tmp_path, "pixelcnn", model="pixelcnn", likelihood_kind="exact",
                     evaluations=[nll_entry(81.0, estimator="exact", kind="exact")])
    vae = make_run(tmp_path, "vae", evaluations=[nll_entry(84.0)])
    assert "[a]" not in _md([exact, vae])  # the existing rule: labelled, not refused
    for other in (exact, vae):
        with pytest.raises(UserError, match=r"kind differs: .*estimate.*no command.*--strict"):
            collect([rbm, other], strict=True)
    md = _md([rbm, rbm2])  # estimates share a column with each other
    assert _column(md, "NLL (nats)")[1].startswith("87.30")
    assert "is a stochastic estimate" in md and "not a bound" in md
    board = collect([rbm, exact, vae])
    nll = _column(render_markdown(board), "NLL (nats)")
    assert nll[0].endswith("[a]") and nll[1].endswith("[b]") and nll[2].endswith("[b]")
    assert "stochastic estimate" in board.footnotes[0]
    assert "Not comparable with [b]" in board.footnotes[0]  # exact + bound: most runs
    assert board.footnotes[0].endswith("No command makes them one protocol")
