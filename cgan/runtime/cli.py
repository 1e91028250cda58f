"""`cgan-video`: translate a camera, video file or stream in real time (thin CLI over `run_video`), a folder of
videos one after another (`run_video_folder`), or photos (`run_photos`, when every --input is a photo file or a
folder with photos)."""
from __future__ import annotations

from cgan._limits import limit_opencv_decoding

limit_opencv_decoding()  # before anything loads OpenCV (photos in PPM/PGM are held to it)

import click  # noqa: E402

from cgan._cli import entry, given_flags, setup_logging  # noqa: E402
from cgan.errors import CganError  # noqa: E402
from cgan.runtime.batch import run_video_folder, video_folder  # noqa: E402
from cgan.runtime.photos import METADATA, PhotoJob, is_photo_input, run_photos  # noqa: E402
from cgan._codecs import quiet_opencv  # noqa: E402
from cgan.runtime.video import CODEC_CHOICES, MAX_CRF, VideoJob, run_video  # noqa: E402
from cgan.runtime.backends.torch_backend import COMPILE_MODES  # noqa: E402

EXIT_INTERRUPTED = {"interrupted": 130, "terminated": 143}


class _Strength(click.FloatRange):
    """A float in [0, 1), NaN refused (it passed the range's comparisons and failed later, naming a field)."""

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        rv = super().convert(value, param, ctx)
        if rv != rv:
            self.fail(f"{value!r} is not a number", param, ctx)
        return rv


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--pair", default="summer2winter", show_default=True,
              help="Pair name, pair folder or export folder.")
@click.option("--direction", default=None, help="G, F, summer2winter, winter2summer (default: the one --pair names, "
              "as winter2summer does, else the pair's first).")
@click.option("--input", "inputs", multiple=True, default=("0",), show_default=True,
              help="Camera index, device (/dev/video0), video file, rtsp/http URL, or 'demo'. Repeat for "
                   "several streams batched through one model. A folder of videos: each in turn. Photos: a photo "
                   "file, a folder, or a quoted pattern ('trip/*.jpg').")
@click.option("--output", "outputs", multiple=True, metavar="TEXT",
              help="Output video (.mp4, .avi, .mkv, .mov, .m4v); several inputs write out_0.mp4, out_1.mp4, ... "
                   "A folder of videos: a folder (same names). Photos: a photo file (one photo in) or a folder.")
@click.option("--display/--no-display", default=None,
              help="Show a window (q/ESC quits). Default: when this OpenCV has a GUI and a display.")
@click.option("--side-by-side", is_flag=True, help="Input and output next to each other.")
@click.option("--fps-overlay", is_flag=True, help="Draw the running fps on the frames.")
@click.option("--size", default="native", show_default=True,
              help="native, 360p..2160p, WxH (e.g. 1280x720), N (long side N pixels), or max:N (long side at most N: "
                   "only larger frames shrink).")
@click.option("--capture", default=None,
              help="Cameras: the mode to ask for, WxH[@FPS] or 720p/1080p[@FPS] (as MJPG, which USB cameras need "
                   "for large sizes at full rate); 'default' keeps the camera's own. Default: the --size when it "
                   "names one (720p, WxH), else the camera's own (often 640x480).")
@click.option("--virtual-camera", is_flag=False, flag_value="auto", default=None, metavar="[DEVICE]",
              help="Also send the translation to a virtual webcam that Zoom, Meet or OBS can pick (pyvirtualcam; "
                   "v4l2loopback on Linux, OBS's virtual camera on Windows/macOS); optionally its device "
                   "(/dev/video10). One --input.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None,
              help="Stop after N frames read per input (live: dropped frames count); photos: N photos in all.")
@click.option("--start", default=None, metavar="TIME",
              help="Video files: translate from this time on (seconds, or [HH:]MM:SS[.ms] as ffmpeg's -ss: 90, "
                   "1:30, 01:02:03.5); the output holds that part, with its sound.")
@click.option("--end", default=None, metavar="TIME",
              help="Video files: stop at this time in the file (as --start; ffmpeg's -to).")
@click.option("--backend", default="auto", show_default=True,
              help="auto, tensorrt, tensorrt-rtx, ort-cuda, ort-cpu, torch.")
@click.option("--precision", default=None, help="fp32 or fp16 (default: the backend's best).")
@click.option("--compile", "compile_", is_flag=True,
              help="torch.compile the generator (--backend torch; compiles on the first frame, can take a minute).")
@click.option("--compile-mode", type=click.Choice(COMPILE_MODES), default=None,
              help="torch.compile's mode (implies --compile): max-autotune-no-cudagraphs (the default: autotunes, "
                   "about a minute per frame size on a GPU), default (no autotuning: seconds; on an H200 5.6 ms per "
                   "720p frame with --cuda-graphs), max-autotune or reduce-overhead (these capture CUDA graphs "
                   "themselves: no --cuda-graphs).")
@click.option("--cuda-graphs/--no-cuda-graphs", default=None,
              help="Replay one captured CUDA graph per frame size (--backend torch, ort-cuda, tensorrt, "
                   "tensorrt-rtx). Default: the backend's (torch off; ort-cuda, tensorrt on; tensorrt-rtx: its own "
                   "graphs, on).")
@click.option("--smooth", is_flag=True, help="Reduce frame-to-frame flicker (static regions only; no ghosting).")
@click.option("--smooth-strength", type=_Strength(0.0, 1.0, max_open=True), default=0.8, show_default=True,
              help="History weight in static regions (implies --smooth).")
@click.option("--smooth-flow", is_flag=True,
              help="Warp the history with optical flow: smooths pans too (implies --smooth).")
@click.option("--codec", type=click.Choice(CODEC_CHOICES, case_sensitive=False), default="auto", show_default=True,
              help="Output codec: auto is H.264 (plays in every player and browser; PyAV) for .mp4/.m4v/.mov/.mkv "
                   "and MJPG for .avi; mp4v (MPEG-4 part 2) and mjpg are OpenCV's own, faster to encode.")
@click.option("--crf", type=click.IntRange(0, MAX_CRF), default=None, metavar="0-51",
              help="H.264 outputs' quality: lower is better and larger (51 smallest; each +6 about halves the "
                   "file; 0 is lossless, which browsers and phones do not play). Default: 20.")
@click.option("--sound/--no-sound", default=True, show_default=True,
              help="Copy a video file's sound into its output (packets copied, or encoded as AAC where the "
                   "container refuses them; into .avi written as PCM to stay in step; cut to the frames written; "
                   "needs PyAV, which the extras install).")
@click.option("--metadata", type=click.Choice(METADATA), default="all", show_default=True,
              help="Photos: copy EXIF data (camera, date, GPS; orientation and size updated, thumbnail left out), XMP "
                   "(keywords, ratings, captions) and the ICC colour profile into .jpg/.png/.webp/.avif outputs "
                   "(all), only the profile (color), or nothing.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar for files.")
@click.option("--reconnects", type=click.IntRange(min=0), default=3, show_default=True,
              help="Reopen attempts for a live source that stops, or a recorded video over http that stops before its "
                   "end (waits double from 0.5 s, at most 30 s).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-v", "--verbose", is_flag=True,
              help="Debug logging (and OpenCV warnings; with --json only its errors: it prints warnings on stdout).")
def cli(pair, direction, inputs, outputs, display, side_by_side, fps_overlay, size, capture, virtual_camera,
        max_frames, start, end, backend, precision, compile_, compile_mode, cuda_graphs, smooth, smooth_strength,
        smooth_flow, codec, crf, sound, metadata, progress, reconnects, as_json, verbose):
    """Translate video frames with a CycleGAN generator: capture -> translate -> write/show, threaded.

    Photos too: when every --input is a photo file or a folder, each photo is translated to --output (a file
    for one photo, else a folder: same names and formats)."""
    setup_logging(verbose)
    if len(outputs) > 1:
        # (one --output per --input was taken as pairs, while the last alone was written: out_0.mp4, out_1.mp4 ...)
        raise CganError(f"--output is given {len(outputs)} times ({', '.join(outputs)}): give it once; with several "
                        f"--input, out.mp4 is written as out_0.mp4, out_1.mp4, ... (or run once per input)")
    output = outputs[0] if outputs else None
    # OpenCV prints its (and FFmpeg's) warnings on standard output, where --json's summary goes: errors only then
    quiet_opencv(("ERROR" if as_json else "WARNING") if verbose else "SILENT")
    if output is not None and not output.strip():
        raise CganError("--output is empty: name a file (e.g. out.mp4, or out.jpg for a photo) or a folder, or "
                        "leave --output out")
    folder = video_folder(inputs)  # a folder of videos (and no photos): each video in turn
    if folder is None and len(inputs) > 1:
        for value in inputs:
            if video_folder([value]) is not None:
                raise CganError(f"--input {value} is a folder of videos, which must be the only --input: translate "
                                f"it in a run of its own")
    photos = [is_photo_input(i) for i in inputs] if folder is None else [False]
    if any(photos):
        if not all(photos):
            raise CganError("--input mixes photos with videos, cameras or streams: translate them in separate runs")
        _refuse_video_only(click.get_current_context())
        job = PhotoJob(inputs=list(inputs), output=output, pair=pair, direction=direction, size=size,
                       side_by_side=side_by_side, max_photos=max_frames, backend=backend, precision=precision,
                       compile=compile_ or compile_mode is not None, compile_mode=compile_mode,
                       cuda_graphs=cuda_graphs, progress=progress, metadata=metadata,
                       handle_signals=True)
        _finish(_forced(run_photos, job), as_json)
        return
    ctx = click.get_current_context()
    if _given(ctx, "metadata"):
        raise CganError("--metadata applies to photos; the inputs are videos, cameras or streams (leave it out)")
    # --smooth-flow or --smooth-strength alone turn smoothing on (the docs say "use --smooth-flow for panning
    # footage"; they were refused without --smooth)
    smooth = smooth or _given(ctx, "smooth_flow") or _given(ctx, "smooth_strength")
    options = dict(pair=pair, direction=direction, display=display, side_by_side=side_by_side,
                   fps_overlay=fps_overlay, size=size, max_frames=max_frames, start=start, end=end, backend=backend,
                   precision=precision, compile=compile_ or compile_mode is not None, compile_mode=compile_mode,
                   cuda_graphs=cuda_graphs, smooth=smooth,
                   smooth_strength=smooth_strength, smooth_flow=smooth_flow, progress=progress, reconnects=reconnects,
                   sound=sound, codec=codec, crf=crf, capture=capture, virtual_camera=virtual_camera,
                   handle_signals=True)  # the library's default leaves an app's own handlers in force
    if folder is not None:
        _finish(run_video_folder(folder, output, **options), as_json)
        return
    _finish(_forced(run_video, VideoJob(inputs=list(inputs), output=output, **options)), as_json)


def _forced(run_job, job):
    """run_job(job)'s summary, also when a second Ctrl-C (SIGTERM) forced the stop: the runs hand what was
    done on the KeyboardInterrupt (--json printed nothing then); one raised before the run began stays as it is."""
    try:
        return run_job(job)
    except KeyboardInterrupt as e:
        if getattr(e, "summary", None) is None:
            raise
        return e.summary


#: options that only videos take (photos are translated one by one: nothing to show live or smooth over time)
VIDEO_ONLY = {"display": "--display", "fps_overlay": "--fps-overlay", "smooth": "--smooth", "sound": "--sound",
              "codec": "--codec", "crf": "--crf", "start": "--start", "end": "--end", "capture": "--capture",
              "virtual_camera": "--virtual-camera",
              "smooth_strength": "--smooth-strength", "smooth_flow": "--smooth-flow", "reconnects": "--reconnects"}


def _given(ctx: click.Context, name: str) -> bool:
    return bool(given_flags(ctx, (name,)))


def _refuse_video_only(ctx: click.Context) -> None:
    for name, flag in VIDEO_ONLY.items():
        if _given(ctx, name) and not (name in ("display", "sound") and ctx.params[name] is False):  # as photos
            raise CganError(f"{flag} applies to videos, cameras and streams; the inputs are photos (leave it out)")


def _finish(summary, as_json: bool) -> None:
    """Print a run's summary; exit 130/143 when a signal ended it, 1 when some photos or videos were not
    translated, or a video file was translated only in part (cut short: a decode error, a connection lost)."""
    if as_json:
        import json

        click.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        click.echo(summary.format())
    if summary.ended in EXIT_INTERRUPTED:
        raise click.exceptions.Exit(EXIT_INTERRUPTED[summary.ended])
    if getattr(summary, "failed", None) or getattr(summary, "incomplete", None):
        raise click.exceptions.Exit(1)


#: what `cgan-video --input *.jpg` (a pattern the shell expanded into several words) is told
cli.extra_args_hint = ("each --input takes one value: repeat --input, give the folder, or quote a pattern "
                       "(--input 'photos/*.jpg')")

main = entry(cli)

if __name__ == "__main__":
    main()
