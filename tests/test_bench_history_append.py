"""A history file without a final newline (edited by hand, or an append cut short) had the next run glued onto
its last line: both records were lost to read_history."""
from __future__ import annotations

import json

from cgan.benchmarks.report import RESULT_FORMAT, append_history, read_history


def _result(i):
    return {"format": RESULT_FORMAT, "kind": "inference", "env": {"date": f"2026-12-0{i}"}, "rows": []}


def test_append_after_a_missing_final_newline_keeps_every_run(tmp_path):
    p = tmp_path / "history.jsonl"
    append_history(p, _result(1))
    append_history(p, _result(2))
    p.write_bytes(p.read_bytes()[:-1])  # the final newline gone
    append_history(p, _result(3))
    runs = read_history(p)
    assert len(runs) == 3
    assert p.read_bytes().endswith(b"}\n") and p.read_bytes().count(b"\n") == 3
    for line in p.read_text().splitlines():
        json.loads(line)


def test_append_to_a_new_or_empty_file(tmp_path):
    for name, start in (("new.jsonl", None), ("empty.jsonl", b"")):
        p = tmp_path / name
        if start is not None:
            p.write_bytes(start)
        append_history(p, _result(1))
        assert not p.read_bytes().startswith(b"\n") and len(read_history(p)) == 1
