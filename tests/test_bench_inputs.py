"""cgan-bench / cgan-eval refuse bad input up front: one line, exit 2, no traceback, and no work started.

Every command's work (run_bench, run_profile, the engine builds, the trainer's timing loop, the quality report's
pair loading, the random pair) is replaced by a function that fails the test if it is called: a bad option must
be refused before any of it, not found when the results are written.
"""
from __future__ import annotations

import json
import math
import os

import pytest

from cgan._cli import run
from cgan.benchmarks import bench as bench_mod
from cgan.benchmarks import checks
from cgan.benchmarks.bench import BenchConfig, parse_size
from cgan.benchmarks.cli import cli
from cgan.errors import CganError
from cgan._limits import max_threads

TINY_RUN = ["--backends", "ort-cpu", "--sizes", "64x64", "--iters", "2", "--precision", "fp32", "--batch", "1",
            "--no-baseline", "--device", "cpu", "-q"]


def _work_started(*a, **k):
    raise AssertionError("the command started its work before it had checked its options")


@pytest.fixture
def no_work(monkeypatch):
    """Every command's work fails the test if it starts."""
    import cgan.pairs
    from cgan.benchmarks import engines, profile, train_speed

    for mod, name in ((bench_mod, "run_bench"), (bench_mod, "random_pair"), (bench_mod, "prepare"),
                      (profile, "run_profile"), (engines, "run_engine_builds"), (train_speed, "run_train_bench"),
                      (cgan.pairs, "resolve")):
        monkeypatch.setattr(mod, name, _work_started)


def _one_line(capsys, needle: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err, err
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture
def places(tmp_path):
    """A file where a folder is expected, a folder where a file is expected, a history of the wrong bytes."""
    (tmp_path / "fileout").write_text("")
    (tmp_path / "folder").mkdir()
    (tmp_path / "hist.jsonl").write_bytes(b"\xff\xfe")
    return tmp_path


# ---- 1. output paths, before any work ----------------------------------------------------------------------
def _eval_args(tmp_path):
    return ["--pair", "summer2winter", "--data", str(tmp_path), "--no-clip", "--psnr-photos", "0"]


@pytest.mark.parametrize("command", ["bench", "train", "profile", "engines", "eval"])
@pytest.mark.parametrize("where,needle", [("fileout/x.out", "is a file, not a folder"),
                                          ("folder", "is a folder: give a file name")])
def test_output_paths_are_checked_before_any_work(command, where, needle, places, no_work, capsys):
    from cgan.benchmarks import eval_cli

    path = str(places / where)
    argv = {"bench": [*TINY_RUN, "--json", path], "train": ["train", "--device", "cpu", "--json", path],
            "profile": ["profile", "--device", "cpu", "--size", "64x64", "--json", path],
            "engines": ["engines", "--json", path], "eval": [*_eval_args(places), "--json", path]}[command]
    assert run(eval_cli.cli if command == "eval" else cli, argv) == 2
    _one_line(capsys, needle)


@pytest.mark.parametrize("option", ["--plot", "--history"])
def test_plot_and_history_paths_are_checked_before_any_work(option, places, no_work, capsys):
    assert run(cli, [*TINY_RUN, option, str(places / "fileout" / "p.png")]) == 2
    _one_line(capsys, f"{option} {places / 'fileout' / 'p.png'}: {places / 'fileout'} is a file")
    assert run(cli, ["train", "--device", "cpu", option, str(places / "folder")]) == 2
    _one_line(capsys, "is a folder")


def test_eval_grid_path_is_checked_before_any_work(places, no_work, capsys):
    from cgan.benchmarks import eval_cli

    assert run(eval_cli.cli, [*_eval_args(places), "--grid", str(places / "fileout" / "g.png")]) == 2
    _one_line(capsys, "--grid")
    # the grid is PNG data whatever its name says: a .jpg name got PNG bytes without a word
    assert run(eval_cli.cli, [*_eval_args(places), "--grid", str(places / "g.jpg")]) == 2
    _one_line(capsys, "--grid writes a PNG: give a file name ending in .png")


def test_a_history_that_is_not_history_lines_is_refused_naming_the_line(places, no_work, capsys, caplog):
    """`--history F` with F = b'\\xff\\xfe' ran the benchmark, then died reading F for the plot. A file whose first
    line is not a history line is refused; a damaged later line (an append cut short by a full disk) is skipped
    with a warning, as read_history skips it, so one torn line does not lock the history for good."""
    assert run(cli, [*TINY_RUN, "--history", str(places / "hist.jsonl"), "--plot", str(places / "p.png")]) == 2
    _one_line(capsys, "line 1 is not UTF-8 text")
    good = json.dumps({"format": "cgan.bench", "version": 1, "kind": "inference", "rows": []})
    h = places / "h2.jsonl"
    h.write_text("{oops\n" + good + "\n")
    assert run(cli, [*TINY_RUN, "--history", str(h)]) == 2
    _one_line(capsys, "line 1 is not JSON")
    h.write_text(json.dumps({"format": "something-else"}) + "\n" + good + "\n")
    assert run(cli, ["train", "--device", "cpu", "--history", str(h)]) == 2
    _one_line(capsys, "line 1 is not a cgan-bench history line")
    h.write_text(good + "\n\n" + good + "\n{oops\n")
    with caplog.at_level("WARNING", logger="cgan.benchmarks.checks"):
        assert checks.check_history_file(h) == h  # a torn last append: kept, the line skipped
    assert "line 4 is not JSON" in caplog.text and "skipped" in caplog.text
    h.write_text(good + "\n")
    assert checks.check_history_file(h) == h  # a real history passes


def test_two_outputs_in_one_file_are_refused(tmp_path, no_work, capsys):
    same = str(tmp_path / "r.json")
    assert run(cli, [*TINY_RUN, "--json", same, "--history", same]) == 2
    _one_line(capsys, "--json and --history name the same file")
    (tmp_path / "link").symlink_to(tmp_path)  # the same file through a link to its folder: was written twice
    assert run(cli, [*TINY_RUN, "--json", same, "--history", str(tmp_path / "link" / "r.json")]) == 2
    _one_line(capsys, "--json and --history name the same file")


def test_the_checks_create_and_leave_nothing(tmp_path):
    target = tmp_path / "a" / "b" / "r.json"
    checks.check_outputs([("--json", target), ("--grid", None)], history=tmp_path / "a" / "h.jsonl",
                         plot=tmp_path / "p.png")
    assert list(tmp_path.iterdir()) == []  # no folder made, no write probe left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(CganError, match="cannot be written"):
            checks.check_output_file(ro / "x" / "r.json", "--json")
    finally:
        ro.chmod(0o700)


def test_a_history_read_for_the_plot_never_raises_on_bad_bytes(tmp_path):
    from cgan.benchmarks.report import read_history

    h = tmp_path / "h.jsonl"
    h.write_bytes(b"\xff\xfe\n" + json.dumps({"format": "cgan.bench", "rows": []}).encode() + b"\n")
    assert len(read_history(h)) == 1


# ---- 2. float options ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["--seconds", "nan"], "--seconds must be > 0 and finite"),
    (["--seconds", "inf"], "--seconds must be > 0 and finite"),
    (["--seconds", "-1"], "--seconds must be > 0 and finite"),
    (["--seconds", "0"], "--seconds must be > 0 and finite"),
    (["--budget", "nan"], "--budget must be > 0 and finite"),
    (["--budget", "inf"], "--budget must be > 0 and finite"),
    (["engines", "--workspace-gb", "inf"], "--workspace-gb must be a finite number"),
    (["engines", "--workspace-gb", "nan"], "--workspace-gb must be a finite number"),
])
def test_float_options_must_be_finite_and_positive(argv, needle, no_work, capsys):
    assert run(cli, argv if argv[0] == "engines" else [*TINY_RUN, *argv]) == 2
    _one_line(capsys, needle)


def test_bench_config_refuses_nan_and_inf_from_python():
    for kw in ({"seconds": math.nan}, {"seconds": math.inf}, {"budget_s": math.nan}, {"budget_s": -math.inf}):
        with pytest.raises(CganError, match="finite"):
            BenchConfig(**kw)
    assert BenchConfig(seconds=0.5, budget_s=60).seconds == 0.5


# ---- 3. sizes ----------------------------------------------------------------------------------------------
def test_sizes_below_the_minimum_are_refused_with_a_valid_suggestion():
    """The generator takes sides >= 8 (reflection pad 3, then pad 1 at a quarter of the side); the runtime pads
    sides under 16, so the benchmark's minimum is 16, a multiple of 4. Every suggestion must itself be valid."""
    from cgan.runtime.frames import MIN_SIDE

    assert bench_mod.MIN_SIDE == MIN_SIDE == 16
    for bad, hint in (("0x0", "16x16"), ("4x4", "16x16"), ("4x64", "16x64"), ("8x8", "16x16"), ("12x64", "16x64"),
                      ("64x4", "64x16")):
        with pytest.raises(CganError, match=f"at least 16 \\(try {hint}\\)"):
            parse_size(bad)
        assert parse_size(hint)
    assert parse_size("16x16") == (16, 16) and parse_size("16x20") == (16, 20)
    with pytest.raises(CganError, match="at least 16"):
        BenchConfig(sizes=((4, 64),))
    with pytest.raises(CganError, match="at least 16"):
        BenchConfig(e2e=True, e2e_size=(8, 8))


@pytest.mark.parametrize("argv", [["--sizes", "4x4"], ["--sizes", "4x64"], ["--sizes", "0x0"],
                                  ["--e2e", "--e2e-size", "4x4"], ["profile", "--size", "4x64"]])
def test_small_sizes_are_one_line_before_any_work(argv, no_work, capsys):
    assert run(cli, argv if argv[0] == "profile" else [*TINY_RUN, *argv]) == 2
    _one_line(capsys, "at least 16")


def test_the_generator_runs_at_the_minimum_and_at_every_suggestion():
    torch = pytest.importorskip("torch")
    from cgan.spec import GeneratorSpec
    from cgan.trainer.networks import build_generator

    net = build_generator(GeneratorSpec(blocks=1, ngf=4)).eval()
    with torch.no_grad():
        for h, w in ((16, 16), (16, 64), (64, 16)):
            assert net(torch.zeros(1, 3, h, w)).shape == (1, 3, h, w)
        with pytest.raises(Exception):  # what the benchmark used to pass on to it
            net(torch.zeros(1, 3, 4, 64))


# ---- 4. batch ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["profile", "--batch", "0"], "--batch must be 1..256, got 0"),
    (["profile", "--batch", "-1"], "--batch must be 1..256, got -1"),
    (["profile", "--batch", "100000"], "--batch must be 1..256"),
    (["train", "--batch", "0"], "--batch must be 1..256, got 0"),
    (["train", "--batch", "1000"], "--batch must be 1..256"),
    (["engines", "--batch", "1,1,999"], "--batch must be 1..256, got 999"),
    (["engines", "--batch", "0"], "batch min/opt/max must be positive"),
    ([*TINY_RUN, "--batch", "257"], "bad --batch '257'"),
])
def test_batch_is_checked_in_every_command(argv, needle, no_work, capsys):
    assert run(cli, argv) == 2
    _one_line(capsys, needle)


def test_run_profile_refuses_batch_zero_from_python():
    pytest.importorskip("torch")
    from cgan.benchmarks.profile import run_profile

    with pytest.raises(CganError, match="--batch must be 1..256, got 0"):
        run_profile("no-such-pair", "cpu", 64, 64, "fp32", batch=0)


# ---- 5. cgan-eval --device -------------------------------------------------------------------------------
def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.parametrize("device,needle", [
    ("bogus", "unknown --device 'bogus': use cpu, cuda or cuda:N"),
    ("cuda:x", "unknown --device 'cuda:x'"),
    ("gpu", "unknown --device 'gpu'"),
    pytest.param("cuda", "torch sees no CUDA GPU", marks=pytest.mark.skipif(_cuda(), reason="CUDA is here")),
    pytest.param("cuda:0", "torch sees no CUDA GPU", marks=pytest.mark.skipif(_cuda(), reason="CUDA is here")),
    pytest.param("cuda:99", "torch sees", marks=pytest.mark.skipif(not _cuda(), reason="needs CUDA")),
])
def test_eval_device_is_one_line(device, needle, tmp_path, no_work, capsys):
    from cgan.benchmarks import eval_cli

    assert run(eval_cli.cli, [*_eval_args(tmp_path), "--device", device]) == 2
    _one_line(capsys, needle)


def test_eval_missing_clip_is_refused_before_the_fid_work(tmp_path, no_work, capsys):
    from cgan.benchmarks import eval_cli

    assert run(eval_cli.cli, ["--data", str(tmp_path), "--clip", str(tmp_path / "nope.mp4")]) == 2
    _one_line(capsys, "no such video file")


# ---- 6. cgan-bench train: a given value is checked, never replaced by the default --------------------------------
@pytest.mark.parametrize("argv,needle", [
    (["--size", "0"], "--size must be 24..4096, got 0"),
    (["--size", "30"], "--size must be a multiple of 4"),
    (["--size", "16"], "--size must be 24..4096, got 16"),
    (["--ngf", "0"], "ngf must be an integer 1..1024, got 0"),
    (["--blocks", "0"], "blocks must be an integer 1..64, got 0"),
    (["--iters", "0"], "--iters must be 1..1000000, got 0"),
    (["--batch", "0"], "--batch must be 1..256, got 0"),
    (["--warmup", "-1"], "--warmup must be 0..1000000, got -1"),
    (["--threads", "0"], f"--threads must be 1..{max_threads()}, got 0"),
])
def test_train_refuses_bad_values_instead_of_using_defaults(argv, needle, no_work, capsys):
    assert run(cli, ["train", "--device", "cpu", *argv]) == 2
    _one_line(capsys, needle)


def test_train_options_keep_given_values_and_default_only_missing_ones(no_work):
    got = bench_mod.train_options({"size": 32, "warmup": 0, "iters": 1, "threads": None})
    assert got == dict(size=32, ngf=64, blocks=9, batch=1, device="auto", steps=1, warmup=0, threads=None)
    assert bench_mod.train_options({})["size"] == 256
    with pytest.raises(CganError, match="--size must be 24..4096, got 0"):
        bench_mod.run_train({"size": 0})


def test_outputs_that_are_inputs_are_refused(tmp_path, capsys):
    """`cgan-bench --pair ./pb --json pb/pair.json` replaced the pair's manifest with the result (the pair was
    gone); `cgan-eval --grid testA/0.png` a test photo; `--pair ./missing --json ok.json` wrote a
    "complete": false file over a good earlier result before saying the pair was unknown."""
    import shutil

    from cgan.pairs import resolve

    pair = shutil.copytree(resolve("summer2winter").folder, tmp_path / "pb")
    before = (pair / "pair.json").read_bytes()
    argv = ["--pair", str(pair), "--backends", "ort-cpu", "--sizes", "32x32", "--iters", "1", "--device", "cpu"]
    assert run(cli, argv + ["--json", str(pair / "pair.json")]) == 2
    _one_line(capsys, f"--json {pair / 'pair.json'} is inside the pair folder of --pair")
    assert run(cli, argv + ["--json", str(pair / "new.json")]) == 2  # nothing new inside the pair either
    _one_line(capsys, "which this command reads: write it elsewhere")
    assert (pair / "pair.json").read_bytes() == before and not (pair / "new.json").exists()
    good = tmp_path / "ok.json"
    good.write_text('{"complete": true}')
    assert run(cli, ["--pair", str(tmp_path / "missing"), "--json", str(good)]) != 0
    _one_line(capsys, "missing does not exist")
    assert good.read_text() == '{"complete": true}'
    for sub in (["profile"], ["engines"]):
        assert run(cli, sub + ["--pair", str(pair), "--json", str(pair / "G.safetensors")]) == 2
        _one_line(capsys, "is inside the pair folder of --pair")
    assert (pair / "G.safetensors").stat().st_size > 1000
    # the checks themselves: a file read, a link to it, a folder read
    photo = tmp_path / "testA" / "0.png"
    photo.parent.mkdir()
    photo.write_bytes(b"png")
    (tmp_path / "link.png").symlink_to(photo)
    for out in (photo, tmp_path / "link.png"):
        with pytest.raises(CganError, match="which this command reads"):
            checks.check_outputs([("--grid", out)], inputs=[("--clip", photo)])
    with pytest.raises(CganError, match=r"--grid .* is inside the test photos testA/"):
        checks.check_outputs([("--grid", photo)], inputs=[("the test photos testA/", photo.parent)])
    checks.check_outputs([("--grid", tmp_path / "grid.png")], inputs=[("--clip", photo), ("x", photo.parent)])


# ---- 7. QA 2026-12-04: values that ran for ever, or empty paths taken for the current folder ---------------------
@pytest.mark.parametrize("argv,needle", [
    (["--iters", "99999999999999999999"], "--iters must be 1..1000000, got 99999999999999999999"),
    (["--warmup", "99999999999999"], "--warmup must be 0..1000000, got 99999999999999"),
    (["--workdir", ""], "Invalid value for '--workdir': is empty: give a path"),
])
def test_main_run_refuses_endless_counts_and_an_empty_workdir(argv, needle, no_work, capsys):
    """--iters of 20 digits was taken: the row never ended and its timings filled the memory."""
    assert run(cli, [*TINY_RUN, *argv]) == 2
    _one_line(capsys, needle)


@pytest.mark.parametrize("flag", ["--json", "--grid", "--clip", "--data"])
def test_eval_refuses_an_empty_path(flag, tmp_path, capsys):
    """`--json ""` (an unset variable) said '--json . is a folder'."""
    from cgan.benchmarks import eval_cli

    args = ["--data", str(tmp_path), "--no-clip"] if flag != "--data" else ["--no-clip"]
    assert run(eval_cli.cli, [*args, flag, ""]) == 2
    _one_line(capsys, f"Invalid value for '{flag}': is empty: give a path")


@pytest.mark.parametrize("flag,what", [("--triton", "a folder"), ("--parity-image", "a photo")])
def test_export_refuses_an_empty_path(flag, what, tmp_path, capsys):
    """`--triton ""` was dropped without a word (exit 0, no repository); `--parity-image ""` said it could not
    read '.'."""
    from cgan.export.cli import cli as export_cli

    assert run(export_cli, ["summer2winter", "--out", str(tmp_path / "x"), flag, ""]) == 2
    _one_line(capsys, f"{flag} is empty: give {what}, or leave it out")
    assert not (tmp_path / "x").exists()
