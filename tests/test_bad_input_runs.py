"""Bad-input corpus: damaged run files, weights files, ``--out`` folders and full disks.

Every refusal asserts the whole contract of :mod:`bad_input` (exit 2, one line naming the
file, no traceback, nothing pre-existing changed, nothing written). A damaged run is a
copy of the session's ``tiny_vae_run`` (a trained 2-step VAE) with one file broken, met
by every command that reads that file: ``info``, ``report``, ``compare``, ``evaluate``,
``sample``, ``train --resume`` and :func:`genvision.load`.

A full disk is tested for real where it can be: a subprocess whose file-size limit
(``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored) makes a write fail with ``EFBIG`` half-way
through a checkpoint; the other errnos (``ENOSPC``, ``EDQUOT``, ``EIO``) by a patched write.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file, save_file

import genvision
from bad_input import Case, check_refusal
from genvision.cli import main
from genvision.errors import UserError
from genvision.metrics.inception import FIDInceptionV3, _check_state_dict
from genvision.train import checkpoint as ckpt
from genvision.train.trainer_state import resume_command

SRC = Path(genvision.__file__).resolve().parents[1]


# ----- damage --------------------------------------------------------------------------------
def _step_dir(run: Path) -> Path:
    return next((run / "checkpoints").glob("step-*"))


def _edit_json(path: Path, edit: Callable[[dict], object]) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _run_json(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    return lambda run: _edit_json(run / "run.json", edit)


def _trainer_json(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    return lambda run: _edit_json(_step_dir(run) / "trainer.json", edit)


def _trainer_tensors(edit: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = _step_dir(run) / "trainer.safetensors"
        tensors = load_file(str(path))
        edit(tensors)
        save_file(tensors, str(path))
    return damage


def _first(tensors: dict, prefix: str) -> str:
    return next(k for k in sorted(tensors) if k.startswith(prefix) and tensors[k].dim() >= 2)


def _metrics_json(text: str) -> Callable[[Path], None]:
    return lambda run: (run / "metrics.json").write_text(text)


ENTRY = {"kind": "likelihood", "data": {"source": "digits"}, "split": "test", "n": 50,
         "nll_nats": 41.9}

RUN_JSON = {
    "run.json []": lambda r: (r / "run.json").write_text("[]"),
    "run.json {}": lambda r: (r / "run.json").write_text("{}"),
    "run.json a string": lambda r: (r / "run.json").write_text('"vae"'),
    "run.json truncated": lambda r: (r / "run.json").write_text(
        (r / "run.json").read_text()[:70]),
    "run.json stages not objects": _run_json(
        lambda d: d.update(task="superres", stages={"srresnet": 5})),
    "run.json conditional a string": _run_json(lambda d: d.update(conditional="yes")),
    "run.json num_parameters a string": _run_json(lambda d: d.update(num_parameters="many")),
    "run.json data_config.data a number": _run_json(
        lambda d: d["data_config"].update(data=5)),
    "run.json train_config.lr a string": _run_json(lambda d: d["train_config"].update(lr="x")),
}
TRAINER_JSON = {
    **{f"trainer.json without {key}": _trainer_json(lambda d, key=key: d.pop(key))
       for key in ("step", "optimizers", "epoch_index", "batch_in_epoch", "images_seen",
                   "time_s", "world_size", "log_window", "batch_size")},
    "trainer.json step a string": _trainer_json(lambda d: d.update(step="x")),
    "trainer.json step of another checkpoint": _trainer_json(lambda d: d.update(step=7)),
    "trainer.json optimizers a list": _trainer_json(lambda d: d.update(optimizers=[])),
    "trainer.json optimizer without param_groups": _trainer_json(
        lambda d: d["optimizers"].update(model={})),
    "trainer.json optimizer lr a string": _trainer_json(
        lambda d: d["optimizers"]["model"]["param_groups"][0].update(lr="x")),
    "trainer.json batch_size 0": _trainer_json(lambda d: d.update(batch_size=0)),
    "trainer.json log_window a string": _trainer_json(lambda d: d.update(log_window="x")),
    "trainer.json lr_schedule a string": _trainer_json(lambda d: d.update(lr_schedule="x")),
    "trainer.json time_s a string": _trainer_json(lambda d: d.update(time_s="x")),
    "trainer.json []": lambda r: (_step_dir(r) / "trainer.json").write_text("[]"),
}
TRAINER_TENSORS = {
    "trainer.safetensors random bytes": lambda r: (
        _step_dir(r) / "trainer.safetensors").write_bytes(os.urandom(500)),
    "trainer.safetensors model weight of another shape": _trainer_tensors(
        lambda t: t.update({_first(t, "model/"): torch.zeros(3, 3)})),
    "trainer.safetensors model weight of one number": _trainer_tensors(  # copy_ would broadcast
        lambda t: t.update({_first(t, "model/"): torch.zeros(1)})),
    "trainer.safetensors model weight missing": _trainer_tensors(
        lambda t: t.pop(_first(t, "model/"))),
    "trainer.safetensors optimiser state of another shape": _trainer_tensors(
        lambda t: t.update({_first(t, "optim/"): torch.zeros(2, 2)})),
    "trainer.safetensors without RNG states": _trainer_tensors(
        lambda t: [t.pop(k) for k in list(t) if k.startswith("rng/")]),
}
METRICS_JSON = {
    "metrics.json truncated": _metrics_json('{"evaluations": [{"kind": "lik'),
    "metrics.json random bytes": lambda r: (r / "metrics.json").write_bytes(os.urandom(200)),
    "metrics.json []": _metrics_json("[]"),
    "metrics.json evaluations a string": _metrics_json('{"evaluations": "x"}'),
    "metrics.json an entry that is a number": _metrics_json('{"evaluations": [1]}'),
    "metrics.json nll_nats a string": _metrics_json(json.dumps(
        {"evaluations": [{**ENTRY, "nll_nats": "low"}]})),
    "metrics.json kind a number": _metrics_json(json.dumps(
        {"evaluations": [{**ENTRY, "kind": 5}]})),
    "metrics.json protocol a list": _metrics_json(json.dumps(
        {"evaluations": [{**ENTRY, "protocol": [1]}]})),
}
LATEST = {
    "latest naming a missing checkpoint": lambda r: (
        r / "checkpoints" / "latest").write_text("step-00000099\n"),
    "latest empty": lambda r: (r / "checkpoints" / "latest").write_text(""),
}


def _argv(command: str, run: Path, folder: Path, base: Path) -> list[object]:
    return {"info": ["info", run], "report": ["report", run], "compare": ["compare", run, base],
            "evaluate": ["evaluate", run, "--metrics", "nll", "--n", "20", "--k", "2"],
            "sample": ["sample", run, "-n", "2", "-o", folder / "s.png"],
            "resume": ["train", "--resume", run, "--steps", "2", "--no-progress"]}[command]


#: (damage, what the error must name, the commands that read the damaged file)
READERS = ("info", "report", "compare", "evaluate", "resume")
MATRIX = [(name, damage, "run.json", READERS) for name, damage in RUN_JSON.items()] + [
    (name, damage, "trainer.json", ("resume",)) for name, damage in TRAINER_JSON.items()] + [
    (name, damage, "trainer.safetensors", ("resume",))
    for name, damage in TRAINER_TENSORS.items()] + [
    (name, damage, "metrics.json", ("info", "report", "compare", "evaluate"))
    for name, damage in METRICS_JSON.items()] + [
    (name, damage, "latest", ("report", "evaluate", "sample", "resume"))
    for name, damage in LATEST.items()]
CASES = [(name, damage, word, command) for name, damage, word, commands in MATRIX
         for command in commands]


def damaged_copy(folder: Path, tiny_vae_run: Path, damage: Callable[[Path], object]) -> Path:
    run = folder / "run"
    shutil.copytree(tiny_vae_run, run, symlinks=True)
    damage(run)
    return run


@pytest.mark.parametrize(("name", "damage", "word", "command"), CASES,
                         ids=[f"{c[0]} / {c[3]}" for c in CASES])
def test_a_damaged_run_is_refused_in_one_line(name, damage, word, command, tmp_path, capsys,
                                              tiny_vae_run):
    case = Case(f"{name} / {command}", lambda f: _argv(
        command, damaged_copy(f, tiny_vae_run, damage), f, tiny_vae_run), (word,))
    check_refusal(case, tmp_path, capsys)


LOADED = [(name, damage, word) for name, damage, word, _ in MATRIX
          if word in ("run.json", "latest") and "conditional" not in name
          and "num_parameters" not in name]


@pytest.mark.parametrize(("name", "damage", "word"), LOADED, ids=[c[0] for c in LOADED])
def test_genvision_load_refuses_a_damaged_run_in_one_line(name, damage, word, tmp_path,
                                                         tiny_vae_run):
    run = damaged_copy(tmp_path, tiny_vae_run, damage)
    with pytest.raises(UserError) as err:
        genvision.load(run)
    assert word in str(err.value) and "\n" not in str(err.value)


def test_evaluate_refuses_a_damaged_metrics_json_before_scoring(tmp_path, capsys,
                                                                tiny_vae_run, monkeypatch):
    """The user's damaged metrics.json is never overwritten, and no time is spent first."""
    import genvision.cli.evaluate as cli_evaluate

    def never(*args, **kwargs):
        raise AssertionError("scored a run whose metrics.json is damaged")

    monkeypatch.setattr(cli_evaluate, "evaluate_run", never)
    case = Case("evaluate, damaged metrics.json", lambda f: _argv(
        "evaluate", damaged_copy(f, tiny_vae_run, METRICS_JSON["metrics.json []"]), f,
        tiny_vae_run), ("metrics.json",))
    check_refusal(case, tmp_path, capsys)


def test_a_garbage_metrics_log_is_flagged_not_a_crash(tmp_path, capsys, tiny_vae_run):
    """Lines of garbage in metrics.jsonl (a torn line, bytes that are not UTF-8) are
    skipped with a warning by report and compare, and dropped by --resume (a traceback
    before)."""
    run = damaged_copy(tmp_path, tiny_vae_run, lambda r: (r / "metrics.jsonl").write_bytes(
        (r / "metrics.jsonl").read_bytes() + b"garbage{\n\xff\xfe\x00\x93\n[1, 2]\n"))
    with pytest.warns(UserWarning, match="skipped 3 malformed line"):
        assert main(["report", str(run)]) == 0
    with pytest.warns(UserWarning, match="skipped 3 malformed line"):
        assert main(["compare", str(run), str(tiny_vae_run)]) == 0
    assert main(["train", "--resume", str(run), "--steps", "1", "--no-progress"]) == 0
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
    assert "Traceback" not in capsys.readouterr().err


# ----- weights files -------------------------------------------------------------------------
def _vgg_file(folder: Path, fill: float) -> Path:
    path = folder / "vgg19.safetensors"
    shapes = {"features.0.weight": (64, 3, 3, 3), "features.0.bias": (64,),
              "features.2.weight": (64, 64, 3, 3), "features.2.bias": (64,)}
    save_file({k: torch.full(s, fill) for k, s in shapes.items()}, str(path))
    return path


def _srgan_with(perceptual: Path) -> list[object]:
    return ["superres", "train", "--out", perceptual.parent / "sr", "--method", "srgan",
            "--perceptual", f"vgg19:{perceptual}", "--perceptual-layer", "relu1_2",
            "--steps", "1", "--no-progress"]


def _random_file(folder: Path, name: str, seed: int = 0) -> Path:
    """3,000 seeded random bytes: each seed fails torch's unpickler in its own way (seed 0
    an UnpicklingError, 2 an IndexError, 20 a KeyError, 195 a UnicodeDecodeError)."""
    (folder / name).write_bytes(random.Random(seed).randbytes(3000))
    return folder / name


WEIGHTS_CASES = [
    Case(f"--features inception:{name} of random bytes (seed {seed})",
         lambda f, name=name, seed=seed: [
             "evaluate", f / "run", "--metrics", "fid", "--n", "20",
             "--features", f"inception:{_random_file(f, name, seed)}"], (name,))
    for name, seed in (("w.pth", 0), ("w.pth", 2), ("w.pth", 20), ("w.pth", 195),
                       ("w.safetensors", 0))] + [
    Case(f"--perceptual vgg19:{name} of random bytes",
         lambda f, name=name: _srgan_with(_random_file(f, name)), (name, "vgg19"))
    for name in ("w.pth", "w.safetensors")] + [
    Case("--perceptual vgg19 weights holding NaN",
         lambda f: _srgan_with(_vgg_file(f, float("nan"))), ("vgg19.safetensors", "finite")),
]


@pytest.mark.parametrize("case", WEIGHTS_CASES, ids=str)
def test_a_bad_weights_file_is_refused_in_one_line(case, tmp_path, capsys, tiny_vae_run):
    shutil.copytree(tiny_vae_run, tmp_path / "run")  # the run an evaluate scores
    check_refusal(case, tmp_path, capsys)


@pytest.mark.parametrize(("change", "words"), [
    (lambda t: t.fill_(float("nan")), "holding NaN or inf"),
    (lambda t: t.to(torch.int64), "not floats"),
], ids=["NaN", "integers"])
def test_inception_weights_holding_nan_or_integers_are_refused(change, words):
    """They were loaded silently: integers cast to floats, NaN giving a NaN FID."""
    net = FIDInceptionV3()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    key = "Conv2d_1a_3x3.conv.weight"
    state[key] = change(state[key])
    with pytest.raises(UserError, match=f"{words} .{key}"):
        _check_state_dict(Path("w.pth"), state, net)


# ----- --out folders -------------------------------------------------------------------------
TINY = ["--latent-dim", "4", "--hidden", "8", "16", "--fc-dim", "32", "--ar-layers", "1",
        "--ar-channels", "4", "--batch-size", "16", "--steps", "1", "--no-progress"]
OUT_COMMANDS = {
    "train": lambda out: ["train", "vae", "--data", "digits", "--out", out, *TINY],
    "superres train": lambda out: ["superres", "train", "--out", out, "--steps", "1",
                                   "--no-progress"],
    "colorize train": lambda out: ["colorize", "train", "--out", out, "--steps", "1",
                                   "--no-progress"],
}


def _a_file(folder: Path) -> Path:
    (folder / "notes.txt").write_text("the user's notes\n")
    return folder / "notes.txt"


OUT_CASES = [
    Case(f"{command} --out a file", lambda f, make=make: make(_a_file(f)), ("is a file",))
    for command, make in OUT_COMMANDS.items()] + [
    Case(f"{command} --out under a file",
         lambda f, make=make: make(_a_file(f) / "run"), ("under", "notes.txt"))
    for command, make in OUT_COMMANDS.items()]


@pytest.mark.parametrize("case", OUT_CASES, ids=str)
def test_an_out_that_cannot_be_a_folder_is_refused(case, tmp_path, capsys):
    check_refusal(case, tmp_path, capsys)


@pytest.mark.parametrize("command", sorted(OUT_COMMANDS))
def test_an_unwritable_out_is_refused(command, tmp_path, capsys, monkeypatch):
    """A folder this user may not write (as root, chmod stops nothing, so the permission
    answer is patched; the read-only mount below is the real thing)."""
    locked = tmp_path / "locked"
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: (
        False if Path(p) == locked and mode & os.W_OK else real_access(p, mode, **kw)))
    case = Case(f"{command} --out in an unwritable folder",
                lambda f: locked.mkdir() or OUT_COMMANDS[command](locked / "run"),
                ("not writable", "locked"))
    check_refusal(case, tmp_path, capsys)


def _read_only_mount_works(folder: Path) -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {folder} {folder} && "
                            f"mount -o remount,ro,bind {folder} {folder}"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


def test_train_into_a_read_only_mount_is_one_line(tmp_path, tiny_vae_run):
    """For real: a read-only bind mount (needs root and mount namespaces, else skipped).
    A new run, a resume and an evaluate there all end in one line, exit 2."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if not _read_only_mount_works(ro):
        pytest.skip("needs root and `unshare -m` to make a read-only bind mount")
    shutil.copytree(tiny_vae_run, ro / "old")
    python = f"{sys.executable} -m genvision"
    script = "; ".join([
        f"mount --bind {ro} {ro}", f"mount -o remount,ro,bind {ro} {ro}",
        f"{python} train vae --data digits --out {ro}/new {' '.join(TINY)} 2>&1; echo rc=$?",
        f"{python} train --resume {ro}/old --steps 1 --no-progress 2>&1; echo rc=$?",
        f"{python} evaluate {ro}/old --metrics nll --n 10 --k 2 2>/dev/null; echo rc=$?"])
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                         env=env, timeout=300).stdout
    assert "Traceback" not in out, out
    assert out.count("rc=2") == 3, out
    assert "error: cannot write --out" in out and "read-only file system" in out, out


# ----- a full disk ---------------------------------------------------------------------------
LIMITED = textwrap.dedent("""
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails: EFBIG
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from genvision.cli import main
    sys.exit(main(sys.argv[2:]))
""")


def run_limited(limit: int, *argv: object) -> subprocess.CompletedProcess:
    """``genvision ARGV`` in a subprocess that may write no file larger than ``limit``."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", LIMITED, str(limit), *map(str, argv)],
                          capture_output=True, text=True, env=env, timeout=300)


def debris(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*")
                  if p.name.endswith(".tmp") or p.name.startswith((".tmp-", ".trash-")))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_full_disk_while_checkpointing_is_one_line_and_resumable(tmp_path, tiny_vae_run):
    """For real: trainer.safetensors (~200 KB) cannot be written past a 100 KB file-size
    limit, after model.safetensors (~48 KB) was. Before: an OSError traceback and the
    half-written checkpoint left behind."""
    run = tmp_path / "run"
    shutil.copytree(tiny_vae_run, run)
    latest = (run / "checkpoints" / "latest").read_text()
    kept = {p.name: p.read_bytes() for p in _step_dir(run).iterdir()}
    done = run_limited(100_000, "train", "--resume", run, "--steps", "2", "--no-progress")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert error_lines(done.stderr) == [
        f"error: no space left writing checkpoint {run}/checkpoints/step-00000004 (File too "
        "large (a file-size limit, e.g. `ulimit -f`, or the file system's)); step-00000002 "
        f"is kept (fix: free space and continue with `genvision train --resume {run}`)"]
    assert debris(run) == []
    assert (run / "checkpoints" / "latest").read_text() == latest
    assert {p.name: p.read_bytes() for p in _step_dir(run).iterdir()} == kept
    assert not (run / "checkpoints" / "step-00000004").exists()
    # space is back: the run continues from the kept checkpoint
    assert main(["train", "--resume", str(run), "--steps", "2", "--no-progress"]) == 0
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-00000004"
    assert debris(run) == []


def test_a_full_disk_while_evaluating_keeps_metrics_json(tmp_path, tiny_vae_run):
    """evaluate's metrics.json (and the report's files) go through the atomic writer: a
    write that fails leaves the old file and no temp file; evaluate says so in one line."""
    run = tmp_path / "run"
    shutil.copytree(tiny_vae_run, run)
    old = json.dumps({"evaluations": [ENTRY]}, indent=2) + "\n"
    (run / "metrics.json").write_text(old)
    done = run_limited(len(old) + 10, "evaluate", run, "--metrics", "nll", "--n", "10",
                       "--k", "2")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert error_lines(done.stderr) == [
        f"error: no space left writing {run}/metrics.json (File too large) (fix: free space "
        "(or raise the quota or file-size limit) and run again)"]
    assert (run / "metrics.json").read_text() == old
    assert debris(run) == []
    # the report draws what it can: a loss plot (~80 KB) it cannot write is a note
    done = run_limited(20_000, "report", run)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "loss curves not drawn" in done.stderr and "File too large" in done.stderr
    assert debris(run) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO],
                         ids=errno.errorcode.get)
def test_every_failed_checkpoint_write_is_one_line(code, tmp_path, capsys, tiny_vae_run,
                                                   monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(tiny_vae_run, run)
    real = ckpt.save_tensors

    def failing(path, tensors, metadata=None):
        real(path, {k: v[:1] for k, v in tensors.items() if v.dim()}, metadata)  # half-written
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(ckpt, "save_tensors", failing)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(error_lines(err)) == 1, err
    words = "no space left writing" if code != errno.EIO else "could not write"
    assert f"{words} checkpoint {run}/checkpoints/step-00000004" in err, err
    assert "step-00000002 is kept" in err and f"genvision train --resume {run}`" in err, err
    assert debris(run) == []
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-00000002"


def test_a_failed_first_checkpoint_says_to_start_again(tmp_path, capsys, monkeypatch):
    """With no checkpoint yet there is nothing to resume: the fix is a new start (which
    replaces a run without a checkpoint)."""
    monkeypatch.setattr(ckpt, "save_tensors", lambda *a, **k: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(OUT_COMMANDS["train"](str(out))) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(error_lines(err)) == 1, err
    assert "no space left writing checkpoint" in err and "start the run again" in err, err
    assert debris(out) == []


def test_the_resume_command_of_a_failed_write_fits_the_run():
    """A task's stage is resumed by its task's train command, a model run by train."""
    stage = SimpleNamespace(run_dir=Path("runs/sr4/srgan"),
                            run_info={"task": "superres", "stage": "srgan"})
    assert resume_command(stage) == ("genvision superres train --resume --out runs/sr4 "
                                     "--method srgan")
    model = SimpleNamespace(run_dir=Path("runs/vae"), run_info={"model": "vae"})
    assert resume_command(model) == "genvision train --resume runs/vae"
