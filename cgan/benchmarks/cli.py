"""cgan-bench: latency, throughput, speed of light and accuracy of every backend against the official baseline.

    cgan-bench          # every backend for the device (CUDA if present, else CPU), 256²/480p/720p/1080p, fp32+fp16, batch 1+4
    cgan-bench --backends ort-cpu,torch-cpu --sizes 256x256,480p --precision fp32 --batch 1 --iters 5
    cgan-bench --pair summer2winter --sizes 720p --json out.json --history benchmarks/history.jsonl --plot out.png
    cgan-bench --device cuda --backends torch-steps --sizes 720p --precision fp16 --batch 1   # each torch speed step
    cgan-bench train --iters 20 --json train.json
    cgan-bench profile --device cuda --size 720p --compile --json profile.json   # where the time goes

Sizes are HEIGHTxWIDTH (multiples of 4, at least 16) or 256, 480p (=480x856), 720p, 1080p. Every option and
output path is checked before any work (cgan.benchmarks.checks). Only thin parsing lives here:
everything is `cgan.benchmarks.bench.run_bench(BenchConfig(...))` / `run_train(...)`.
"""
from __future__ import annotations

import functools
from typing import Any

import click

from cgan._cli import GivenPath, entry, given_flags
from cgan.benchmarks.checks import check_batch, check_int, check_outputs, check_positive_float
from cgan.benchmarks.variants import tokens_help
from cgan.errors import BackendUnavailable, CganError


def _outputs(f):
    @click.option("--json", "json_path", type=click.Path(), help="Write the full result here.")
    @click.option("--history", type=click.Path(),
                  help="Append one line per run to this JSONL file (e.g. benchmarks/history.jsonl).")
    @click.option("--plot", "plot_path", type=click.Path(),
                  help="Write a PNG: latency by resolution per backend, and fps over the history.")
    @click.option("-q", "--quiet", is_flag=True, help="No per-row progress on stderr.")
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return f(*args, **kwargs)
    return wrapper


def emit(result: dict[str, Any], json_path: str | None, history: str | None, plot_path: str | None) -> None:
    """Print the table and write the requested files (JSON first: it is validated against the schema)."""
    from cgan.benchmarks.report import append_history, format_table, read_history, write_result

    env = result["env"]
    where = env.get("gpu") or f"CPU {env.get('host_cpu')} ({env.get('cpu_count')} cores)"
    click.echo(f"cgan-bench {result['kind']} on {where}; torch {env.get('torch')}, onnxruntime "
               f"{env.get('onnxruntime')}, tensorrt {env.get('tensorrt')}; cgan {env.get('cgan')} "
               f"{(env.get('git_sha') or '')[:12]}")
    click.echo(format_table(result["rows"]))
    if json_path:
        write_result(json_path, result)
        click.echo(f"wrote {json_path}")
    measured = any(r["status"] == "ok" for r in result["rows"])
    if history and measured:  # (a line of skipped rows only would be a run with no figures in the record)
        append_history(history, result)
        click.echo(f"appended to {history}")
    if plot_path and measured:
        from cgan.benchmarks.plot import plot_result

        plot_result(result, plot_path, read_history(history) if history else None)
        click.echo(f"wrote {plot_path}")
    failed = [r for r in result["rows"] if r["status"] == "error"]
    if failed:
        raise CganError(f"{len(failed)} row(s) failed (status 'error'); see 'not measured' above")
    if not measured:  # (it exited 0: a script or a GPU lease took a run without figures for a result)
        left = " and ".join(f"{option} {path}" for option, path in (("--history", history), ("--plot", plot_path))
                            if path)
        raise BackendUnavailable("nothing was measured: every row was skipped (see 'not measured' above)"
                                 + (f"; {left} left as they were" if left else ""))


def _pair_input(pair: str | None) -> list[tuple[str, Any]]:
    """The folder of --pair (resolved now: an unknown one is said before anything is written), as an input no
    output may be written into (check_outputs)."""
    if pair is None:
        return []
    from cgan.pairs import resolve

    found = resolve(pair)
    return [(f"the {found.kind} folder of --pair", found.folder)]


def _random_only(pair: str | None) -> None:
    """--blocks/--ngf shape the random generator; with --pair they would be recorded, not used: refused."""
    ctx = click.get_current_context()
    given = given_flags(ctx, ("blocks", "ngf"))
    if pair is not None and given:
        raise CganError(f"{'/'.join(given)} shape{'s' if len(given) == 1 else ''} the random generator, and --pair "
                        f"{pair} has its own architecture: leave {'it' if len(given) == 1 else 'them'} out")


def _needs(ctx: click.Context, names: tuple[str, ...], on: bool, flag: str, what: str) -> None:
    """Options that only matter with `flag` were silently dropped (and still recorded in the config) without it."""
    given = given_flags(ctx, names)
    if given and not on:
        one = len(given) == 1
        raise CganError(f"{'/'.join(given)} {'is' if one else 'are'} only used with {flag} ({what}): add {flag} "
                        f"or leave {'it' if one else 'them'} out")


def _progress(quiet: bool):
    def show(row: dict[str, Any]) -> None:
        if quiet:
            return
        what = f"{row['backend']} {row['precision']} b{row['batch']} {row['height']}x{row['width']}"
        if row["status"] == "ok":
            click.echo(f"  {what}: p50 {row['p50_ms']:.2f} ms, {row['fps']:.3g} fps" if row.get("p50_ms") is not None
                       and row.get("fps") is not None else f"  {what}: done", err=True)
        else:
            click.echo(f"  {what}: {row['status']}: {row['reason']}", err=True)
    return show


def _checkpoint(json_path: str | None):
    """Rewrite --json after every row (`"complete": false`), so a killed run keeps the rows it finished. The first
    write comes once every option has been checked (check_before_work too): a mistyped --direction replaced the
    previous result with an empty one."""
    if not json_path:
        return None

    def write(partial: dict[str, Any]) -> None:
        from cgan.benchmarks.report import write_result

        try:
            write_result(json_path, partial)
        except (CganError, OSError) as e:  # the final write reports it; a partial one must not stop the run
            click.echo(f"warning: cannot write the partial result to {json_path}: {e}", err=True)
    return write


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--pair", "source", help="Pair/export name or folder (default: random-weight 9-block ngf-64 generator).")
@click.option("--direction", help="G/F or e.g. summer2winter (default: the first the pair holds).")
@click.option("--blocks", type=int, default=9, show_default=True, help="Random generator only: residual blocks.")
@click.option("--ngf", type=int, default=64, show_default=True, help="Random generator only: base channels.")
@click.option("--backends", default="all", show_default=True,
              help="Comma list of tensorrt, tensorrt-rtx, ort-cuda, ort-cpu, torch-cuda, torch-cpu; "
                   "'all' = every backend for --device; 'none' = baseline only. Variants NAME+OPTION+...: "
                   f"{tokens_help()}; e.g. torch-cuda+compile+graph. 'torch-steps' = torch-cuda, +graph, "
                   "+compile, +compile+graph (cpu: torch-cpu, +cl, +compile).")
@click.option("--sizes", default="256x256,480p,720p,1080p", show_default=True,
              help="Comma list of HEIGHTxWIDTH (multiples of 4, at least 16) or 256, 480p (480x856), 720p, 1080p.")
@click.option("--precision", "precisions", default="fp32,fp16", show_default=True, help="fp32, fp16 or both.")
@click.option("--batch", "batches", default="1,4", show_default=True, help="Comma list of batch sizes (1..256).")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed calls before timing.")
@click.option("--iters", type=int, default=20, show_default=True, help="Timed calls per row.")
@click.option("--seconds", type=float, help="Time each row for this many seconds instead of --iters calls.")
@click.option("--budget", "budget_s", type=float,
              help="Skip the rows that would start after this many seconds of the run (a started row finishes: "
                   "a compile cannot be cut short). --json is rewritten after every row either way.")
@click.option("--device", type=click.Choice(["cuda", "cpu"]), help="Baseline device and 'all' (default: cuda if any).")
@click.option("--threads", type=int, help="CPU threads for the baseline and CPU backends (default: theirs).")
@click.option("--note", help="Free text stored in the result's config (e.g. 'CPU, shared 2-core VM').")
@click.option("--no-baseline", is_flag=True, help="Skip the eager FP32 baseline rows (no speedups then).")
@click.option("--e2e/--no-e2e", default=False, show_default=True,
              help="Add the end-to-end row: a generated clip through cgan-video (decode, translate, encode).")
@click.option("--e2e-frames", type=int, default=48, show_default=True, help="Frames in the end-to-end clip.")
@click.option("--e2e-size", default="720p", show_default=True, help="Size of the end-to-end clip.")
@click.option("--e2e-backend", help="Backend or variant of the end-to-end row (default: the first of --backends "
              "that is not torch-cpu).")
@click.option("--workdir", type=GivenPath(file_okay=False), help="Cache for the random pair and exports "
              "(default $CGAN_HOME/bench).")
@click.option("--rebuild", is_flag=True, help="Re-create the cached random pair and export.")
@_outputs
@click.pass_context
def cli(ctx: click.Context, json_path, history, plot_path, quiet, **kw) -> None:
    """Benchmark every backend × size × precision × batch against the official eager FP32 baseline."""
    if ctx.invoked_subcommand is not None:  # the main run's options before a sub-command were silently dropped
        given = given_flags(ctx, [p.name for p in ctx.command.params if p.name != "help"])
        if given:
            sub = ctx.invoked_subcommand
            raise CganError(f"{', '.join(given)} before `{sub}` belong{'s' if len(given) == 1 else ''} to the main "
                            f"benchmark, not to `cgan-bench {sub}`: put the sub-command's own options after its name "
                            f"(see cgan-bench {sub} --help)")
        return
    from cgan._cli import setup_logging
    from cgan.benchmarks.bench import (BenchConfig, PRECISIONS, check_before_work, parse_backends, parse_batches,
                                       parse_choices, parse_e2e_backend, parse_list, parse_size, parse_sizes,
                                       run_bench)

    setup_logging(False)
    _random_only(kw["source"])
    device = kw["device"]
    backends = parse_list(kw["backends"])
    if not backends:  # (an empty shell variable ran the baseline alone)
        raise CganError("--backends is empty: give e.g. ort-cpu,torch-cpu, 'all', or 'none' for the baseline alone")
    parse_backends(backends, device or "cpu")  # fail fast on unknown names, before anything is built
    if kw["e2e_backend"]:
        parse_e2e_backend(kw["e2e_backend"], device or "cpu")
    cfg = BenchConfig(
        source=kw["source"], direction=kw["direction"], blocks=kw["blocks"], ngf=kw["ngf"],
        backends=tuple(backends), sizes=parse_sizes(kw["sizes"]),
        precisions=parse_choices(parse_list(kw["precisions"]), PRECISIONS, "precision"),
        batches=parse_batches(kw["batches"]), warmup=kw["warmup"], iters=kw["iters"], seconds=kw["seconds"],
        device=device, threads=kw["threads"], baseline=not kw["no_baseline"], e2e=kw["e2e"],
        e2e_frames=kw["e2e_frames"],
        e2e_size=parse_size(kw["e2e_size"]), e2e_backend=kw["e2e_backend"], workdir=kw["workdir"],
        rebuild=kw["rebuild"], note=kw["note"], budget_s=kw["budget_s"])
    _needs(ctx, ("e2e_backend", "e2e_size", "e2e_frames"), kw["e2e"], "--e2e", "the end-to-end row")
    if kw["seconds"] is not None and given_flags(ctx, ("iters",)):  # --seconds replaced --iters, recorded as run
        raise CganError("--iters and --seconds both say how long each row is timed: give one of them")
    # before any work, not after it; the pair is resolved first: an unknown one wrote a "complete": false file
    # over the previous result
    from cgan.benchmarks.bench import _workdir, random_folder

    # the cache's own folders (--json in its random pair replaced that pair's manifest); the rest of --workdir
    # (`--workdir .` beside the results) stays free
    cache = [("the benchmark's cache (--workdir)", f) for f in
             (_workdir(cfg) / "exports", *([random_folder(cfg)] if cfg.source is None else []))]
    check_outputs([("--json", json_path)], history=history, plot=plot_path,
                  inputs=_pair_input(kw["source"]) + cache)
    check_before_work(cfg)
    result = run_bench(cfg, on_row=_progress(quiet), checkpoint=_checkpoint(json_path))
    emit(result, json_path, history, plot_path)


@cli.command("train")
@click.option("--iters", type=int, default=20, show_default=True, help="Timed training iterations.")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed iterations first.")
@click.option("--batch", type=int, default=1, show_default=True, help="Batch size.")
@click.option("--size", type=int, default=256, show_default=True, help="Crop size (square).")
@click.option("--blocks", type=int, default=9, show_default=True, help="Generator residual blocks.")
@click.option("--ngf", type=int, default=64, show_default=True, help="Generator base channels.")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), help="auto (default): cuda if any.")
@click.option("--threads", type=int, default=None, help="CPU threads for torch (default: torch's).")
@_outputs
def train_cmd(json_path, history, plot_path, quiet, **kw) -> None:
    """The trainer's iterations/s (cgan.benchmarks.train_speed), in cgan-bench's table and JSON format."""
    from cgan.benchmarks.bench import run_train, train_options

    train_options(kw)  # every value checked (one line) before the outputs and any work
    check_outputs([("--json", json_path)], history=history, plot=plot_path)
    result = run_train(kw)
    emit(result, json_path, history, plot_path)


@cli.command("profile")
@click.option("--pair", help="Pair/export name or folder (default: random-weight 9-block ngf-64 generator).")
@click.option("--blocks", type=int, default=9, show_default=True, help="Random generator only: residual blocks.")
@click.option("--ngf", type=int, default=64, show_default=True, help="Random generator only: base channels.")
@click.option("--device", type=click.Choice(["cuda", "cpu"]), help="Default: cuda if any.")
@click.option("--size", default="720p", show_default=True, help="HEIGHTxWIDTH or 256, 480p, 720p, 1080p.")
@click.option("--precision", type=click.Choice(["fp16", "fp32"]), help="Default: fp16 on cuda, fp32 on cpu.")
@click.option("--batch", type=int, default=1, show_default=True)
@click.option("--iters", type=int, default=10, show_default=True, help="Profiled calls.")
@click.option("--warmup", type=int, default=3, show_default=True, help="Calls before (compile, autotune).")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the generator.")
@click.option("--compile-mode", help="torch.compile mode (default: the backend's).")
@click.option("--memory-format", type=click.Choice(["auto", "channels_last", "nchw"]), default="auto",
              show_default=True)
@click.option("--json", "json_path", type=click.Path(), help="Write the breakdown here.")
def profile_cmd(pair, blocks, ngf, device, size, precision, batch, iters, warmup, compile_, compile_mode,
                memory_format, json_path) -> None:
    """Where the time goes: the torch path's kernels grouped into convolution, instance norm, padding,
    layout, element-wise and compiled work (torch.profiler; no CUDA graph, which would hide the kernels)."""
    from cgan._files import write_json_atomic
    from cgan.benchmarks.bench import default_device, parse_size, random_pair
    from cgan.benchmarks.profile import format_profile, run_profile
    from cgan.pairs import cgan_home

    _random_only(pair)
    height, width = parse_size(size)
    check_batch(batch)
    check_int(iters, "--iters", 1, 1_000_000)
    check_int(warmup, "--warmup", 0, 1_000_000)
    if compile_mode and not compile_:
        raise CganError("--compile-mode needs --compile")
    check_outputs([("--json", json_path)], inputs=_pair_input(pair))
    device = device or default_device()
    precision = precision or ("fp16" if device == "cuda" else "fp32")
    source = pair or str(random_pair(cgan_home() / "bench" / f"random-b{blocks}-ngf{ngf}", blocks, ngf))
    opts = {"memory_format": memory_format}
    if compile_:
        opts["compile"] = True
        if compile_mode:
            opts["compile_mode"] = compile_mode
    elif compile_mode:
        raise CganError("--compile-mode needs --compile")
    result = run_profile(source, device, height, width, precision, batch, iters, warmup, opts)
    click.echo(format_profile(result))
    if json_path:
        write_json_atomic(json_path, result)
        click.echo(f"wrote {json_path}")


@cli.command("engines")
@click.option("--pair", help="Pair/export name or folder (default: random-weight 9-block ngf-64 generator).")
@click.option("--blocks", type=int, default=9, show_default=True, help="Random generator only: residual blocks.")
@click.option("--ngf", type=int, default=64, show_default=True, help="Random generator only: base channels.")
@click.option("--trt-flavour", type=click.Choice(["auto", "tensorrt", "tensorrt-rtx"]), default="auto",
              show_default=True)
@click.option("--trt-target", help="Compute capability to build for ahead of time, without that GPU here "
              "(TensorRT-RTX only), e.g. 8.9.")
@click.option("--shapes", default="256x256,720x1280,1080x1920", show_default=True, help="Profile min,opt,max HxW.")
@click.option("--batch", default="1,1,4", show_default=True, help="Profile min,opt,max batch.")
@click.option("--prepost/--no-prepost", default=True, show_default=True,
              help="Also build the uint8 BGR pre/post graphs' engines.")
@click.option("--opt-level", type=click.IntRange(0, 5), default=3, show_default=True)
@click.option("--workspace-gb", type=float, help="Cap on the builder's scratch memory (default: the library's).")
@click.option("--note", help="Free text stored in the JSON (e.g. the machine).")
@click.option("--json", "json_path", type=click.Path(), help="Write the rows here.")
def engines_cmd(pair, blocks, ngf, trt_flavour, trt_target, shapes, batch, prepost, opt_level, workspace_gb, note,
                json_path) -> None:
    """FP16 TensorRT / TensorRT-RTX engine build time and plan size per graph (G, F; NCHW and pre/post)."""
    from cgan._files import write_json_atomic
    from cgan.benchmarks.bench import random_pair
    from cgan.benchmarks.engines import format_engines, run_engine_builds
    from cgan.export.tensorrt import MAX_WORKSPACE_GB, make_profile
    from cgan.pairs import cgan_home

    _random_only(pair)
    profile = make_profile(shapes, batch)  # sizes and batches checked before the random pair or any build
    for b in profile.batch:
        check_batch(b)
    check_positive_float(workspace_gb, "--workspace-gb", maximum=MAX_WORKSPACE_GB)
    check_outputs([("--json", json_path)], inputs=_pair_input(pair))
    source = pair or str(random_pair(cgan_home() / "bench" / f"random-b{blocks}-ngf{ngf}", blocks, ngf))
    result = run_engine_builds(source, flavour=trt_flavour, target=trt_target, shapes=shapes, batch=batch,
                               prepost=prepost, opt_level=opt_level, workspace_gb=workspace_gb, note=note,
                               model=None if pair else f"random b{blocks} ngf{ngf}")
    click.echo(format_engines(result))
    if json_path:
        write_json_atomic(json_path, result)
        click.echo(f"wrote {json_path}")


main = entry(cli, sigterm=True)  # (`timeout` ends a run with SIGTERM: its staging folder was left)

if __name__ == "__main__":  # pragma: no cover
    main()
