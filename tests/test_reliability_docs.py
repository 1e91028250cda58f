"""docs/RELIABILITY.md's tables match the tests: every named test exists, every reliability test is named."""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "RELIABILITY.md"
REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def table_refs() -> list[tuple[str, str]]:
    refs = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            refs += REF.findall(cells[-1])
    return refs


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.name.startswith("test_")}


def test_table_names_existing_tests():
    refs = table_refs()
    assert len(refs) >= 40, refs
    missing = [f"{f}::{name}" for f, name in refs if not (REPO / f).is_file() or name not in defined_tests(REPO / f)]
    assert not missing, f"docs/RELIABILITY.md names tests that do not exist: {missing}"


def test_every_reliability_test_is_in_the_table():
    named = set(table_refs())
    unlisted = [f"{p.relative_to(REPO)}::{name}" for p in sorted((REPO / "tests").glob("test_reliability_*.py"))
                for name in sorted(defined_tests(p)) if (str(p.relative_to(REPO)), name) not in named]
    assert not unlisted, f"reliability tests missing from docs/RELIABILITY.md: {unlisted}"


def test_parser_sees_a_bad_reference(tmp_path, monkeypatch):
    bad = tmp_path / "R.md"
    bad.write_text("| a | b | `tests/test_reliability_files.py::test_does_not_exist` |\n")
    monkeypatch.setattr(__import__(__name__), "DOC", bad)
    assert table_refs() == [("tests/test_reliability_files.py", "test_does_not_exist")]
    assert "test_does_not_exist" not in defined_tests(REPO / "tests/test_reliability_files.py")
