"""Reconnect waits double from `backoff` up to MAX_RECONNECT_WAIT_S: uncapped, --reconnects 20 waited 6 days
before its last try, and past ~1000 tries 2**attempt overflowed a float (OverflowError traceback)."""
from __future__ import annotations

from cgan.errors import CganError
from cgan.runtime import sources
from cgan.runtime.sources import MAX_RECONNECT_WAIT_S, CaptureSource


class _Stop:
    def __init__(self):
        self.waits = []

    def wait(self, seconds):
        self.waits.append(seconds)
        return False

    def is_set(self):
        return False


class _Cap:
    def release(self):
        pass


def test_waits_double_then_stay_at_the_cap():
    src = object.__new__(CaptureSource)  # no camera: only the reconnect loop
    src.name, src.reconnects, src.backoff, src.stop, src.cap = "camera 0", 1200, 0.5, _Stop(), _Cap()

    def never(*a, **k):
        raise CganError("camera 0 is not there")

    src._open = never
    assert src._reconnect() is None
    waits = src.stop.waits
    assert len(waits) == 1200
    assert waits[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(waits) == MAX_RECONNECT_WAIT_S == waits[-1]
    assert sum(waits) < 1200 * MAX_RECONNECT_WAIT_S


def test_cli_help_says_so():
    from click.testing import CliRunner

    from cgan.runtime.cli import cli

    out = CliRunner().invoke(cli, ["--help"]).output
    assert "at most 30 s" in " ".join(out.split())
    assert sources.MAX_RECONNECT_WAIT_S == 30.0
