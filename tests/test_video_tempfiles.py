"""Security review findings: cgan-video's temporary files in a shared output folder, and stream credentials.

1. The writer's temp file (.out.partial-PID.mp4) and check_output's probe (.cgan-probe-PID-TID.mp4) had fixed,
   guessable names beside the output: a link planted there by another user made cv2.VideoWriter write through it
   (into the link's target) and the finished output became that link. Now they are made exclusively under an
   unpredictable name, and one replaced while being written is refused.
2. redact_url printed a password with a '/', a token given as the user name and ?token=... parameters.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from cgan.errors import CganError
from cgan.runtime import video
from cgan._codecs import quiet_opencv
from cgan.runtime.sources import open_source, parse_input, redact_url
from cgan.runtime.video import VideoJob, VideoOutput, check_output, run_video

from _helpers_video import Invert, make_clip, pattern, probe, serve_folder

quiet_opencv("SILENT")

PRECIOUS = b"precious data\n"


def _victim(tmp_path: Path) -> Path:
    other = tmp_path / "elsewhere"
    other.mkdir(exist_ok=True)
    victim = other / "victim.txt"
    victim.write_bytes(PRECIOUS)
    return victim


def _write(out: VideoOutput, n: int = 5) -> None:
    for i in range(n):
        out.write(pattern(i))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- 1. temporary files ---------------------------------------------------------------------------------------
def test_a_link_planted_at_the_old_partial_name_is_not_written_through(tmp_path):
    """The review's repro: the old name was .out.partial-<pid>.mp4; the video went into the link's target."""
    victim = _victim(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    link = shared / f".out.partial-{os.getpid()}.mp4"
    link.symlink_to(victim)
    out = VideoOutput(shared / "out.mp4", 12.0)
    _write(out)
    assert out.finish() == shared / "out.mp4"
    assert victim.read_bytes() == PRECIOUS
    final = shared / "out.mp4"
    assert not final.is_symlink() and stat.S_ISREG(os.lstat(final).st_mode) and probe(final)[0] == 5
    assert link.is_symlink()  # someone else's link is left alone, never followed


def test_temp_names_are_unpredictable_private_and_recognisable(tmp_path):
    a, b = VideoOutput(tmp_path / "out.mp4", 12.0), VideoOutput(tmp_path / "out.mp4", 12.0)
    _write(a, 1)
    _write(b, 1)
    assert a.tmp != b.tmp  # the old name depended only on the output and the pid
    for o in (a, b):
        assert o.tmp.parent == tmp_path and o.tmp.name.startswith(".out.partial-") and o.tmp.suffix == ".mp4"
        assert stat.S_IMODE(os.lstat(o.tmp).st_mode) == 0o600  # nobody else reads it while it is written
    b.abort()
    assert not b.tmp.exists()
    a.finish()
    mode = stat.S_IMODE(os.stat(tmp_path / "out.mp4").st_mode)
    assert mode == 0o666 & ~_umask()  # the finished output gets a new file's normal mode, as before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


@pytest.mark.parametrize("ext", list(video.CODECS))
def test_every_container_writes_into_the_file_made_for_it(tmp_path, ext):
    """cv2.VideoWriter opens the pre-made temp file by name: it must keep that file (same inode), or every
    finish would be refused as a replaced file."""
    check_output(tmp_path / f"o{ext}")
    out = VideoOutput(tmp_path / f"o{ext}", 12.0)
    _write(out)
    made = out.tmp
    assert out.finish() == tmp_path / f"o{ext}" and not made.exists()
    assert probe(tmp_path / f"o{ext}")[0] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"o{ext}"]


def test_an_output_name_near_the_file_name_limit_is_written(tmp_path):
    """A valid 250-byte output name: the temp name beside it (.NAME.partial-PID-RANDOM.mp4) was over the 255-byte
    limit, and the run failed before writing a frame."""
    path = tmp_path / ("w" * 246 + ".mp4")
    check_output(path)
    out = VideoOutput(path, 12.0)
    _write(out)
    assert out.finish() == path and probe(path)[0] == 5
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("how", ["link", "file"])
def test_a_temp_file_replaced_while_writing_is_refused(tmp_path, how):
    """Someone who can write in the folder swaps the temp file for a link (or a file) to a playable video of
    theirs: the old code renamed it over the output, which then pointed wherever they liked."""
    victim = _victim(tmp_path)
    theirs = make_clip(victim.parent / "theirs.mp4", 5)
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"the previous good file")
    out = VideoOutput(target, 12.0)
    _write(out)
    out.tmp.unlink()
    if how == "link":
        out.tmp.symlink_to(theirs)
    else:
        out.tmp.write_bytes(theirs.read_bytes())
    with pytest.raises(CganError, match="replaced") as e:
        out.finish()
    assert "\n" not in str(e.value) and "only you can write" in str(e.value)
    assert target.read_bytes() == b"the previous good file" and not target.is_symlink()
    assert victim.read_bytes() == PRECIOUS
    out.abort()
    assert os.path.lexists(out.tmp)  # what they put there is not ours to remove


@pytest.mark.parametrize("codec", [None, "h264"])
def test_a_temp_file_replaced_by_a_link_before_the_writer_opens_it_is_refused(tmp_path, monkeypatch, codec):
    """The window between making the temp file and the writer (cv2.VideoWriter, or PyAV's H.264 writer) opening
    it by name: a swap is caught when the writer has opened, and nothing is renamed."""
    from cgan.runtime import pyav

    if codec == "h264" and not pyav.has_h264():
        pytest.skip("no PyAV with libx264 here")
    owner, name = (pyav, "H264Writer") if codec == "h264" else (video.cv2, "VideoWriter")
    victim = _victim(tmp_path)
    real = getattr(owner, name)

    def swapping_writer(name, *args):
        os.unlink(name)
        os.symlink(victim, name)
        return real(name, *args)

    monkeypatch.setattr(owner, name, swapping_writer)
    out = VideoOutput(tmp_path / "o.mp4", 12.0, codec=codec)
    with pytest.raises(CganError, match="replaced by a link"):
        out.write(pattern(0))
    monkeypatch.undo()
    out.abort()
    assert not (tmp_path / "o.mp4").exists() and out.writer is None


def test_the_probe_does_not_follow_a_planted_link(tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / f".cgan-probe-{os.getpid()}-{threading.get_ident()}.mp4"  # the old, fixed probe name
    link.symlink_to(victim)
    assert check_output(tmp_path / "o.mp4") == "mp4v"
    assert victim.read_bytes() == PRECIOUS
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".cgan-probe-")] == [link.name]


def test_a_probe_replaced_while_probing_is_refused(tmp_path, monkeypatch):
    victim = _victim(tmp_path)
    real = video.cv2.VideoWriter
    seen = []

    def swapping_writer(name, *args):
        seen.append(name)
        w = real(name, *args)
        os.unlink(name)
        os.symlink(victim, name)
        return w

    monkeypatch.setattr(video.cv2, "VideoWriter", swapping_writer)
    with pytest.raises(CganError, match="probe file .* replaced by a link"):
        check_output(tmp_path / "o.mp4")
    assert victim.read_bytes() == PRECIOUS
    assert seen and Path(seen[0]).name != f".cgan-probe-{os.getpid()}-{threading.get_ident()}.mp4"


def test_run_video_in_a_folder_with_planted_links_keeps_the_victim(tmp_path):
    """End to end through run_video: links at both old names (writer and probe) change nothing."""
    victim = _victim(tmp_path)
    clip = make_clip(tmp_path / "in.mp4", 8)
    shared = tmp_path / "shared"
    shared.mkdir()
    for name in (f".out.partial-{os.getpid()}.mp4", f".cgan-probe-{os.getpid()}-{threading.get_ident()}.mp4"):
        (shared / name).symlink_to(victim)
    s = run_video(VideoJob(inputs=[str(clip)], output=str(shared / "out.mp4"), display=False, progress=False,
                           handle_signals=False), translator=Invert())
    assert s.frames == 8 and probe(shared / "out.mp4")[0] == 8 and not (shared / "out.mp4").is_symlink()
    assert victim.read_bytes() == PRECIOUS
    assert not [p for p in shared.iterdir() if ".partial-" in p.name and not p.is_symlink()]


# ---- 2. credentials in URLs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("url, shown", [
    ("rtsp://admin:pa/ss@cam.local/stream1", "rtsp://admin:***@cam.local/stream1"),
    ("rtsp://admin:pa#ss@cam.local/stream1", "rtsp://admin:***@cam.local/stream1"),
    ("rtsp://admin:pa?ss@cam.local/stream1", "rtsp://admin:***@cam.local/stream1"),
    ("rtsp://admin:p@ss@cam.local:554/x", "rtsp://admin:***@cam.local:554/x"),
    ("rtsp://APIKEY123@cam.local/live", "rtsp://***@cam.local/live"),
    ("rtsp://AB/CD@cam.local/live", "rtsp://***@cam.local/live"),
    ("https://cdn.example/live.m3u8?token=SECRET&x=1", "https://cdn.example/live.m3u8?token=***&x=1"),
    ("https://h/x?password=SECRET", "https://h/x?password=***"),
    ("https://h/x?key=SECRET&auth=SECRET", "https://h/x?key=***&auth=***"),
    ("https://h/x?access_token=SECRET;signature=SECRET", "https://h/x?access_token=***;signature=***"),
    ("https://h/x?X-Amz-Credential=SECRET&X-Amz-Signature=SECRET&keep=1",
     "https://h/x?X-Amz-Credential=***&X-Amz-Signature=***&keep=1"),
    ("http://h/live#auth=SECRET", "http://h/live#auth=***"),
    ("RTSP://admin:SECRET@[::1]:554/x?token=SECRET", "RTSP://admin:***@[::1]:554/x?token=***"),
])
def test_redact_url_hides_every_credential(url, shown):
    assert redact_url(url) == shown
    for secret in ("pa/ss", "pa#ss", "pa?ss", "p@ss", "APIKEY123", "AB/CD", "SECRET"):
        if secret in url:
            assert secret not in redact_url(url)


@pytest.mark.parametrize("url", ["rtsp://cam.local/live", "rtsp://admin:***@cam.local:554/live?x=1",
                                 "http://[::1]:8080/a/b.mp4?start=10", "http://host/x?email=a@b.com",
                                 "not a url", "/some/file.mp4"])
def test_redact_url_leaves_urls_without_credentials_alone(url):
    assert redact_url(url) == url


def test_redact_url_never_raises_on_odd_strings():
    for odd in ["rtsp://", "rtsp://@", "://", "rtsp://[::1", "rtsp://a:b@[", "http://h/?=&&;=", "x://%zz@h",
                "admin:SECRET@host://x"]:
        assert "SECRET" not in redact_url(odd)


def test_input_spec_label_and_repr_hide_credentials():
    for url in ["rtsp://admin:pa/ss@cam.local/s", "rtsp://TOKEN123@cam.local/s", "http://h/x?token=TOKEN123"]:
        spec = parse_input(url)
        for text in (spec.label, spec.shown, repr(spec), str(spec)):
            assert "pa/ss" not in text and "TOKEN123" not in text
    with pytest.raises(CganError) as e:
        parse_input("ftp://TOKEN123@host/x")
    assert "TOKEN123" not in str(e.value)
    with pytest.raises(CganError) as e:
        parse_input("admin:TOKEN123@host://x")
    assert "TOKEN123" not in str(e.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x?token=TOKEN123", "rtsp://TOKEN123@127.0.0.1:9/x",
                                 "http://127.0.0.1:9/x?access_token=TOKEN123"])
def test_errors_for_unreachable_streams_hide_credentials(url):
    with pytest.raises(CganError) as e:
        open_source(url, reconnects=0)
    assert "TOKEN123" not in str(e.value) and "127.0.0.1:9" in str(e.value)


def test_summary_json_and_logs_hide_a_token_in_the_query(tmp_path, caplog):
    """A stream URL with ?token=: the summary (text and JSON) and the log lines name it without the token."""
    clip = make_clip(tmp_path / "clip.mp4", 6)
    with serve_folder(tmp_path) as base:
        url = f"{base}/{clip.name}?token=TOKEN123&sig=TOKEN123"
        with caplog.at_level(logging.DEBUG, logger="cgan"):
            s = run_video(VideoJob(inputs=[url], output=str(tmp_path / "out.mp4"), display=False, progress=False,
                                   handle_signals=False), translator=Invert())
    assert s.frames == 6
    shown = json.dumps(s.to_dict()) + s.format() + caplog.text
    assert "TOKEN123" not in shown and "token=***" in json.dumps(s.to_dict())
