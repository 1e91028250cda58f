"""cgan-video with the real Translator (torch backend, CPU) on a tiny pair: the whole path end to end."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
runtime = pytest.importorskip("cgan.runtime")
if not hasattr(runtime, "Translator"):
    pytest.skip("cgan.runtime.Translator not there yet", allow_module_level=True)

from cgan._cli import run  # noqa: E402
from cgan.runtime.cli import cli  # noqa: E402
from cgan.runtime.video import VideoJob, run_video  # noqa: E402
from cgan.spec import GeneratorSpec, PairSpec  # noqa: E402
from cgan.trainer.networks import build_generator  # noqa: E402
from cgan.trainer.weights import save_pair  # noqa: E402

from _helpers_video import make_clip, probe  # noqa: E402


@pytest.fixture
def tiny_pair(tmp_path):
    torch.manual_seed(0)
    spec = PairSpec(GeneratorSpec(blocks=1, ngf=4), "a", "b")
    sd = build_generator(spec.generator).state_dict()
    folder = tmp_path / "pair"
    save_pair(folder, spec, {"G": sd, "F": sd})
    return folder


def test_real_translator_video_round_trip(tmp_path, tiny_pair):
    clip = make_clip(tmp_path / "in.mp4", 6, (64, 48), fps=10)
    out = tmp_path / "out.avi"
    s = run_video(VideoJob(inputs=[str(clip)], pair=str(tiny_pair), backend="torch", output=str(out),
                           display=False, progress=False, handle_signals=False, smooth=True))
    assert s.frames == 6 and s.outputs == [str(out)]
    n, fps, size = probe(out)
    assert (n, size) == (6, (64, 48)) and fps == pytest.approx(10, abs=0.01)


def test_cli_with_real_translator(tmp_path, tiny_pair, capsys):
    a = make_clip(tmp_path / "a.mp4", 4, (64, 48))
    b = make_clip(tmp_path / "b.mp4", 4, (40, 32))
    code = run(cli, ["--pair", str(tiny_pair), "--direction", "F", "--backend", "torch", "--input", str(a),
                     "--input", str(b), "--output", str(tmp_path / "o.mp4"), "--side-by-side", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "frames 8" in out
    assert probe(tmp_path / "o_0.mp4")[::2] == (4, (128, 48))
    assert probe(tmp_path / "o_1.mp4")[::2] == (4, (80, 32))
