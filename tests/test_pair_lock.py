"""One writer at a time per pair folder (cgan._locks.folder_lock): save_pair and `cgan-export --in-pair` wait
for each other, so pair.json never lists another writer's files; the lock is reentrant within a thread and
best effort for save_pair where no lock can be taken."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from _helpers_runtime import make_pair
from cgan._locks import folder_lock
from cgan.errors import CganError
from cgan.pairs import graph_name, load_pair


def _new_states(pair, scale):
    from cgan.trainer.weights import load_generator

    p = load_pair(pair)
    states = {g: load_generator(p, g).state_dict() for g in ("G", "F")}
    for v in states["G"].values():
        v.mul_(scale)
    return p.spec, states


def _in_thread(fn):
    done, errors = threading.Event(), []

    def run():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            errors.append(e)
        finally:
            done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, done, errors


def test_save_pair_waits_for_the_folders_lock(tmp_path):
    from cgan.trainer.weights import save_pair

    pair = make_pair(tmp_path / "pair", blocks=1, ngf=4)
    spec, states = _new_states(pair, 0.5)
    before, old_g = (pair / "pair.json").read_bytes(), load_pair(pair).files["G"]["sha256"]
    with folder_lock(pair, "test holds it"):
        t, done, errors = _in_thread(lambda: save_pair(pair, spec, states, "float32"))
        assert not done.wait(1.5)  # the writer waits (the lock is polled every 50 ms)
        assert (pair / "pair.json").read_bytes() == before
    assert done.wait(30) and not errors
    assert load_pair(pair).files["G"]["sha256"] != old_g  # verified: pair.json lists the new files on disk


def test_save_pair_during_in_pair_graphs_waits_and_both_land(tmp_path, monkeypatch):
    """Before the lock, new weights saved while --in-pair was checking its graphs made --in-pair fail ("changed
    while its graphs were made"); a little later (between that check and pair.json) they would have left
    pair.json listing the old weights. Now the save waits: the graphs land for the old weights, then the save
    replaces the weights and removes the graph of the changed G (F's weights come out byte for byte the same:
    its graph stays); the folder verifies at every step."""
    from cgan.export import parity
    from cgan.export.pair_graph import add_pair_graphs
    from cgan.trainer.weights import save_pair

    pair = make_pair(tmp_path / "pair", blocks=1, ngf=4)
    spec, states = _new_states(pair, 0.5)
    real, seen = parity.check_generator, {}

    def meanwhile(net, variants, frames, thresholds=None):
        if "writer" not in seen:  # another writer (e.g. a trainer's export-pair) starts while G is checked
            seen["writer"] = _in_thread(lambda: save_pair(pair, spec, states, "float32"))
            seen["finished_early"] = seen["writer"][1].wait(1.0)
        return real(net, variants, frames, thresholds)

    monkeypatch.setattr(parity, "check_generator", meanwhile)
    with_graphs = add_pair_graphs(pair)
    assert not seen["finished_early"]
    assert set(with_graphs.graphs) == {"G", "F"}
    t, done, errors = seen["writer"]
    assert done.wait(30) and not errors
    after = load_pair(pair)
    assert set(after.graphs) == {"F"} and not (pair / graph_name("G")).exists()  # G's stale graph gone
    assert after.files["G"]["sha256"] != with_graphs.files["G"]["sha256"]


def test_the_lock_is_reentrant_in_one_thread(tmp_path):
    """`cgan-export --pretrained` holds the imported pair's folder while the import's save_pair takes it again."""
    from cgan.trainer.weights import save_pair

    pair = make_pair(tmp_path / "pair", blocks=1, ngf=4)
    spec, states = _new_states(pair, 2.0)
    with folder_lock(pair, "outer"):
        t, done, errors = _in_thread(lambda: None)  # a thread to show the main thread is not blocked below
        save_pair(pair, spec, states, "float32")
    assert done.wait(5) and not errors
    load_pair(pair)


def test_no_lock_possible_save_pair_still_writes_exports_say_so(tmp_path, monkeypatch):
    from cgan.export.api import export_lock
    from cgan.trainer.weights import save_pair

    pair = make_pair(tmp_path / "pair", blocks=1, ngf=4)
    spec, states = _new_states(pair, 0.5)
    blocked = tmp_path / "home-is-a-file"
    blocked.write_text("")
    monkeypatch.setenv("CGAN_HOME", str(blocked))
    save_pair(pair, spec, states, "float32")  # a trainer on a machine whose $CGAN_HOME cannot be written
    assert load_pair(pair).files["G"]["sha256"]
    # an export into a writable folder failed, naming $CGAN_HOME/locks: its lock goes to this user's folder in
    # the system's temp folder instead (two exports there still wait for each other)
    import tempfile

    from cgan._locks import lock_file

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "systmp"))  # (nothing left in the real /tmp)
    (tmp_path / "systmp").mkdir()
    with export_lock(tmp_path / "out"):
        held = lock_file(tmp_path / "out")
        assert held.parent == Path(tempfile.gettempdir()) / f"cgan-locks-{os.getuid()}"
        def take():
            with export_lock(tmp_path / "out"):
                pass

        t, done, errors = _in_thread(take)
        assert not done.wait(1.5)  # waits for this one
    assert done.wait(10) and not errors
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(blocked))  # nowhere to put it: said in one line
    with pytest.raises(CganError, match="cgan lock folder"):
        with export_lock(tmp_path / "other"):
            pass


def test_two_threads_wait_for_each_other(tmp_path):
    order = []

    def second():
        with folder_lock(tmp_path, "waits"):
            order.append("second")

    with folder_lock(tmp_path, "first"):
        t, done, errors = _in_thread(second)
        time.sleep(0.5)
        order.append("first")
    assert done.wait(5) and not errors
    assert order == ["first", "second"]


def test_a_pair_write_that_was_killed_leaves_no_temp_files_behind_the_next(tmp_path):
    """A SIGKILL while the pair was written left `.G.safetensors.*.tmp` (a whole 45 MB file for the default
    network) for good: export-pair, --resume and cgan-export wrote the pair again beside it (QA). The next pair
    write removes what a killed one left; other files stay."""
    from cgan.trainer.weights import save_pair

    pair = make_pair(tmp_path / "pair", blocks=1, ngf=4)
    spec, states = _new_states(pair, 0.5)
    left = [pair / ".G.safetensors.ud19n43_.tmp", pair / ".F.safetensors.0lzlb4ve.tmp", pair / ".pair.json.x1.tmp"]
    for t in left:
        t.write_bytes(b"partial")
    other = [pair / ".notes.txt.tmp", pair / "G.safetensors.bak"]
    for t in other:
        t.write_bytes(b"mine")
    save_pair(pair, spec, states, "float32")
    assert not any(t.exists() for t in left) and all(t.read_bytes() == b"mine" for t in other)
    assert load_pair(pair).files["G"]["sha256"]
