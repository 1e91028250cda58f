"""`cgan-export PAIR [--out DIR]`: thin click front end over `cgan.export.api.run_export`."""
from __future__ import annotations

import click

from cgan._cli import entry, given_flags, setup_logging, sigterm_as_interrupt
from cgan.errors import CganError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("pair", required=False)
@click.option("--out", "-o", type=click.Path(file_okay=False),
              help="Export folder to write (default for a pair name or --pretrained NAME: $CGAN_HOME/exports/NAME, "
              "where --pair NAME finds it first).")
@click.option("--pretrained", metavar="NAME", help="Download an official CycleGAN model (e.g. summer2winter, horse2zebra, style_monet) instead of PAIR.")
@click.option("--base-url", metavar="URL", help="Where --pretrained downloads from: http(s):// or file:// URL, or a local folder of .pth files (default: official server, or $CGAN_PRETRAINED_URL).")
@click.option("--fp16/--no-fp16", default=True, show_default=True, help="Also write G.fp16.onnx / F.fp16.onnx.")
@click.option("--fp16-io", is_flag=True, help="FP16 graphs take and return float16 (default float32).")
@click.option("--with-prepost", is_flag=True, help="Also write *.prepost.onnx: uint8 NHWC BGR frames in and out.")
@click.option("--simplify/--no-simplify", default=True, show_default=True, help="Simplify graphs with onnxslim.")
@click.option("--pad-mode", type=click.Choice(["reflect", "slice"]), default="reflect", show_default=True,
              help="Reflection padding as ONNX Pad(reflect) or as Slice+Concat (for TensorRT versions rejecting it).")
@click.option("--opset", type=int, default=17, show_default=True)
@click.option("--parity/--no-parity", default=True, show_default=True, help="Verify ONNX Runtime vs PyTorch.")
@click.option("--parity-image", type=click.Path(dir_okay=False), help="A real photo for the parity check.")
@click.option("--parity-sizes", default="64x96,128x192", show_default=True, help="Parity image sizes HxW,...")
@click.option("--engine", is_flag=True, help="Build FP16 TensorRT engines (needs a GPU and cgan[tensorrt]).")
@click.option("--trt-flavour", type=click.Choice(["auto", "tensorrt", "tensorrt-rtx"]), default="auto", show_default=True)
@click.option("--trt-target", help="Build engines ahead of time for this compute capability (e.g. 8.9, 12.0) "
              "without that GPU here: TensorRT-RTX only.")
@click.option("--shapes", default="256x256,720x1280,1080x1920", show_default=True, help="Engine profile min,opt,max HxW.")
@click.option("--batch", default="1,1,4", show_default=True, help="Engine profile min,opt,max batch.")
@click.option("--opt-level", type=click.IntRange(0, 5), default=3, show_default=True, help="TensorRT builder optimization level.")
@click.option("--workspace-gb", type=float, help="Cap on the builder's scratch memory (default: the library's, "
              "all the GPU's memory; a 4 GB cap made TensorRT-RTX fail the default profile's 4x1080p at ngf 64).")
@click.option("--triton", type=click.Path(file_okay=False), help="Also write a Triton model repository here.")
@click.option("--force", is_flag=True, help="Rebuild even if OUT already holds this exact export.")
@click.option("--in-pair", is_flag=True, help="Instead of an export folder, write an FP32 ONNX graph per generator "
              "into the pair folder itself, reading the pair's own weights (no copy): ONNX Runtime then runs the "
              "pair without torch or an export. Takes PAIR and the --parity-*/--opset options only.")
@click.option("--verbose", "-v", is_flag=True)
def cli(pair, out, pretrained, base_url, fp16, fp16_io, with_prepost, simplify, pad_mode, opset, parity,
        parity_image, parity_sizes, engine, trt_flavour, trt_target, shapes, batch, opt_level, workspace_gb, triton,
        force, in_pair, verbose):
    """Export a CycleGAN pair (folder or name) to ONNX FP32/FP16 (+ TensorRT engines) in --out (default for a
    name: $CGAN_HOME/exports/NAME)."""
    from cgan.export.api import ExportOptions, parse_parity_sizes, run_export

    setup_logging(verbose)
    engine_only = given_flags(click.get_current_context(), ("trt_flavour", "shapes", "batch", "opt_level",
                                                            "workspace_gb"))
    if engine_only and not engine and not in_pair:  # (they were dropped without a word, malformed or not)
        raise CganError(f"{', '.join(engine_only)} set{'s' if len(engine_only) == 1 else ''} up TensorRT engines: "
                        f"add --engine, or leave {'it' if len(engine_only) == 1 else 'them'} out")
    if not parity and given_flags(click.get_current_context(), ("parity_sizes",)):
        raise CganError("--parity-sizes are the sizes of the parity check, which --no-parity turns off: drop one")
    if in_pair:
        with sigterm_as_interrupt():
            folder = _in_pair(pair, parity, parity_image, parse_parity_sizes(parity_sizes), opset)
        click.echo(str(folder))
        return
    opts = ExportOptions(fp16=fp16, fp16_io=fp16_io, with_prepost=with_prepost, simplify=simplify,
                         pad_mode=pad_mode, opset=opset, parity=parity, parity_image=parity_image,
                         parity_sizes=parse_parity_sizes(parity_sizes), engine=engine, shapes=shapes, batch=batch,
                         opt_level=opt_level, workspace_gb=workspace_gb, trt_flavour=trt_flavour,
                         trt_target=trt_target, triton=triton, pretrained=pretrained, base_url=base_url, force=force)
    with sigterm_as_interrupt():
        folder = run_export(pair, out, opts)
    click.echo(str(folder))


def _in_pair(pair, parity, parity_image, sizes, opset):
    """`--in-pair`: the pair's weight-sharing graphs (cgan.export.pair_graph); returns the pair folder."""
    from cgan.export import parity as parity_mod
    from cgan.export.pair_graph import add_pair_graphs

    ctx = click.get_current_context()
    takes = {"pair", "in_pair", "parity", "parity_image", "parity_sizes", "opset", "verbose"}
    others = given_flags(ctx, (name for name in ctx.params if name not in takes))
    if others:
        raise CganError(f"--in-pair writes graphs into the pair folder and takes only PAIR, --parity-image, "
                        f"--parity-sizes and --opset; drop {', '.join(others)}")
    if not pair:
        raise CganError("--in-pair needs PAIR: a pair name or folder")
    if not parity:
        raise CganError("--in-pair always checks parity (a pair's graph is used without further checks); drop "
                        "--no-parity")
    frames, _ = parity_mod.parity_frames(sizes, parity_image)
    return add_pair_graphs(pair, parity_frames=frames, opset=opset).folder


main = entry(cli)

if __name__ == "__main__":
    main()
