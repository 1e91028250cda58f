"""cgan-video on photos: a photo or a folder of photos in, translated photos out (names, formats, sizes, alpha
and EXIF orientation kept), bad photos named and skipped, every user mistake one line, nothing half-written."""
from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from cgan._optional import pip_extra
from cgan._cli import run
from cgan.errors import CganError
from cgan.runtime import photos
from cgan.runtime.cli import cli
from cgan.runtime.photos import PhotoJob, is_photo_input, read_photo, run_photos

from _helpers_video import Invert, make_clip, pattern

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix if path.suffix != ".jfif" else ".jpg", img)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def cgan_video(argv: list[str], capsys) -> tuple[int, str, str]:
    code = run(cli, argv)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("backend ", "  skipped"))]
    assert code == 2 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], lines[0]


def numbered(folder: Path, n: int, name: str = "{i}.png") -> Path:
    """`folder` with n small PNG photos named by `name`."""
    for i in range(n):
        write(folder / name.format(i=i), pattern(i))
    return folder


class AtBatch(Invert):
    """Invert, but calls `action()` when asked for batch number `at` (0-based)."""

    def __init__(self, at: int, action):
        super().__init__()
        self.at, self.action = at, action

    def translate_batch(self, frames):
        if len(self.batches) == self.at:
            self.action()
        return super().translate_batch(frames)


def leftovers(folder: Path) -> list[Path]:
    """Temporary files (hidden names) anywhere under `folder`."""
    return [p for p in folder.rglob(".*")]


@pytest.fixture
def album(tmp_path) -> Path:
    """photos/ with odd sizes, a sub-folder, a .jfif and a .pgm, a hidden file, a corrupt one and a text file."""
    d = tmp_path / "photos"
    write(d / "a.jpg", pattern(1, 37, 53))
    write(d / "b.png", pattern(2, 64, 48))
    write(d / "trip" / "c.webp", pattern(3, 30, 30))
    write(d / "d.jfif", pattern(4, 40, 24))
    write(d / "e.pgm", cv2.cvtColor(pattern(5, 20, 16), cv2.COLOR_BGR2GRAY))
    write(d / ".hidden.png", pattern(6))
    (d / "broken.jpg").write_bytes(b"\xff\xd8not a jpeg at all")
    (d / "notes.txt").write_text("not a photo")
    return d


def test_folder_in_folder_out(album, tmp_path):
    out = tmp_path / "winter"
    s = run_photos(PhotoJob(inputs=[album], output=out, progress=False), translator=Invert())
    assert s.photos == 5 and s.ended == "end"
    assert [f["input"] for f in s.failed] == [str(album / "broken.jpg")]
    assert "not a readable image" in s.failed[0]["reason"]
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert got == ["a.jpg", "b.png", "d.jpg", "e.png", "trip/c.webp"]  # .jfif -> .jpg, gray .pgm -> .png
    assert leftovers(out) == []
    b = cv2.imread(str(out / "b.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(b, 255 - cv2.imread(str(album / "b.png")))  # PNG: lossless, exactly the translation
    assert cv2.imread(str(out / "a.jpg")).shape == (53, 37, 3)        # odd size kept
    assert cv2.imread(str(out / "e.png")).shape == (16, 20, 3)        # a gray photo comes out in colour
    assert "not translated: " in s.format() and f"wrote {out}" in s.format()


def test_one_photo_to_another_format_with_side_by_side_and_size(tmp_path):
    src = write(tmp_path / "beach.jpg", pattern(0, 200, 100))
    dst = tmp_path / "out" / "beach.png"
    s = run_photos(PhotoJob(inputs=src, output=dst, side_by_side=True, size="50", progress=False),
                   translator=Invert())
    assert s.photos == 1 and s.output == str(dst)
    img = cv2.imread(str(dst))
    assert img.shape == (25, 100, 3)  # long side 50, the other side to the nearest pixel (not even: a photo)
    left, right = img[:, :50].astype(int), img[:, 50:].astype(int)
    assert np.abs((255 - left) - right).max() <= 1


def test_alpha_kept_where_the_format_holds_it(tmp_path):
    bgra = np.dstack([pattern(0, 32, 24), np.tile(np.arange(32, dtype=np.uint8) * 8, (24, 1))])
    src = write(tmp_path / "in" / "logo.png", bgra)
    img, alpha = read_photo(src)
    assert img.shape == (24, 32, 3) and np.array_equal(alpha, bgra[:, :, 3])
    run_photos(PhotoJob(inputs=src, output=tmp_path / "logo_out.png", progress=False), translator=Invert())
    out = cv2.imread(str(tmp_path / "logo_out.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (24, 32, 4) and np.array_equal(out[:, :, 3], bgra[:, :, 3])
    run_photos(PhotoJob(inputs=src, output=tmp_path / "logo_out.jpg", progress=False), translator=Invert())
    assert cv2.imread(str(tmp_path / "logo_out.jpg"), cv2.IMREAD_UNCHANGED).shape == (24, 32, 3)


def _with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """`jpeg` with an EXIF APP1 segment whose only tag is Orientation."""
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    app1 = b"Exif\x00\x00" + tiff + struct.pack(">I", 0)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def test_exif_orientation_applied(tmp_path):
    """A phone photo stored sideways with an Orientation tag is translated (and written) the way viewers show it."""
    ok, buf = cv2.imencode(".jpg", pattern(0, 40, 20))
    src = tmp_path / "phone.jpg"
    src.write_bytes(_with_orientation(buf.tobytes(), 6))  # 6: rotate 90 degrees clockwise to display
    s = run_photos(PhotoJob(inputs=src, output=tmp_path / "out.jpg", progress=False), translator=Invert())
    assert s.photos == 1
    assert cv2.imread(str(tmp_path / "out.jpg"), cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR).shape == (40, 20, 3)


def _png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_bombs_and_oversized_photos_are_skipped_with_a_reason(tmp_path):
    d = tmp_path / "in"
    write(d / "ok.png", pattern(0))
    (d / "bomb.png").write_bytes(_png_header_only(20000, 20000))
    write(d / "big.png", pattern(1, 64, 64))

    class Small(Invert):
        max_pixels = 48 * 64  # big.png (64x64) is over it

    s = run_photos(PhotoJob(inputs=d, output=tmp_path / "out", progress=False), translator=Small())
    reasons = {Path(f["input"]).name: f["reason"] for f in s.failed}
    assert s.photos == 1 and set(reasons) == {"bomb.png", "big.png"}
    assert "declares 20000x20000 pixels" in reasons["bomb.png"]
    assert "--size" in reasons["big.png"]
    s = run_photos(PhotoJob(inputs=d, output=tmp_path / "out2", size="48", progress=False), translator=Small())
    assert s.photos == 2  # --size brings it under the limit


def test_max_photos_and_several_inputs(album, tmp_path):
    one = write(tmp_path / "x" / "single.bmp", pattern(9))
    s = run_photos(PhotoJob(inputs=[one, album], output=tmp_path / "o", max_photos=3, progress=False),
                   translator=Invert())
    assert s.photos == 3
    assert sorted(p.name for p in (tmp_path / "o").rglob("*") if p.is_file()) == ["a.jpg", "b.png", "single.bmp"]


def _disk_full_after(n: int, monkeypatch) -> list:
    """photos.write_bytes_atomic raises ENOSPC from its (n+1)-th call on, as a full disk does."""
    import errno

    calls = []
    real = photos.write_bytes_atomic

    def write(dst, data, **kw):
        calls.append(dst)
        if len(calls) > n:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        real(dst, data, **kw)

    monkeypatch.setattr(photos, "write_bytes_atomic", write)
    return calls


def test_a_write_failure_ends_the_run_with_one_line(album, tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = _disk_full_after(1, monkeypatch)
    with pytest.raises(CganError, match=r"cannot write .*No space left on device; 1 photo was written "
                                        r"\(free some space, or choose another --output\)"):
        run_photos(PhotoJob(inputs=album, output=out, progress=False), translator=Invert())
    assert len(calls) == 2  # nothing is written after the error
    assert [p.name for p in out.rglob("*")] == ["a.jpg"]


def test_one_photo_to_an_unknown_extension_is_refused_not_made_a_folder(album, tmp_path):
    """`--input a.jpg --output x.xyz` made a folder x.xyz/ holding a.jpg and said 'wrote x.xyz'."""
    with pytest.raises(CganError, match=r"--output .*x\.xyz: OpenCV cannot write \.xyz photos; .*\.tif.* or \.bmp "
                                        r"file, or a folder \(a name without an extension, or ending in /\)$"):
        run_photos(PhotoJob(inputs=[album / "a.jpg"], output=tmp_path / "x.xyz", progress=False),
                   translator=Invert())
    assert not (tmp_path / "x.xyz").exists()
    for out in (str(tmp_path / "x.xyz") + "/", tmp_path / "made"):  # a folder, said so or without an extension
        run_photos(PhotoJob(inputs=[album / "a.jpg"], output=out, progress=False), translator=Invert())
        assert (Path(out) / "a.jpg").is_file()
    s = run_photos(PhotoJob(inputs=album, output=tmp_path / "winter.v2", progress=False), translator=Invert())
    assert (tmp_path / "winter.v2" / "a.jpg").is_file() and s.photos > 1  # several photos: a folder, as before


def test_a_file_where_an_output_folder_goes_is_refused_before_anything_is_read(album, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "trip").write_text("a file where the sub-folder goes")
    with pytest.raises(CganError, match=r"cannot create the output folder .*trip: .*trip is a file"):
        run_photos(PhotoJob(inputs=album, output=out, progress=False), translator=Invert())
    (out / "trip").unlink()
    (out / "b.png").mkdir()
    with pytest.raises(CganError, match=r"b.png is a folder, where the translation of .*b.png goes"):
        run_photos(PhotoJob(inputs=album, output=out, progress=False), translator=Invert())
    assert sorted(p.name for p in out.iterdir()) == ["b.png"]


def test_a_photo_written_where_another_ones_folder_goes_is_refused_before_anything_is_written(tmp_path):
    """a.jfif is written as a.jpg, and a folder a.jpg/ holds photos: the run wrote a.jpg, then failed on
    a.jpg/b.png (File exists) half-way; the same with two input folders."""
    d = tmp_path / "in"
    write(d / "a.jfif", pattern(0))
    write(d / "a.jpg" / "b.png", pattern(1))
    out = tmp_path / "out"
    with pytest.raises(CganError, match=r"a.jfif would be written to .*out/a.jpg, the folder the translation of "
                                        r".*b.png goes into"):
        run_photos(PhotoJob(inputs=d, output=out, progress=False), translator=Invert())
    one, two = write(tmp_path / "fa" / "sub.jpg", pattern(2)), write(tmp_path / "fb" / "sub.jpg" / "y.png", pattern(3))
    with pytest.raises(CganError, match="would be written to"):
        run_photos(PhotoJob(inputs=[one.parent, two.parent.parent], output=out, progress=False), translator=Invert())
    assert not out.exists()


def test_a_name_near_the_file_name_limit_is_written(tmp_path):
    """The temporary name beside a 250-byte output name (valid) was 14 bytes longer, over the 255-byte limit:
    the whole run failed with "File name too long"."""
    d = tmp_path / "in"
    for name in ("a" * 246 + ".jpg", "é" * 125 + ".png", "b.png"):
        write(d / name, pattern(len(name)))
    s = run_photos(PhotoJob(inputs=d, output=tmp_path / "out", progress=False), translator=Invert())
    assert s.photos == 3 and not s.failed
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in d.iterdir())


def test_a_link_beside_the_photo_it_names_is_a_photo_of_its_own(tmp_path):
    """A link in a folder was left out without a word (taken as the photo named twice); the same photo through two
    spellings of a folder is still taken once."""
    d = tmp_path / "in"
    write(d / "a.jpg", pattern(0))
    (d / "b.jpg").symlink_to("a.jpg")
    s = run_photos(PhotoJob(inputs=[d, d / "." / "a.jpg", tmp_path / "in" / ".." / "in"], output=tmp_path / "out",
                            progress=False), translator=Invert())
    assert s.photos == 2 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg", "b.jpg"]


def test_a_file_name_that_is_not_utf8_does_not_break_the_summary(tmp_path):
    """The summary printed a UnicodeEncodeError traceback after every photo was written, where stdout is strict
    UTF-8 (PYTHONIOENCODING=utf-8, or a UTF-8 locale other than C.UTF-8)."""
    d = tmp_path / "in"
    write(d / "ok.png", pattern(0))
    with open(os.fsencode(str(d)) + b"/bad\xff.png", "wb") as f:
        f.write(cv2.imencode(".png", pattern(1))[1].tobytes())
    with open(os.fsencode(str(d)) + b"/junk\xff.png", "wb") as f:  # not translated: named in the summary
        f.write(b"not a photo")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "CGAN_HOME": str(tmp_path / "home")}
    r = subprocess.run([sys.executable, "-c", "from cgan.runtime.cli import main; main()", "--input", str(d),
                        "--output", str(tmp_path / "out"), "--backend", "ort-cpu", "--no-progress"],
                       capture_output=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 1, r.stderr.decode(errors="replace")[-2000:]
    assert b"Traceback" not in r.stderr and b"wrote" in r.stdout and b"junk\\udcff.png" in r.stdout
    assert os.path.exists(os.fsencode(str(tmp_path / "out")) + b"/bad\xff.png")


def test_sigint_finishes_the_photo_in_hand_and_stops(tmp_path):
    d = numbered(tmp_path / "in", 8)
    interrupt = AtBatch(1, lambda: os.kill(os.getpid(), signal.SIGINT))  # while the second photo is translated
    s = run_photos(PhotoJob(inputs=d, output=tmp_path / "out", handle_signals=True, progress=False),
                   translator=interrupt)
    assert s.ended == "interrupted" and s.photos == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_translator_error_is_raised_and_nothing_half_written(tmp_path):
    d = numbered(tmp_path / "in", 6)

    def explode():
        raise RuntimeError("inference exploded")

    with pytest.raises(RuntimeError, match="exploded"):
        run_photos(PhotoJob(inputs=d, output=tmp_path / "out", progress=False), translator=AtBatch(2, explode))
    assert not (tmp_path / "out").exists() or leftovers(tmp_path / "out") == []


def test_an_early_write_failure_with_many_photos_queued_does_not_hang(tmp_path, monkeypatch):
    """The first photo cannot be written while the reader and the translation have more queued than the queues
    hold: every thread still ends, and the run reports the write error."""
    import threading

    d = numbered(tmp_path / "in", 40, "z{i:02d}.png")
    out = tmp_path / "out"
    calls = _disk_full_after(0, monkeypatch)
    result: dict = {}

    def go():
        try:
            run_photos(PhotoJob(inputs=d, output=out, progress=False), translator=Invert())
        except CganError as e:
            result["error"] = str(e)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "run_photos hung after a write error"
    assert "cannot write" in result["error"] and "0 photos were written" in result["error"]
    assert len(calls) == 1 and not out.exists()


@pytest.mark.parametrize("value, photo", [
    ("0", False), ("demo", False), ("rtsp://cam/1", False), ("/dev/video0", False), ("clip.mp4", False),
    ("x.jpg", True), ("X.JPEG", True), ("y.webp", True), ("", False), (3, False),
    ("IMG_1.HEIC", True), ("DSC_2.nef", True), ("trip/*", True), ("trip/**/IMG_*", True), ("clips/*.mp4", False),
])
def test_is_photo_input(value, photo):
    assert is_photo_input(value) is photo


def test_a_folder_is_photos(tmp_path):
    assert is_photo_input(tmp_path) and is_photo_input(str(tmp_path))


@pytest.mark.parametrize("field, value", [
    ("inputs", 5), ("inputs", [None]), ("output", 3), ("side_by_side", "yes"), ("max_photos", 0),
    ("max_photos", True), ("size", None), ("handle_signals", 1), ("pair", 3),
])
def test_job_fields_are_checked(field, value):
    with pytest.raises(CganError, match=field.split("_")[0].rstrip("s")):
        PhotoJob(**{"inputs": ["a.jpg"], field: value})


# ---- the CLI ----------------------------------------------------------------------------------------------
def test_cli_translates_a_folder_with_the_embedded_pair(album, tmp_path, capsys, caplog):
    """End to end on the real pair (ort-cpu): exit 1 because one photo is corrupt, the rest written."""
    out = tmp_path / "winter"
    code, stdout, err = cgan_video(["--input", str(album), "--output", str(out), "--backend", "ort-cpu",
                                    "--no-progress"], capsys)
    assert code == 1, err
    assert "photos 5  failed 1" in stdout and "broken.jpg (not a readable image)" in stdout
    a = cv2.imread(str(out / "a.jpg"))
    assert a.shape == (53, 37, 3) and not np.array_equal(a, cv2.imread(str(album / "a.jpg")))
    assert "Traceback" not in err
    assert any("broken.jpg: not a readable image; skipped" in r.getMessage() for r in caplog.records)


def test_cli_json_and_exit_0(tmp_path, capsys):
    src = write(tmp_path / "p.png", pattern(0))
    code, stdout, _ = cgan_video(["--input", str(src), "--output", str(tmp_path / "q.jpg"), "--backend", "ort-cpu",
                                  "--json", "--no-progress", "--no-display"], capsys)
    import json

    assert code == 0 and json.loads(stdout)["photos"] == 1


@pytest.mark.parametrize("argv, needles", [
    (["--input", "{album}"], ["photos need --output"]),
    (["--input", "{album}", "--output", "{tmp}/x.jpg"], ["names one photo", "give an output folder"]),
    (["--input", "{album}", "--output", "{album}/winter"], ["inside the input folder"]),
    (["--input", "{album}/a.jpg", "--output", "{album}/a.jpg"], ["would overwrite the input photo"]),
    (["--input", "{album}/a.jpg", "--input", "demo", "--output", "{tmp}/o"], ["mixes photos"]),
    (["--input", "{album}", "--output", "{tmp}/o", "--smooth"], ["--smooth applies to videos"]),
    (["--input", "{album}", "--output", "{tmp}/o", "--display"], ["--display applies to videos"]),
    (["--input", "{album}", "--output", "{tmp}/o", "--reconnects", "2"], ["--reconnects applies"]),
    (["--input", "{tmp}/missing.jpg", "--output", "{tmp}/o"], ["input file not found"]),
    (["--input", "{tmp}/empty", "--output", "{tmp}/o"], ["no photos in"]),
    (["--input", "{album}/a.jpg", "--output", "{tmp}/o.jfif"], ["OpenCV cannot write .jfif"]),
    (["--input", "{album}/a.jpg", "--output", "{tmp}/o.mp4"], ["photos are not written as a video"]),
    (["--input", "{album}", "--output", "{album}/notes.txt"], ["is a file, not a folder"]),
    (["--input", "{album}", "--input", "{tmp}/twin", "--output", "{tmp}/o"], ["would both be written to"]),
    (["--input", "{album}", "--output", "{tmp}/o", "--size", "huge"], ["bad --size"]),
    (["--input", "{album}", "--output", "{tmp}/o", "--backend", "nope"], ["unknown backend"]),
    (["--input", "{tmp}/iphone/IMG_1.HEIC", "--output", "{tmp}/o.jpg"], ["HEIC photos are not read here",
                                                                          "convert it to JPEG or PNG"]),
    (["--input", "{tmp}/iphone", "--output", "{tmp}/o"], ["no photos in", "2 .heic (HEIC: not read here; HEIC/HEIF "
                                                                           f"with {pip_extra('heif')})"]),
    (["--input", "{tmp}/iphone/*", "--output", "{tmp}/o"], ["no photos match", "2 .heic", "convert them"]),
    (["--input", "{tmp}/dangling.jpg", "--output", "{tmp}/o"], ["dangling.jpg is a broken link (to ",
                                                                "gone.jpg, which does not exist)"]),
])
def test_cli_mistakes_are_one_line(album, tmp_path, capsys, monkeypatch, argv, needles):
    monkeypatch.setattr(photos, "_heif", lambda: None)  # no pillow-heif: HEIC is not read
    (tmp_path / "empty").mkdir()
    (tmp_path / "iphone").mkdir()
    for name in ("IMG_1.HEIC", "IMG_2.heic"):
        (tmp_path / "iphone" / name).write_bytes(b"\x00\x00\x00\x18ftypheic")
    write(tmp_path / "twin" / "b.png", pattern(0))  # with album: two b.png
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")  # was "neither a photo file nor a folder"
    argv = [a.format(album=album, tmp=tmp_path) for a in argv]
    code, _, err = cgan_video(argv + ["--no-progress"], capsys)
    one_line_error(code, err, *needles)
    assert not (tmp_path / "o").exists() and not (album / "winter").exists()


def test_photos_in_formats_not_read_here_are_left_out_and_counted(tmp_path, capsys, caplog, monkeypatch):
    """An iPhone or raw+JPEG folder: the HEIC and raw files are not silently dropped -- one warning with the
    counts, a summary line and JSON field; the readable photos are translated and the exit status is 0."""
    monkeypatch.setattr(photos, "_heif", lambda: None)  # no pillow-heif: HEIC is not read
    d = tmp_path / "camera"
    write(d / "a.jpg", pattern(1))
    for name in ("IMG_1.HEIC", "IMG_2.heic", "sub/DSC_3.NEF", ".hidden.heic", "notes.txt"):
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(b"\x00" * 16)
    summary = run_photos(PhotoJob(inputs=[d], output=tmp_path / "o", progress=False), translator=Invert())
    assert summary.photos == 1 and not summary.failed and summary.left_out == {".heic": 2, ".nef": 1}
    assert "left out (formats not read here): 2 .heic, 1 .nef" in summary.format()
    said = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(said) == 1 and f"2 .heic, 1 .nef (HEIC, raw: not read here; HEIC/HEIF with {pip_extra('heif')})" \
        in said[0]
    code, out, err = cgan_video(["--input", str(d), "--output", str(tmp_path / "o2"), "--json", "--no-progress",
                                 "--backend", "ort-cpu"], capsys)
    assert code == 0 and '".heic": 2' in out, err


def test_iphone_heic_photos_are_read_with_pillow_heif_and_written_as_jpeg(tmp_path, caplog):
    """With pillow-heif (cgan[heif]) HEIC photos are translated: turned as their container says, written as
    JPEG (OpenCV cannot write HEIF) with their EXIF data and ICC profile; a broken one is named and skipped."""
    pillow_heif = pytest.importorskip("pillow_heif")
    from PIL import Image, ImageCms, ImageOps

    d = tmp_path / "iphone"
    d.mkdir()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F], exif[0x0112] = "Apple", 6  # stored 40x24, shown 24x40
    pillow_heif.register_heif_opener()
    Image.fromarray(pattern(4, 40, 24)[:, :, ::-1].copy()).save(d / "IMG_1.HEIC", "HEIF", exif=exif.tobytes(),
                                                               icc_profile=icc, quality=95)
    (d / "IMG_2.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    summary = run_photos(PhotoJob(inputs=[d], output=tmp_path / "o", progress=False), translator=Invert())
    assert summary.photos == 1 and [f["input"] for f in summary.failed] == [str(d / "IMG_2.heic")]
    out = tmp_path / "o" / "IMG_1.jpg"
    with Image.open(d / "IMG_1.HEIC") as src, Image.open(out) as dst:
        shown_in = np.asarray(ImageOps.exif_transpose(src).convert("RGB")).astype(int)
        shown_out = np.asarray(ImageOps.exif_transpose(dst).convert("RGB")).astype(int)
        assert dst.format == "JPEG" and dst.info.get("icc_profile") == icc and dst.getexif().get(0x010F) == "Apple"
    assert shown_in.shape == shown_out.shape == (40, 24, 3)
    assert np.abs((255 - shown_in) - shown_out).mean() < 8


def test_avif_photos_are_read_and_written_where_opencv_has_the_codec(tmp_path, monkeypatch, caplog):
    """AVIF (phones, the web): OpenCV 5's wheels read and write it, so it is translated and kept as AVIF; an
    OpenCV without the codec leaves it out, counted, as HEIC."""
    from cgan import _codecs

    if not _codecs.codec_works(".avif"):
        pytest.skip("this OpenCV has no AVIF codec")
    d = tmp_path / "web"
    ok, buf = cv2.imencode(".avif", pattern(2, 40, 24))
    d.mkdir()
    (d / "a.avif").write_bytes(buf.tobytes())
    write(d / "b.jpg", pattern(3))
    summary = run_photos(PhotoJob(inputs=[d], output=tmp_path / "o", progress=False), translator=Invert())
    assert summary.photos == 2 and not summary.left_out and not summary.failed
    out = cv2.imread(str(tmp_path / "o" / "a.avif"))
    assert out.shape == (24, 40, 3) and np.abs(out.astype(int) - (255 - pattern(2, 40, 24).astype(int))).mean() < 8
    monkeypatch.setattr(_codecs, "codec_works", lambda ext: False)
    summary = run_photos(PhotoJob(inputs=[d], output=tmp_path / "o2", progress=False), translator=Invert())
    assert summary.photos == 1 and summary.left_out == {".avif": 1}


def test_cli_no_display_is_accepted(tmp_path, capsys):
    """--no-display is what a photo run does anyway: not a mistake."""
    src = write(tmp_path / "p.png", pattern(0))
    code, _, err = cgan_video(["--input", str(src), "--output", str(tmp_path / "q.png"), "--no-display",
                               "--backend", "ort-cpu", "--no-progress"], capsys)
    assert code == 0, err


def test_videos_still_go_to_the_video_pipeline(tmp_path, capsys):
    clip = make_clip(tmp_path / "c.mp4", 4)
    code, stdout, err = cgan_video(["--input", str(clip), "--output", str(tmp_path / "o.mp4"), "--no-display",
                                    "--backend", "ort-cpu", "--no-progress"], capsys)
    assert code == 0, err and "frames 4" in stdout


def test_photo_mode_imports_no_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import cgan.runtime.photos, cgan.runtime.cli\n"
            "assert 'torch' not in sys.modules or sys.modules['torch'] is None")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_photos_skip_only_the_folder_fsync(tmp_path, monkeypatch):
    """Photos skip the folder's fsync after each rename (thousands of small files), never the file's own fsync
    before it: after a power cut a photo may be missing, not empty under its name."""
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.path.isdir(f"/proc/self/fd/{fd}")) or real(fd))
    photos.write_bytes_atomic(tmp_path / "a.bin", b"x", sync_dir=False)
    assert synced == [False] and (tmp_path / "a.bin").read_bytes() == b"x" and leftovers(tmp_path) == []
    photos.write_bytes_atomic(tmp_path / "b.bin", b"y")
    assert synced == [False, False, True]  # the default syncs the folder too


# ---- findings of the review: formats, planning, threads -------------------------------------------------
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_with_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    """`png` with one more chunk just before its first IDAT."""
    i = png.index(b"IDAT") - 4
    return png[:i] + _png_chunk(kind, body) + png[i:]


def _tiff_header_only(width: int, height: int) -> bytes:
    entries = [(256, 4, width), (257, 4, height)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", t, typ, 1, v) for t, typ, v in entries)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)


def test_a_photo_too_wide_for_its_format_is_skipped_not_the_run(tmp_path):
    d = tmp_path / "in"
    write(d / "a.png", pattern(0))
    write(d / "b.webp", pattern(1, 9000, 4))  # side by side: 18000 wide, over WebP's 16383
    write(d / "c.png", pattern(2))
    s = run_photos(PhotoJob(inputs=d, output=tmp_path / "out", side_by_side=True, progress=False),
                   translator=Invert())
    assert s.photos == 2 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    assert "too large for .webp (at most 16383 pixels a side): write .png" in s.failed[0]["reason"]


def test_png_alpha_follows_its_exif_orientation(tmp_path):
    bgra = np.dstack([pattern(0, 40, 20), np.full((20, 40), 255, np.uint8)])
    bgra[:, :5, 3] = 0  # a transparent strip on the left
    ok, png = cv2.imencode(".png", bgra)
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0)
    src = tmp_path / "turned.png"
    src.write_bytes(_png_with_chunk(png.tobytes(), b"eXIf", tiff + struct.pack(">I", 0)))
    img, alpha = read_photo(src)
    assert img.shape == (40, 20, 3)  # orientation 6: turned a quarter clockwise
    assert alpha is not None and np.array_equal(alpha, np.rot90(bgra[:, :, 3], -1))  # the strip is now on top
    assert np.array_equal(img, np.rot90(bgra[:, :, :3], -1))


def test_png_transparency_from_a_trns_chunk_is_kept(tmp_path):
    rgb = pattern(0, 32, 24)
    rgb[:4, :4] = (1, 2, 3)  # BGR of the colour declared transparent
    ok, png = cv2.imencode(".png", rgb)
    src = tmp_path / "keyed.png"
    src.write_bytes(_png_with_chunk(png.tobytes(), b"tRNS", struct.pack(">HHH", 3, 2, 1)))  # R, G, B
    img, alpha = read_photo(src)
    assert alpha is not None and (alpha[:4, :4] == 0).all() and (alpha[4:] == 255).all()


@pytest.mark.parametrize("depth", [1, 2, 4, 8, 16])
def test_a_gray_pngs_trns_transparency_is_kept(tmp_path, depth):
    """A gray PNG with a tRNS chunk (one gray level transparent, as optipng/oxipng write them): OpenCV decodes one
    channel without the alpha, and the transparency was dropped without a word."""
    top = (1 << depth) - 1
    gray = np.array([[0, top, 1, top], [1, 0, top, 1]], np.uint16 if depth == 16 else np.uint8)
    key = 1  # the level shown transparent
    rows = b""
    for row in gray:
        if depth == 16:
            line = b"".join(struct.pack(">H", int(v)) for v in row)
        else:
            bits = "".join(format(int(v), f"0{depth}b") for v in row)
            bits += "0" * (-len(bits) % 8)
            line = int(bits, 2).to_bytes(len(bits) // 8, "big")
        rows += b"\x00" + line
    png = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 2, depth, 0, 0, 0, 0)) \
        + _png_chunk(b"tRNS", struct.pack(">H", key)) + _png_chunk(b"IDAT", zlib.compress(rows)) \
        + _png_chunk(b"IEND", b"")
    src = tmp_path / "keyed.png"
    src.write_bytes(b"\x89PNG\r\n\x1a\n" + png)
    img, alpha = read_photo(src)
    assert img.shape == (2, 4, 3) and alpha is not None
    assert np.array_equal(alpha, np.where(gray == key, 0, 255).astype(np.uint8))
    run_photos(PhotoJob(inputs=src, output=tmp_path / "out.png", progress=False), translator=Invert())
    assert np.array_equal(cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)[:, :, 3], alpha)


def test_junk_before_a_jpegs_frame_header_does_not_hide_its_size(tmp_path):
    """libjpeg passes over bytes between segments ("extraneous bytes before marker"); the header reader stopped
    there, and a 631-byte file decoded to 11600x11600 (845 MB) through the library."""
    jpeg = bytearray(cv2.imencode(".jpg", pattern(0, 16, 16))[1].tobytes())
    sof = jpeg.find(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = (11600).to_bytes(2, "big") * 2
    src = tmp_path / "bomb.jpg"
    src.write_bytes(bytes(jpeg[:sof]) + b"\x00\x12" + bytes(jpeg[sof:]))
    with pytest.raises(photos.PhotoProblem, match="declares 11600x11600 pixels"):
        read_photo(src)


_VP8X = (b"RIFF" + struct.pack("<I", 30) + b"WEBP" + b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4
         + (20000 - 1).to_bytes(3, "little") * 2)
_BMP = b"BM" + b"\x00" * 12 + struct.pack("<Iii", 40, 20000, 20000) + b"\x00" * 8
# an AVIF's start: ftyp, then meta with an image spatial extents ('ispe') box
_AVIF = (struct.pack(">I", 20) + b"ftypavif" + b"\x00" * 4 + b"avif" + struct.pack(">I", 40) + b"meta"
         + b"\x00" * 4 + struct.pack(">I", 20) + b"ispe" + b"\x00" * 4 + struct.pack(">II", 20000, 20000)
         + b"\x00" * 8)


@pytest.mark.parametrize("name, header", [("bomb.png", _png_header_only(20000, 20000)),
                                          ("bomb.tif", _tiff_header_only(20000, 20000)),
                                          ("bomb.webp", _VP8X), ("bomb.bmp", _BMP), ("bomb.avif", _AVIF)])
def test_header_bombs_of_every_read_format_are_refused_undecoded(tmp_path, monkeypatch, name, header):
    decoded = []
    monkeypatch.setattr(photos.cv2, "imdecode", lambda *a: decoded.append(a) or None)
    (tmp_path / name).write_bytes(header)
    with pytest.raises(photos.PhotoProblem, match="declares 20000x20000 pixels"):
        read_photo(tmp_path / name)
    assert not decoded


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_in_a_folder_is_skipped_not_waited_for(tmp_path):
    d = tmp_path / "in"
    write(d / "a.png", pattern(0))
    os.mkfifo(d / "b.png")
    s = run_photos(PhotoJob(inputs=d, output=tmp_path / "out", progress=False), translator=Invert())
    assert s.photos == 1 and s.failed == [{"input": str(d / "b.png"), "reason": "not a regular file"}]


def test_a_photo_named_twice_is_translated_once(album, tmp_path):
    s = run_photos(PhotoJob(inputs=[album, album / "b.png", str(album) + "/"], output=tmp_path / "o",
                            progress=False), translator=Invert())
    assert s.photos == 5


def test_names_that_differ_only_in_case_are_refused(tmp_path):
    d = tmp_path / "in"
    write(d / "a.JPG", pattern(0))
    write(d / "a.jpg", pattern(1))
    with pytest.raises(CganError, match="differ only in case"):
        run_photos(PhotoJob(inputs=d, output=tmp_path / "o", progress=False), translator=Invert())


def test_two_photos_written_under_one_name_say_why(tmp_path):
    """p.jfif is written as p.jpg beside p.jpg: the message blamed letter case."""
    d = tmp_path / "in"
    write(d / "p.jpg", pattern(0))
    write(d / "p.jfif", pattern(1))
    with pytest.raises(CganError, match=r"would both be written to .*p\.jpg \(p\.jfif is written as \.jpg\)"):
        run_photos(PhotoJob(inputs=d, output=tmp_path / "o", progress=False), translator=Invert())


def test_a_missing_folder_with_a_slash_is_named_as_a_folder(tmp_path, capsys):
    code, _, err = cgan_video(["--input", f"{tmp_path}/nothere/", "--output", str(tmp_path / "o")], capsys)
    one_line_error(code, err, "input folder not found")


def test_size_max_shrinks_only_the_larger_photos(tmp_path):
    d = tmp_path / "in"
    write(d / "big.png", pattern(0, 200, 100))
    write(d / "small.png", pattern(1, 60, 40))
    run_photos(PhotoJob(inputs=d, output=tmp_path / "o", size="max:100", progress=False), translator=Invert())
    assert cv2.imread(str(tmp_path / "o" / "big.png")).shape == (50, 100, 3)
    assert cv2.imread(str(tmp_path / "o" / "small.png")).shape == (40, 60, 3)
    with pytest.raises(CganError, match="max: takes the longest side"):
        photos.parse_size("max:720p")


def test_an_exact_size_that_changes_a_photos_shape_is_said_once(tmp_path, caplog):
    """--size 64x48 over a folder of camera photos squashed every portrait photo without a word: a warning
    (once a run) names the first one and says what keeps the shape; a photo of that shape says nothing."""
    d = tmp_path / "in"
    write(d / "a_land.png", pattern(0, 128, 96))
    write(d / "b_portrait.png", pattern(1, 48, 64))
    write(d / "c_portrait.png", pattern(2, 48, 64))
    run_photos(PhotoJob(inputs=d, output=tmp_path / "o", size="64x48", progress=False), translator=Invert())
    assert cv2.imread(str(tmp_path / "o" / "b_portrait.png")).shape == (48, 64, 3)  # as asked
    said = [r.getMessage() for r in caplog.records if "stretched" in r.getMessage()]
    assert len(said) == 1 and "portrait.png: 48x64 is stretched to --size 64x48" in said[0], said
    assert "--size N or max:N keeps each photo's shape" in said[0]
    caplog.clear()
    run_photos(PhotoJob(inputs=d / "a_land.png", output=tmp_path / "p.png", size="64x48", progress=False),
               translator=Invert())
    assert not [r for r in caplog.records if "stretched" in r.getMessage()]


def test_a_float_tiff_is_refused_with_its_reason(tmp_path):
    """OpenCV reads a 32-bit float TIFF only as it is (IMREAD_COLOR refuses it): it was "not a readable image",
    which sent the user looking for a broken file."""
    d = tmp_path / "in"
    d.mkdir()
    assert cv2.imwrite(str(d / "hdr.tif"), np.random.default_rng(0).random((20, 30, 3), dtype=np.float32))
    write(d / "ok.png", pattern(0, 30, 20))
    s = run_photos(PhotoJob(inputs=d, output=tmp_path / "o", progress=False), translator=Invert())
    assert s.photos == 1 and [f["input"] for f in s.failed] == [str(d / "hdr.tif")]
    assert s.failed[0]["reason"].startswith("a 32-bit floating-point image (HDR or scientific data), not read "
                                            "here; convert it to an 8- or 16-bit integer photo"), s.failed


def test_a_closed_translator_is_one_error_not_one_per_photo(album, tmp_path):
    class Closed(Invert):
        closed = True

    with pytest.raises(CganError, match="this Translator is closed"):
        run_photos(PhotoJob(inputs=album, output=tmp_path / "o", progress=False), translator=Closed())


def _writes_after(wait, monkeypatch) -> None:
    """photos.write_bytes_atomic calls wait() before each write (a slow or stuck disk)."""
    real = photos.write_bytes_atomic

    def slow(dst, data, **kw):
        wait()
        real(dst, data, **kw)

    monkeypatch.setattr(photos, "write_bytes_atomic", slow)


def _sigint() -> None:
    os.kill(os.getpid(), signal.SIGINT)


def test_a_second_ctrl_c_writes_only_the_photo_in_hand(tmp_path, monkeypatch):
    """The writer is stuck on the first photo while the translation fills its queue: the first Ctrl-C (during the
    second translation) stops translating, the second gives up the queued photos; the photo being written is
    finished, not left half-made."""
    import threading

    d = numbered(tmp_path / "in", 12, "{i:02d}.png")
    release = threading.Event()
    _writes_after(lambda: release.wait(10), monkeypatch)
    later = [threading.Timer(0.5, _sigint), threading.Timer(1.0, release.set)]

    def first_ctrl_c():
        _sigint()
        for t in later:
            t.start()

    try:
        with pytest.raises(KeyboardInterrupt) as e:
            run_photos(PhotoJob(inputs=d, output=tmp_path / "out", handle_signals=True, progress=False),
                       translator=AtBatch(1, first_ctrl_c))
    finally:
        for t in later:
            t.cancel()
        release.set()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["00.png"]
    # what was done rides on the exception, for cgan-video's summary (--json printed nothing after a forced stop)
    summary = e.value.summary
    assert summary.ended == "interrupted" and summary.output == str(tmp_path / "out") and summary.photos == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_apps_keyboard_interrupt_while_the_writer_is_waited_for_leaves_nothing_running(tmp_path, monkeypatch):
    """handle_signals=False (an app's own Ctrl-C, here as the third write starts: every photo is translated and
    run_photos waits for the writer): the KeyboardInterrupt reaches the app only once the photo in hand is
    written; nothing is written after run_photos has returned, and no temp file is left."""
    import time

    d = numbered(tmp_path / "in", 6)
    writes = []

    def slow():
        writes.append(1)
        if len(writes) == 3:
            _sigint()
        time.sleep(0.3)

    _writes_after(slow, monkeypatch)
    with pytest.raises(KeyboardInterrupt) as e:
        run_photos(PhotoJob(inputs=d, output=tmp_path / "out", handle_signals=False, progress=False),
                   translator=Invert())
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert e.value.summary.photos == len(written) and e.value.summary.ended == "interrupted"
    time.sleep(1.0)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == written and 1 <= len(written) < 6
    assert leftovers(tmp_path / "out") == []


def test_alpha_of_a_plain_turned_png_follows_the_orientation(tmp_path):
    """One colour everywhere, the shape only in alpha: the colours look the same turned or not, and the alpha is
    turned as the EXIF orientation (read from the eXIf chunk) says."""
    from cgan._images import png_orientation

    bgra = np.full((24, 24, 4), 200, np.uint8)
    bgra[:, :5, 3] = 0
    ok, png = cv2.imencode(".png", bgra)
    tiff = b"II*\x00\x08\x00\x00\x00" + struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0)
    data = _png_with_chunk(png.tobytes(), b"eXIf", tiff + struct.pack("<I", 0))
    assert png_orientation(data) == 6 and png_orientation(png.tobytes()) is None
    (tmp_path / "p.png").write_bytes(data)
    _, alpha = read_photo(tmp_path / "p.png")
    assert np.array_equal(alpha, np.rot90(bgra[:, :, 3], -1))


def test_a_quoted_pattern_names_photos(album, tmp_path, capsys):
    """--input 'photos/*.png' (quoted, so the shell leaves it): the matching photos, into an output folder."""
    s = run_photos(PhotoJob(inputs=str(album / "*.png"), output=tmp_path / "o", progress=False), translator=Invert())
    assert s.photos == 1 and [p.name for p in (tmp_path / "o").iterdir()] == ["b.png"]  # not .hidden.png
    s = run_photos(PhotoJob(inputs=str(album / "**" / "*.webp"), output=tmp_path / "w", progress=False),
                   translator=Invert())
    assert s.photos == 1 and [p.name for p in (tmp_path / "w").iterdir()] == ["c.webp"]
    code, _, err = cgan_video(["--input", str(album / "*.gif.png"), "--output", str(tmp_path / "n")], capsys)
    one_line_error(code, err, "no photos match --input")


def test_a_pattern_the_shell_expanded_gets_a_hint(album, tmp_path, capsys):
    code, _, err = cgan_video(["--input", str(album / "a.jpg"), str(album / "b.png"), "--output", str(tmp_path)],
                              capsys)
    one_line_error(code, err, "unexpected extra argument", "repeat --input, give the folder, or quote a pattern")


# ---- several reader and writer threads (the default on a GPU) -------------------------------------------
def test_several_io_threads_write_every_photo_to_its_own_name(tmp_path):
    d = tmp_path / "in"
    for i in range(40):
        write(d / f"{i:02d}.png", pattern(i, 48 + i % 5, 40))  # sizes differ: a mix-up would show
    s = run_photos(PhotoJob(inputs=d, output=tmp_path / "out", io_threads=3, progress=False), translator=Invert())
    assert s.photos == 40 and not s.failed and s.io_threads == 3
    for i in range(40):
        got = cv2.imread(str(tmp_path / "out" / f"{i:02d}.png"))
        assert np.array_equal(got, 255 - cv2.imread(str(d / f"{i:02d}.png"))), i
    assert leftovers(tmp_path / "out") == []


def test_several_io_threads_end_cleanly_on_a_write_error_and_on_ctrl_c(tmp_path, monkeypatch):
    d = numbered(tmp_path / "in", 30)
    calls = _disk_full_after(3, monkeypatch)
    with pytest.raises(CganError, match="No space left on device"):
        run_photos(PhotoJob(inputs=d, output=tmp_path / "out", io_threads=3, progress=False), translator=Invert())
    assert len(calls) <= 3 + 3  # the failing write and at most one in hand per other writer
    assert leftovers(tmp_path / "out") == []
    monkeypatch.undo()
    s = run_photos(PhotoJob(inputs=d, output=tmp_path / "out2", io_threads=3, handle_signals=True, progress=False),
                   translator=AtBatch(2, _sigint))
    assert s.ended == "interrupted" and 3 <= s.photos <= 3 + QUEUE + 3
    assert len(list((tmp_path / "out2").iterdir())) == s.photos and leftovers(tmp_path / "out2") == []


QUEUE = photos.QUEUE_SIZE


def test_io_threads_default_by_device():
    class OnGpu(Invert):
        class info:  # noqa: N801 - as a Translator's info
            device = "cuda"

    job = PhotoJob(inputs=["a.jpg"])
    assert photos.io_threads(job, Invert()) == 1
    assert 1 <= photos.io_threads(job, OnGpu()) <= 4
    assert photos.io_threads(PhotoJob(inputs=["a.jpg"], io_threads=2), OnGpu()) == 2
    with pytest.raises(CganError, match="io_threads must be a whole number 1..8"):
        PhotoJob(inputs=["a.jpg"], io_threads=0)


def _threads_named(prefix: str) -> list:
    import threading

    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def _ends_within(seconds: float, fn):
    """fn() run in a thread: (its result or exception); the test fails if it has not returned in time."""
    import threading

    box: dict = {}

    def go():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "run_photos hung"
    return box


def test_a_writer_whose_error_handling_fails_does_not_hang_the_run(tmp_path, monkeypatch):
    """Every encode fails and reporting it fails too (a logging handler raising): the writers live on, drain,
    and the run ends with that error instead of waiting for ever on a full queue."""
    import threading

    d = numbered(tmp_path / "in", 20)
    monkeypatch.setattr(photos, "encode_photo", lambda *a: (_ for _ in ()).throw(photos.PhotoProblem("no")))
    real_fail = photos._Run.fail

    def fail(self, src, reason):
        if threading.current_thread().name.startswith("cgan-photo-writer"):
            raise RuntimeError("the log handler broke")
        real_fail(self, src, reason)

    monkeypatch.setattr(photos._Run, "fail", fail)
    box = _ends_within(30, lambda: run_photos(PhotoJob(inputs=d, output=tmp_path / "o", io_threads=2,
                                                       progress=False), translator=Invert()))
    assert "the log handler broke" in str(box.get("error"))


def test_a_thread_that_cannot_start_leaves_no_thread_behind(tmp_path, monkeypatch):
    import threading
    import time

    d = numbered(tmp_path / "in", 10)
    real_start = threading.Thread.start
    starts = []

    def start(self):
        if self.name.startswith("cgan-photo-"):
            starts.append(self.name)
            if len(starts) == 4:
                raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    box = _ends_within(30, lambda: run_photos(PhotoJob(inputs=d, output=tmp_path / "o", io_threads=3,
                                                       progress=False), translator=Invert()))
    assert "can't start new thread" in str(box.get("error"))
    deadline = time.monotonic() + 10
    while _threads_named("cgan-photo-") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _threads_named("cgan-photo-")
    assert not (tmp_path / "o").exists() or leftovers(tmp_path / "o") == []


def test_the_write_error_counts_what_every_writer_wrote(tmp_path, monkeypatch):
    """With four writers the count is taken once they have all ended: it matches the files on disk."""
    d = numbered(tmp_path / "in", 12, "{i:02d}.png")
    _disk_full_after(3, monkeypatch)
    box = _ends_within(30, lambda: run_photos(PhotoJob(inputs=d, output=tmp_path / "o", io_threads=4,
                                                       progress=False), translator=Invert()))
    on_disk = len([p for p in (tmp_path / "o").iterdir() if not p.name.startswith(".")])
    n = "1 photo was" if on_disk == 1 else f"{on_disk} photos were"
    assert f"{n} written (free some space" in str(box["error"])


def test_giving_up_removes_the_temp_files_of_photos_in_hand(tmp_path):
    run = photos._Run()
    tmp = tmp_path / ".a.png.x.tmp"
    tmp.write_bytes(b"half")
    run.inflight.add(tmp)
    photos._remove_inflight(run)
    assert not tmp.exists()


def test_the_umask_is_read_without_changing_it(monkeypatch):
    """Photo writers run in parallel: setting the umask to 0 to read it would give a file another thread creates
    meanwhile mode 0666. On Linux it is read from /proc, never set."""
    from cgan import _files

    if not os.path.exists("/proc/self/status"):
        pytest.skip("no /proc here")
    mask = os.umask(0o027)
    os.umask(mask)
    monkeypatch.setattr(os, "umask", lambda m: pytest.fail("os.umask called"))
    assert _files._umask() == mask


def test_numpy_integers_become_ints():
    job = PhotoJob(inputs=["a.jpg"], io_threads=np.int64(2), max_photos=np.int32(3))
    assert type(job.io_threads) is int and type(job.max_photos) is int


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc here")
def test_an_output_nobody_can_write_is_refused_before_anything_is_read(album, capsys):
    """/proc refuses new files even to root (for whom os.access says yes): a probe file finds out up front."""
    code, _, err = cgan_video(["--input", str(album), "--output", "/proc/self/winter", "--no-progress"], capsys)
    one_line_error(code, err, "--output /proc/self/winter cannot be written")
