"""Digits that `str.isdigit()` accepts but `int()` does not (superscripts: '²', '³') were ValueError tracebacks
in every parser that checked with isdigit() and then called int(); the parsers now check isdecimal() (exactly
what int() reads; Arabic-Indic digits are decimal and read as numbers)."""
from __future__ import annotations

import pytest

from cgan._cli import run
from cgan.errors import CganError


@pytest.mark.parametrize("text", ["²x²", "³", "6⁴0x480", "64x²"])
def test_video_size(text):
    from cgan.runtime.video import parse_size

    with pytest.raises(CganError, match="bad --size"):
        parse_size(text)


def test_video_size_decimal_digits_of_other_scripts_are_numbers():
    from cgan.runtime.video import parse_size

    assert parse_size("٣٢٠x٢٤٠") == ("exact", (320, 240))


def test_input_superscript_is_a_file_name_not_a_camera():
    from cgan.runtime.sources import parse_input

    spec = parse_input("²")
    assert spec.kind != "camera"
    assert parse_input("3").kind == "camera"


def test_cgan_video_cli_is_one_line(tmp_path, capsys):
    from cgan.runtime.cli import cli

    code = run(cli, ["--input", "demo", "--output", str(tmp_path / "o.mp4"), "--no-display", "--size", "²x²"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "bad --size" in err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("text", ["²x²", "256x²"])
def test_engine_shapes(text):
    from cgan.export.tensorrt import parse_shapes

    with pytest.raises(CganError):
        parse_shapes(text)


@pytest.mark.parametrize("text", ["⁸.⁹", "8.⁹", "sm⁸⁹"])
def test_trt_target(text):
    from cgan.export.tensorrt import parse_target

    with pytest.raises(CganError):
        parse_target(text)


def test_version_tuple_stops_at_non_decimal_digits():
    from cgan._versions import version_tuple

    assert version_tuple("1.2²") == (1, 2)
    assert version_tuple("10.12.0.38") == (10, 12, 0, 38)


def test_cuda_visible_devices_superscript_is_an_invalid_entry():
    from cgan.runtime.backends.cuda import _apply_visible

    assert _apply_visible("²", 4, None) == 0
    assert _apply_visible("1,²,0", 4, None) == 1
    assert _apply_visible("1", 4, None) == 1
