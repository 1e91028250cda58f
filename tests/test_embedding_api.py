"""The Python API as an embedding app uses it: frames refused before they are converted, any iterable of
frames, flat frames, ONNX Runtime failures, NaN outputs, pickling, thread counts, odd pair arguments and the
messages for tampered pairs (an adversarial review of the API found each of these)."""
from __future__ import annotations

import copy
import gc
import os
import pickle
import re
import tracemalloc
import warnings
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from cgan.errors import CganError, IntegrityError
from cgan.runtime import frames as fr
from cgan.runtime.translator import FORKED_IN_USE

rng = np.random.default_rng(7)


@pytest.fixture(scope="module")
def ort_translator():
    pytest.importorskip("onnxruntime")
    from cgan.runtime import Translator

    t = Translator.load("summer2winter", backend="ort-cpu", threads=1)
    yield t
    t.close()


# ---- frames ---------------------------------------------------------------------------------------------
def test_a_frame_over_the_limit_is_refused_before_it_is_converted(ort_translator):
    """A 20000² float frame was converted (isfinite, astype: gigabytes) before its size was checked."""
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.float32), (20000, 20000, 3))  # no memory of its own
    tracemalloc.start()
    try:
        with pytest.raises(CganError, match=r"frame 20000x20000 .*over the limit"):
            ort_translator.translate(huge)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


def test_the_limit_message_names_the_size_given_and_the_size_the_model_sees():
    with pytest.raises(CganError, match=r"frame 17x1 \(the model would see 20x16\)"):
        fr.check_pixels(16, 20, 256, given=(1, 17))


@pytest.mark.parametrize("make", [lambda fs: (f for f in fs), deque, tuple, lambda fs: np.stack(fs)])
def test_translate_batch_takes_any_iterable_of_frames(ort_translator, make):
    frames = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(2)]
    want = ort_translator.translate_batch(frames)
    got = ort_translator.translate_batch(make(frames))
    assert len(got) == 2 and all(np.array_equal(a, b) for a, b in zip(want, got))


@pytest.mark.parametrize("bad,match", [("frames", "got str"), (np.zeros((24, 32, 3), np.uint8), "translate\\(\\)"),
                                       ([], "non-empty"), (5, "got int")])
def test_translate_batch_refuses_what_is_not_frames(ort_translator, bad, match):
    with pytest.raises(CganError, match=match):
        ort_translator.translate_batch(bad)


def test_dither_if_flat_leaves_real_frames_alone():
    x = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    x[::7, ::7] = 9  # flat where the quick look looks, not elsewhere
    before = x.copy()
    assert fr.dither_if_flat(x) is False and np.array_equal(x, before)
    for colour in ((0, 0, 0), (30, 200, 255)):  # one pixel off: its first, middle and last rows look flat
        near = np.full((40, 56, 3), colour, np.uint8)
        near[13, 29] = (1, 201, 254)
        before = near.copy()
        assert fr.dither_if_flat(near) is False and np.array_equal(near, before)
    flat = np.full((40, 56, 3), (0, 128, 255), np.uint8)
    assert fr.dither_if_flat(flat) is True
    assert set(np.unique(flat[..., 0])) == {0, 1} and set(np.unique(flat[..., 2])) == {254, 255}
    assert np.array_equal(flat[..., 1] - 128, flat[..., 0])  # one pattern for every channel


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (30, 200, 255)])
def test_flat_frames_give_the_same_image_on_every_backend(ort_translator, colour):
    """A black frame gave mean 87 on ort-cpu and 155 on torch (InstanceNorm of zero variance)."""
    pytest.importorskip("torch")
    from cgan.runtime import Translator

    frame = np.full((48, 64, 3), colour, np.uint8)
    with Translator.load("summer2winter", backend="torch", device="cpu", threads=1) as t:
        a, b = ort_translator.translate(frame), t.translate(frame)
    assert np.abs(a.astype(int) - b).max() <= 2
    assert np.array_equal(frame, np.full((48, 64, 3), colour, np.uint8))  # the caller's frame is not touched


def test_nan_outputs_become_black_without_a_numpy_warning():
    y = np.full((1, 3, 4, 4), np.nan, np.float32)
    y[0, :, 0, 0] = [np.inf, -np.inf, 1.0]
    out = np.empty((1, 4, 4, 3), np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fr.nchw_to_bgr(y, out)
    assert out[0, 1:, 1:].max() == 0
    assert out[0, 0, 0].tolist() == [255, 0, 255]  # BGR of RGB (inf, -inf, 1)


def test_torch_backend_maps_nan_outputs_to_black_too():
    torch = pytest.importorskip("torch")
    from cgan.runtime import Translator

    with Translator.load("summer2winter", backend="torch", device="cpu", threads=1) as t:
        t.backend.net = lambda x: torch.full_like(x, float("nan"))
        out = t.translate(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    assert out.max() == 0


# ---- onnxruntime ----------------------------------------------------------------------------------------
ORT_RUN_ERROR = ("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running MaxPool "
                 "node. Name:'/m/MaxPool' Status Message: /onnxruntime_src/onnxruntime/core/providers/cpu/nn/"
                 "pool_attributes.h:101 std::vector<long int> onnxruntime::PoolAttributes::SetOutputSize(const "
                 "onnxruntime::TensorShape&, int64_t, bool*) const input_shape.NumDimensions() == 4 was false.")


def test_an_onnxruntime_failure_while_translating_is_one_clean_line(ort_translator):
    be = ort_translator.backend
    real = be.session

    class Failing:
        def __getattr__(self, name):
            return getattr(real, name)

        def run_with_iobinding(self, *a):
            raise RuntimeError(ORT_RUN_ERROR)

    be.session = Failing()
    try:
        with pytest.raises(CganError) as e:
            ort_translator.translate(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    finally:
        be.session = real
    text = str(e.value)
    assert "\n" not in text and "onnxruntime_src" not in text and "[ONNXRuntimeError]" not in text
    assert "G.fp32.onnx on a batch of 1x24x32x3" in text and "input_shape.NumDimensions() == 4 was false" in text
    ort_translator.translate(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))  # and it goes on


def test_onnxruntime_prints_nothing_an_app_cannot_silence(ort_translator):
    assert ort_translator.backend._session_options().log_severity_level == 4


# ---- lifecycle ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", [pickle.dumps, copy.copy, copy.deepcopy])
def test_a_translator_is_not_pickled_or_copied(ort_translator, how):
    """copy.copy shared the backend, so closing the copy closed the original; pickle raised a raw TypeError."""
    with pytest.raises(CganError, match="load one per process"):
        how(ort_translator)
    assert not ort_translator.closed


def test_a_torch_translator_leaves_the_apps_thread_count_alone():
    """threads= holds for the translator's own calls (it was set at load and put back at close or collection)."""
    torch = pytest.importorskip("torch")
    from cgan.runtime import Translator

    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    t = Translator.load("summer2winter", backend="torch", device="cpu", threads=want)
    assert torch.get_num_threads() == before
    t.translate(np.zeros((16, 16, 3), np.uint8))
    assert torch.get_num_threads() == before
    del t
    gc.collect()
    assert torch.get_num_threads() == before


# ---- pair and backend arguments -------------------------------------------------------------------------
class _PathLike:
    def __init__(self, p):
        self.p = p

    def __fspath__(self):
        return str(self.p)


def test_pair_arguments_an_app_may_pass(tmp_path):
    from cgan.pairs import resolve
    from cgan.runtime import available_backends

    embedded = resolve("summer2winter").folder
    assert resolve(_PathLike(embedded)).folder == embedded
    for bad, match in (("x" * 300, "cannot look up"), (str(tmp_path / ("y" * 300)), "cannot look up"),
                       ("", "name or a folder"), ("  ", "name or a folder"), (5, "got 5"),
                       (b"summer2winter", "name or a folder")):
        with pytest.raises(CganError, match=match):
            resolve(bad)
    with pytest.raises(CganError, match="cannot look up"):
        available_backends("x" * 300)


@pytest.mark.parametrize("backend", [["ort-cpu"], {"ort-cpu": 1}, None, 1])
def test_backend_names_of_other_types_are_one_line_errors(backend):
    from cgan.runtime import Translator

    with pytest.raises(CganError, match="unknown backend"):
        Translator.load("summer2winter", backend=backend)


def _copy_pair(tmp_path) -> Path:
    import shutil

    from cgan.pairs import resolve

    dst = tmp_path / "pair"
    shutil.copytree(resolve("summer2winter").folder, dst)
    return dst


def _edit(folder: Path, change) -> None:
    import json

    meta = json.loads((folder / "pair.json").read_text())
    change(meta)
    (folder / "pair.json").write_text(json.dumps(meta))


def test_tampered_pair_messages(tmp_path):
    from cgan.pairs import load_pair

    p = _copy_pair(tmp_path)
    _edit(p, lambda m: m.update(spec="summer"))
    with pytest.raises(CganError, match=r"pair spec is not a mapping of generator and domains \(got str\)"):
        load_pair(p)
    p = _copy_pair(tmp_path / "b")
    _edit(p, lambda m: m.update(version="1"))
    with pytest.raises(IntegrityError, match="has version '1'; this cgan reads version 1:"):
        load_pair(p)
    p = _copy_pair(tmp_path / "c")  # (a missing spec was said as "pair spec is missing 'domains'")
    _edit(p, lambda m: m.pop("spec"))
    with pytest.raises(IntegrityError, match=r"pair.json has no spec \(the generator's architecture and the "
                                             r"domains' names\); re-create the pair$"):
        load_pair(p)
    p = _copy_pair(tmp_path / "d")
    _edit(p, lambda m: m.pop("files"))
    with pytest.raises(IntegrityError, match=r"must list files for G and/or F, got None; re-create the pair$"):
        load_pair(p)


def test_a_weight_file_linked_out_of_its_pair_is_named_as_a_link(tmp_path):
    from cgan.runtime import Translator

    p = _copy_pair(tmp_path)
    outside = tmp_path / "elsewhere.safetensors"
    os.replace(p / "G.safetensors", outside)
    os.symlink(outside, p / "G.safetensors")
    with pytest.raises(IntegrityError, match=r"names 'G.safetensors', a link to .*elsewhere.safetensors outside"):
        Translator.load(str(p), backend="ort-cpu")


def test_a_nul_in_a_listed_name_and_an_unreadable_manifest_are_one_line_errors(tmp_path):
    from cgan._files import inside, read_json

    with pytest.raises(IntegrityError, match="NUL character"):
        inside(tmp_path, "G.safe\x00tensors")
    if os.path.exists("/proc/self/pagemap"):
        link = tmp_path / "pair.json"
        os.symlink("/proc/self/pagemap", link)
        with pytest.raises(CganError, match="cannot read pair.json"):
            read_json(link, "pair.json")


def test_quiet_opencv_is_where_the_docs_say():
    """docs/video.md tells an app to call cgan.runtime.sources.quiet_opencv (it moved to cgan._codecs)."""
    from cgan.runtime.sources import quiet_opencv

    quiet_opencv("ERROR")


FORK_WHILE_IN_USE = """
import multiprocessing as mp, sys
import numpy as np
from cgan.errors import CganError
from cgan.runtime import Translator

t = Translator.load("summer2winter", backend="ort-cpu")
frame = np.zeros((32, 32, 3), np.uint8)


def child(q):
    for who in ("inherited", "closed"):
        try:
            t.translate(frame)
            q.put(f"{who}: translated")
        except CganError as e:
            q.put(f"{who}: {e}")
        t.close()
    with Translator.load("summer2winter", backend="ort-cpu") as own:
        q.put(f"own: {own.translate(frame).shape}")


t._lock.acquire()  # as a thread of this process inside translate() holds it at the fork
ctx = mp.get_context("fork")
q = ctx.Queue()
p = ctx.Process(target=child, args=(q,))
p.start()
p.join(60)
if p.is_alive():
    p.kill()
    print("HUNG")
else:
    print([q.get() for _ in range(3)])
t._lock.release()
print(t.translate(frame).shape)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_translator_in_use_when_the_process_forks_says_so_in_the_child(tmp_path):
    """A child forked while a thread of the parent was inside translate() (its lock held) waited for ever on the
    Translator it inherited. It now says in one line to load one there; one it loads itself works, and so does
    the parent's."""
    import ast
    import subprocess
    import sys

    script = tmp_path / "fork.py"
    script.write_text(FORK_WHILE_IN_USE)
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert p.returncode == 0 and "HUNG" not in p.stdout, (p.stdout, p.stderr[-2000:])
    got, parent = p.stdout.strip().splitlines()[-2:]
    assert ast.literal_eval(got) == ["inherited: " + FORKED_IN_USE, "closed: this Translator is closed; load a new one",
                         "own: (32, 32, 3)"]
    assert parent == "(32, 32, 3)"


@pytest.mark.parametrize("h,w,bad", [(0, 0, "height 0"), (-5, 10, "height -5"), (10.5, 20, "height 10.5"),
                                     ("a", 3, "height 'a'"), (16, True, "width True")])
def test_model_size_refuses_what_is_not_a_frame_size(ort_translator, h, w, bad):
    """model_size(0, 0) and (-5, 10) answered (16, 16), (10.5, 20) answered (16, 20), ('a', 3) was a TypeError."""
    with pytest.raises(CganError, match=rf"^model_size takes .*\(integers >= 1\), got {re.escape(bad)}$"):
        ort_translator.model_size(h, w)
    assert ort_translator.model_size(np.int64(30), 41) == (32, 44)
