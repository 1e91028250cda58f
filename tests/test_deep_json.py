"""JSON nested deeper than Python's parser goes ('[' * 100000, 200 KB, under every size cap) was a RecursionError
traceback wherever cgan reads JSON from a file: pair.json, an export's manifest.json, a safetensors header, a
benchmark history. Each is now the same one-line refusal as any other broken file."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from _helpers_runtime import make_export, make_pair
from cgan._cli import run
from cgan.errors import IntegrityError

DEEP = "[" * 100_000 + "]" * 100_000


def test_read_json(tmp_path):
    from cgan._files import read_json

    p = tmp_path / "deep.json"
    p.write_text(DEEP)
    with pytest.raises(IntegrityError, match="nested too deeply"):
        read_json(p, "pair.json")


def test_cgan_video_on_a_pair_with_a_deep_pair_json_is_one_line(tmp_path, capsys):
    from cgan.runtime.cli import cli

    pair = make_pair(tmp_path / "pair", blocks=1, ngf=4)
    (pair / "pair.json").write_text(DEEP)
    code = run(cli, ["--pair", str(pair), "--input", "demo", "--output", str(tmp_path / "o.mp4"), "--no-display",
                     "--max-frames", "1"])
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err and "nested too deeply" in err
    assert not (tmp_path / "o.mp4").exists()


def test_translator_on_an_export_with_a_deep_manifest(tmp_path):
    from cgan.runtime import Translator

    export = make_export(make_pair(tmp_path / "pair", blocks=1, ngf=4), tmp_path / "export")
    (export / "manifest.json").write_text(DEEP)
    with pytest.raises(IntegrityError, match="nested too deeply"):
        Translator.load(str(export), backend="ort-cpu")


def test_safetensors_header(tmp_path):
    from cgan.export.pair_graph import tensor_layout

    header = DEEP.encode()
    p = tmp_path / "G.safetensors"
    p.write_bytes(struct.pack("<Q", len(header)) + header + np.zeros(8, np.uint8).tobytes())
    with pytest.raises(IntegrityError, match="unreadable safetensors header"):
        tensor_layout(p)


def test_bench_history_with_a_deep_line(tmp_path):
    from cgan.benchmarks.checks import check_history_file
    from cgan.benchmarks.report import RESULT_FORMAT, read_history
    from cgan.errors import CganError

    first_bad = tmp_path / "first.jsonl"
    first_bad.write_text(DEEP + "\n")
    with pytest.raises(CganError, match="line 1 is nested too deeply"):
        check_history_file(first_bad)
    later_bad = tmp_path / "history.jsonl"  # after good lines: skipped with a warning, like any broken line
    later_bad.write_text(json.dumps({"format": RESULT_FORMAT}) + "\n" + DEEP + "\n")
    check_history_file(later_bad)
    assert len(read_history(later_bad)) == 1
