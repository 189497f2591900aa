"""`genvision serve`: the JSON endpoints over real tiny runs, served on port 0 in a thread
and fetched with urllib; bad input is a 400 with one line, never a dead server."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

import genvision
from genvision import serve as serve_cli
from genvision.cli import main
from genvision.cli import serve as cli_serve
from genvision.errors import UserError
from genvision.models.sampling import SampleRNG, make_sampler
from genvision.models.translation import CycleGAN, CycleGANConfig, Pix2Pix, TranslationConfig
from genvision.serve.actions import apply_task
from genvision.serve.latent import interpolate, slerp
from genvision.serve.runs import ServedRun
from serve_client import COLOR_ID, DDPM_ID, SR_ID, VAE_ID, decode_url, png_url, request

pytest_plugins = ["serve_runs"]  # its session fixtures: the tiny runs and the server


def post(server, action: str, **body):
    return request(server, f"/api/{action}", body)


def test_page_and_run_descriptions_come_from_the_models(served):
    status, page = request(served, "/")
    assert status == 200 and "<title>genvision demo</title>" in page
    status, runs = request(served, "/api/runs")
    assert status == 200 and [r["kind"] for r in runs] == ["model", "model", "superres",
                                                          "colorize"]
    vae, ddpm, sr, color = runs
    assert (vae["model"], vae["num_classes"], vae["interpolate"], vae["complete"]) == \
        ("vae", 10, True, False)
    assert vae["samplers"][0]["options"] == [{"name": "decoder", "type": "choice",
                                              "choices": ["sample", "mean"],
                                              "nullable": False, "default": "sample"}]
    assert ddpm["complete"] and ddpm["interpolate"] and ddpm["shape"] == [1, 8, 8]
    names = [s["name"] for s in ddpm["samplers"]]
    assert len(names) > 1 and "ddim" in names
    steps = next(o for o in ddpm["samplers"][0]["options"] if o["name"] == "steps")
    assert steps["default"] == 3 and steps["type"] == "int" and steps["nullable"]
    assert sr["methods"] == ["srresnet"] and sr["scale"] == 2
    assert color["methods"] == ["regression"] and color["verb"] == "colorize"


def test_sample_is_reproducible_by_seed_and_honours_label_and_options(served):
    status, a = post(served, "sample", run=VAE_ID, n=4, seed=5, label=3)
    assert status == 200, a
    _, again = post(served, "sample", run=VAE_ID, n=4, seed=5, label=3)
    _, other = post(served, "sample", run=VAE_ID, n=4, seed=9, label=3)
    _, mean = post(served, "sample", run=VAE_ID, n=4, seed=5, label=3,
                   options={"decoder": "mean"})
    assert a["image"] == again["image"] and a["image"] != other["image"]
    assert a["image"] != mean["image"]
    grid = decode_url(a["image"])
    assert grid.shape[0] == grid.shape[1] and grid.shape[0] >= 64  # 2x2 tiles, enlarged
    assert "seeds 5 to 8" in a["caption"]
    status, d = post(served, "sample", run=DDPM_ID, n=2, seed=0, sampler="ddim",
                     options={"steps": 2, "eta": 0.5})
    assert status == 200, d


@pytest.mark.parametrize(("body", "match"), [
    ({"n": 10 ** 6}, "n must be in [1, 64]"),
    ({"n": "many"}, "n must be a whole number"),
    ({"seed": -1}, "seed must be in"),
    ({"label": 10}, "label must be in [0, 9]"),
    ({"options": {"decoder": "median"}}, "not one of sample, mean"),
    ({"options": {"temperature": 2}}, "has no option 'temperature'"),
    ({"sampler": "ddim"}, "has no sampler 'ddim'"),
    ({"run": 99}, "no run 99"),
    ({"run": "0"}, "no run '0'"),
])
def test_bad_sample_requests_are_one_line_400s(served, body, match):
    status, err = post(served, "sample", **{"run": VAE_ID, **body})
    assert status == 400, err
    assert match in err["error"] and "\n" not in err["error"] and "fix:" in err["error"]


def test_absurd_steps_and_malformed_requests_are_refused(served):
    for steps in (5000, "5000"):  # the sampler allows 10,000; the demo runs at most 1,000
        status, err = post(served, "sample", run=DDPM_ID, options={"steps": steps})
        assert status == 400 and "outside what the demo runs" in err["error"], err
    status, err = post(served, "sample", run=DDPM_ID, options={"steps": 10 ** 6})
    assert status == 400 and "steps must be in [1, 10000]" in err["error"], err
    assert "--sampler-opt" not in err["error"]  # the page has no flags
    status, err = request(served, "/api/sample", raw=b"{not json")
    assert status == 400 and "not JSON" in err["error"]
    status, err = request(served, "/api/sample", raw=b"[1, 2]")
    assert status == 400 and "not a JSON object" in err["error"]
    status, err = request(served, "/api/explode", {"run": 0})
    assert status == 404 and "no action" in err["error"]
    status, err = request(served, "/api/sample", raw=b"x" * (12 * 2 ** 20))
    assert status == 413 and "more than the demo takes" in err["error"]
    status, err = request(served, "/", headers={"Host": "evil.example:7860"})
    assert status == 403 and "not this machine" in err["error"]
    status, _ = post(served, "sample", run=VAE_ID, n=1)  # still serving
    assert status == 200


def test_interpolation_ends_are_the_samples_of_the_two_seeds(serve_runs, served):
    vae, ddpm = (genvision.load(p).eval() for p in serve_runs[:2])
    y = torch.tensor([2])
    for opts, ends in ((make_sampler(vae, None, ["decoder=mean"]), ((0, 3), (4, 8))),
                       (make_sampler(vae), ((0, 3),))):  # pixel draws: seed A's noise
        x, note = interpolate(vae, 3, 8, 5, 2, opts)
        assert x.shape == (5, 1, 8, 8) and note is None
        for frame, seed in ends:
            want = vae.sample(1, y=y, generator=SampleRNG([seed]), sampler=opts)
            torch.testing.assert_close(x[frame:frame + 1], want)
    x, note = interpolate(ddpm, 3, 8, 5, None, make_sampler(ddpm, "ddim"))
    assert x.shape == (5, 1, 8, 8) and note is None
    again, _ = interpolate(ddpm, 3, 8, 5, None, make_sampler(ddpm, "ddim"))
    torch.testing.assert_close(x, again)  # deterministic: DDIM eta 0, most likely levels
    status, out = post(served, "interpolate", run=DDPM_ID, seed_a=0, seed_b=1, frames=4,
                       sampler="ddpm")
    assert status == 200 and "DDIM" in out["note"], out
    status, err = post(served, "interpolate", run=VAE_ID, frames=100)
    assert status == 400 and "frames must be in [2, 16]" in err["error"]


def test_slerp_keeps_the_ends_and_the_norm():
    a, b = torch.randn(64, generator=torch.Generator().manual_seed(0)), torch.randn(64)
    path = slerp(a, b, torch.linspace(0, 1, 5))
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    assert float(path[2].norm()) > 0.8 * min(float(a.norm()), float(b.norm()))


def test_completion_keeps_the_rows_of_the_upload(served):
    img = np.zeros((8, 8), dtype=np.uint8)
    img[:4, 2:6] = 255
    status, out = post(served, "complete", run=DDPM_ID, image=png_url(img), keep_rows=4, n=3)
    assert status == 200, out
    grid = decode_url(out["image"])[..., 0]
    scale = grid.shape[1] // (5 * 10 + 2)  # 5 tiles of 8 px, 2 px padding, enlarged

    def tile(k: int) -> np.ndarray:  # tile k of the row, back at 8x8
        top, left = 2 * scale, (2 + 10 * k) * scale
        return grid[top:top + 8 * scale:scale, left:left + 8 * scale:scale]

    np.testing.assert_array_equal(tile(0), img)  # the binary digit as sent
    np.testing.assert_array_equal(tile(1)[4:], 0)  # the kept part: the rest blanked
    for k in (2, 3, 4):
        np.testing.assert_array_equal(tile(k)[:4], img[:4])
    status, out = post(served, "complete", run=DDPM_ID, image=png_url(np.zeros((16, 16))),
                       n=1)
    assert status == 200 and "resized from 16x16 to 8x8" in out["note"]


@pytest.mark.parametrize(("image", "match"), [
    (None, "no image was sent"),
    ("data:image/png;base64,!!!", "not base64"),
    ("data:text/plain;base64,aGVsbG8=", "not a readable image"),
    ("colour", "colour image but ddpm"),
    ("huge", "more than the demo takes"),
])
def test_bad_uploads_are_one_line_400s(served, image, match):
    if image == "colour":
        image = png_url(np.dstack([np.full((8, 8), v, np.uint8) for v in (255, 0, 0)]))
    elif image == "huge":  # 2,000,000 pixels: refused from the header, never decoded
        image = png_url(np.zeros((1000, 2000), dtype=np.uint8))
    status, err = post(served, "complete", run=DDPM_ID, image=image)
    assert status == 400 and match in err["error"], err
    status, err = post(served, "complete", run=VAE_ID, image=png_url(np.zeros((8, 8))))
    assert status == 400 and "cannot complete" in err["error"]


def test_task_runs_apply_to_an_upload(served):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    status, out = post(served, "apply", run=SR_ID, image=png_url(photo))
    assert status == 200, out
    assert decode_url(out["image"]).shape == (24, 20, 3)
    status, err = post(served, "apply", run=SR_ID, image=png_url(photo[..., 0]))
    assert status == 400 and "greyscale image but super-resolution" in err["error"]
    status, err = post(served, "apply", run=SR_ID, image=png_url(photo), method="srgan")
    assert status == 400 and "has no method 'srgan'" in err["error"]
    status, out = post(served, "apply", run=COLOR_ID, image=png_url(photo[..., 0]))
    assert status == 200 and decode_url(out["image"]).shape == (12, 10, 3), out


def test_cli_refuses_bad_runs_and_busy_ports_with_one_line(served, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "nothing")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["serve", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    busy = served.server_address[1]
    assert main(["serve", str(served.runs[0].path), "--port", str(busy)]) == 2
    assert "cannot listen" in capsys.readouterr().err


def test_translation_checks_the_source_domain_and_direction():
    """A grey -> RGB CycleGAN and pix2pix (untrained: only shapes and checks matter)."""
    nets = {"width": 4, "depth": 1, "disc_width": 4, "disc_layers": 1, "image_size": (8, 8),
            "channels": 4, "a_channels": 1}
    models = {"pix2pix": Pix2Pix(TranslationConfig(**nets)).eval(),
              "cyclegan": CycleGAN(CycleGANConfig(**nets, pool_size=2)).eval()}
    run = ServedRun(0, "pair", Path("pair"), "translate", models,
                    {"directions": {"a2b": 1, "b2a": 3}, "image_size": [8, 8]})
    grey = png_url(np.full((8, 8), 200, np.uint8))
    colour = png_url(np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8))
    out = apply_task(run, {"image": grey, "method": "pix2pix"})
    assert decode_url(out["image"]).shape == (8, 8, 3) and out["note"] is None
    out = apply_task(run, {"image": colour, "method": "cyclegan", "direction": "b2a"})
    assert decode_url(out["image"]).shape == (12, 16, 3)  # grey, shown as RGB
    assert "trained on 8x8 images" in out["note"]
    with pytest.raises(UserError, match="pix2pix translates a2b only"):
        apply_task(run, {"image": colour, "method": "pix2pix", "direction": "b2a"})
    with pytest.raises(UserError, match="colour image but domain A"):
        apply_task(run, {"image": colour, "method": "cyclegan"})
    with pytest.raises(UserError, match="direction must be a2b or b2a"):
        apply_task(run, {"image": grey, "direction": "sideways"})


def test_the_command_prints_its_url_and_serves_until_stopped(serve_runs, monkeypatch, capsys):
    made = []

    def keep(*args, **kwargs):  # the command's own server, so that the test can stop it
        made.append(serve_cli.make_server(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(cli_serve, "make_server", keep)
    thread = threading.Thread(target=lambda: made.append(main(
        ["serve", str(serve_runs[0]), "--port", "0", "--quiet", "--device", "cpu"])))
    thread.start()
    try:
        out = ""
        for _ in range(300):  # the runs load, then the URL is printed
            out += capsys.readouterr().out
            if "serving" in out:
                break
            time.sleep(0.1)
        url = re.search(r"at (http://127\.0\.0\.1:\d+/)", out)
        assert url and url.group(1) == made[0].url
        with urllib.request.urlopen(url.group(1) + "api/runs", timeout=30) as resp:
            assert json.loads(resp.read())[0]["model"] == "vae"
    finally:
        if made:
            made[0].shutdown()
        thread.join(timeout=30)
    assert made[-1] == 0  # the exit status
