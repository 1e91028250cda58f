"""Messages that pointed the wrong way: --seed 1e20 "must be >= 0"; a training run folder given where a pair
goes "not a cgan pair or export" (its pair is RUN/pair); cgan-eval ignored .tif/.ppm photos the trainer reads."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from _helpers_runtime import make_pair
from cgan.errors import CganError


def test_seed_too_large_says_the_range(tmp_path):
    from _helpers_trainer import tiny_config

    with pytest.raises(CganError, match=r"--seed must be 0\.\.9223372036854775807, got 99999999999999999999"):
        tiny_config(tmp_path, tmp_path, seed=99999999999999999999)


def test_a_run_folder_points_at_its_pair(tmp_path):
    from cgan.pairs import resolve

    run = tmp_path / "runs" / "s2w"
    make_pair(run / "pair", blocks=1, ngf=4)
    with pytest.raises(CganError, match=r"is a pair \(a training run's result\): pass .*s2w/pair"):
        resolve(str(run))
    (run / "config.json").write_text("{}")  # a finished cgan-train run: its folder stands for its pair
    got = resolve(str(run))
    assert (got.kind, got.folder) == ("pair", run / "pair")
    with pytest.raises(CganError, match="not a cgan pair or export"):
        resolve(str(tmp_path / "runs"))


def test_eval_reads_every_photo_type_the_trainer_reads(tmp_path):
    from cgan._files import IMAGE_EXTS
    from cgan.benchmarks.quality import list_images

    img = np.full((8, 8, 3), 100, np.uint8)
    for ext in (".tif", ".ppm", ".png"):
        cv2.imwrite(str(tmp_path / f"a{ext}"), img)
    assert [p.suffix for p in list_images(tmp_path)] == [".png", ".ppm", ".tif"]
    assert {".tif", ".tiff", ".ppm", ".webp"} <= set(IMAGE_EXTS)


def test_a_domain_with_its_images_in_a_sub_folder_says_where_they_are(tmp_path):
    from cgan.trainer.data import list_images

    (tmp_path / "trainA" / "2019").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "trainA" / "2019" / "a.png"), np.full((8, 8, 3), 100, np.uint8))
    with pytest.raises(CganError, match=r"sub-folders are not read\), but .*trainA/2019 has some"):
        list_images(tmp_path / "trainA", "domain X (summer)")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CganError, match="is empty"):
        list_images(tmp_path / "empty", "domain X (summer)")
