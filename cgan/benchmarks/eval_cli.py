"""cgan-eval: the quality report of a pair (FID/KID on the test photos, FP16 PSNR, demo-clip flicker, grid).

    cgan-eval --pair summer2winter --data ../shared/datasets/summer2winter_yosemite --json report.json \\
              --grid docs/img/summer2winter_grid.png
    cgan-eval --limit 20 --no-clip --psnr-photos 0          # a quick look
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from cgan._limits import limit_opencv_decoding

limit_opencv_decoding()  # before anything loads OpenCV

import click  # noqa: E402

from cgan._cli import GivenPath, entry, setup_logging
from cgan._codecs import quiet_opencv
from cgan.benchmarks.quality import DEFAULT_CLIP, EvalOptions, evaluate


def summary(report: dict) -> str:
    lines = []
    for name, m in report["metrics"].items():
        spread = f"± {m['kid_std']:.4f}" if m.get("kid_std") is not None else "(no spread to give)"
        lines.append(f"{name:24s} FID {m['fid']:8.2f}   KID {m['kid']:.4f} {spread}   ({m['compare']})")
    # the published figures are no yardstick for a report with a few photos (its warning says so): not printed
    pub = {} if report.get("dataset", {}).get("warning") else report.get("published", {})
    for name in ("summer2winter", "winter2summer"):
        if name in pub:
            lines.append(f"published {name:14s} FID {pub[name]['fid']:8.2f}   ({pub['source']})")
    fp16 = report.get("fp16_vs_fp32", {})
    for name, v in fp16.items():
        if isinstance(v, dict):
            e = v["fp16_activations_emulated"]
            lines.append(f"FP16 vs FP32 {name:11s} PSNR (FP16 activations emulated) mean {e['mean_db']:.1f} dB, "
                         f"min {e['min_db']:.1f} dB; ORT CPU FP16 graph min {v['onnxruntime_cpu_min_db']:.1f} dB "
                         f"over {v['images']} photos")
        else:
            lines.append(f"FP16 vs FP32: {v}")
    clip = report.get("demo_clip")
    if clip:
        lines.append(f"demo clip {clip['clip']}: {clip['frames']} frames translated in {clip['translate_seconds']:.1f} s "
                     f"({clip['seconds_per_frame']:.2f} s/frame), flicker index {clip['flicker_index']:.3f}")
    if "grid" in report:
        lines.append(f"grid: {report['grid']['path']} ({report['grid']['bytes']} bytes)")
    lines.append(f"total {report['timings']['total_seconds']:.0f} s on {report['device']['name']}")
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--pair", default="summer2winter", show_default=True, help="pair name or folder (needs G and F)")
@click.option("--data", type=GivenPath(path_type=Path), default=None,
              help="folder with testA/ testB/ (default ../shared/datasets/summer2winter_yosemite if present)")
@click.option("--limit", type=click.IntRange(min=2), default=None, help="use only the first N photos per side")
@click.option("--dedup", is_flag=True, help="drop test photos byte-identical to a training photo (or each other)")
@click.option("--json", "json_out", type=GivenPath(path_type=Path), default=None, help="write the report here")
@click.option("--grid", "grid_out", type=GivenPath(path_type=Path), default=None, help="write a sample grid PNG")
@click.option("--grid-photos", type=click.IntRange(1, 8), default=5, show_default=True,
              help="test photos per direction in the grid")
@click.option("--device", default="cpu", show_default=True, help="torch device for the generators and Inception")
@click.option("--clip", type=GivenPath(path_type=Path), default=DEFAULT_CLIP, show_default=True,
              help="clip for the flicker index and translate timing")
@click.option("--no-clip", is_flag=True, help="skip the demo clip")
@click.option("--psnr-photos", type=click.IntRange(min=0), default=16, show_default=True,
              help="photos per direction for the FP16-vs-FP32 PSNR (0 skips)")
@click.option("--kid-subsets", type=click.IntRange(min=1), default=100, show_default=True,
              help="KID is averaged over this many random subsets of the photos (its ± is their spread)")
@click.option("-v", "--verbose", is_flag=True)
def cli(pair: str, data: Path | None, limit: int | None, dedup: bool, json_out: Path | None, grid_out: Path | None,
        grid_photos: int, device: str, clip: Path, no_clip: bool, psnr_photos: int, kid_subsets: int,
        verbose: bool) -> None:
    """FID/KID of a pair's two directions on the test photos, with the untranslated baseline."""
    setup_logging(verbose)
    quiet_opencv("WARNING" if verbose else "SILENT")  # (its decoders' own lines for a broken photo)
    logging.getLogger("cgan.eval").setLevel(logging.INFO)
    opts = EvalOptions(pair=pair, data=data, limit=limit, dedup=dedup, device=device, json_out=json_out,
                       grid_out=grid_out, grid_photos=grid_photos, clip=None if no_clip else clip,
                       psnr_photos=psnr_photos, kid_subsets=kid_subsets)
    report = evaluate(opts)
    click.echo(summary(report))
    if json_out is None:
        click.echo(json.dumps(report["metrics"], indent=2))


main = entry(cli, sigterm=True)

if __name__ == "__main__":
    main()
