"""An output folder that os.access calls writable but that refuses files (/proc, a read-only mount; every folder
passes os.access for root) was blamed on the codec: "this OpenCV build cannot write .mp4 ... use .mp4"."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from cgan.errors import CganError
from cgan.runtime.video import check_output


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.path.isdir("/proc"), reason="needs /proc")
def test_a_folder_that_refuses_files_is_named_not_the_codec():
    with pytest.raises(CganError, match="is not writable") as e:
        check_output(Path("/proc/out.mp4"))
    assert "codec" not in str(e.value)


def test_a_writable_folder_passes(tmp_path):
    assert check_output(tmp_path / "o.mp4") == "mp4v"
    assert not list(tmp_path.iterdir())  # the probes are removed
