#!/usr/bin/env python3
"""Adopt what a GPU lease brought back (the files of scripts/gpu_session.sh's $OUT) into the repository.

    python scripts/adopt_lease.py /work/.device/<files folder>            # pair + results, then prints next steps
    python scripts/adopt_lease.py DIR --no-pair                           # results only (the training failed)

- pair.tar: checks the pair (hashes, spec: 9 blocks, ngf 32, summer/winter, FP16, ≤ 12 MiB for both files),
  records where and how it was trained in pair.json's provenance, adds the in-pair ONNX graphs (so the pair
  runs without torch: cgan.export.pair_graph), and replaces cgan/data/pairs/summer2winter
  (the old one is kept in a temp folder until the new one is in place). Refuses a pair whose schedule was cut
  short unless --accept-cut-short.
- bench-gpu.json / .png → benchmarks/results/<gpu>-<date>.{json,png} (schema-checked), history.jsonl lines
  appended to benchmarks/history.jsonl (duplicates skipped), profile-*.json and train-speed.json beside them.
Nothing is committed: it prints the cgan-eval and git commands to run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_PAIR_BYTES = 12 * 2**20


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "gpu"


def adopt_pair(tar_path: Path, repo: Path, accept_cut_short: bool) -> tuple[Path, dict]:
    from cgan.errors import CganError
    from cgan.export.pair_graph import add_pair_graphs
    from cgan.pairs import load_pair, write_pair_json

    with tempfile.TemporaryDirectory(dir=repo) as tmp:
        with tarfile.open(tar_path) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith("pair_fp16/")
                       and "/" not in m.name[len("pair_fp16/"):] and ".." not in m.name]
            try:
                tar.extractall(tmp, members=members, filter="data")
            except TypeError:  # Python < 3.11.4 has no filters; the members are already plain files, flat names
                tar.extractall(tmp, members=members)
        src = Path(tmp) / "pair_fp16"
        pair = load_pair(src)  # checks sizes and sha256
        g = pair.spec.generator
        problems = []
        if (g.blocks, g.ngf, pair.spec.domain_x, pair.spec.domain_y) != (9, 32, "summer", "winter"):
            problems.append(f"spec {g.blocks} blocks ngf {g.ngf} {pair.spec.name}, expected 9 blocks ngf 32 "
                            f"summer2winter")
        dtypes = {rec.get("dtype") for rec in pair.files.values()}
        if dtypes != {"float16"} or set(pair.files) != {"G", "F"}:
            problems.append(f"files {sorted(pair.files)} {sorted(map(str, dtypes))}, expected G and F in float16")
        size = sum(int(rec["bytes"]) for rec in pair.files.values())
        if size > MAX_PAIR_BYTES:
            problems.append(f"{size / 2**20:.1f} MiB for both files, the embedded limit is 12 MiB")
        training = dict(pair.meta.get("training") or {})
        if training.get("stopped_by_budget") and not accept_cut_short:
            problems.append("its schedule was cut short by the time budget (--accept-cut-short to take it anyway)")
        if problems:
            raise CganError(f"{tar_path}: not adopted: " + "; ".join(problems))
        speed = src / "train-speed.json"
        provenance = {
            "name": "summer2winter", "source": "cgan-train",
            "data": "summer2winter_yosemite trainA/trainB (CycleGAN, Zhu et al. 2017)",
            "trained_on": training.get("device"), "git_sha": training.get("git_sha"),
            "adopted": dt.date.today().isoformat(),
            "training": (f"{training.get('seconds')} s, {training.get('steps')} steps, batch "
                         f"{training.get('batch_size')}, lr {training.get('lr')}, {training.get('precision')}, "
                         f"schedule {training.get('epochs')} + {training.get('epochs_decay')} epochs fitted to a "
                         f"{training.get('time_budget')} s budget (scripts/gpu_session.sh)"),
        }
        if training.get("init_from"):
            provenance["initialized_from"] = training["init_from"]
        if speed.is_file():
            provenance["train_speed"] = json.loads(speed.read_text()).get("rows")
        write_pair_json(src, pair.spec, pair.files, "float16", training, provenance)  # (records checked on load)
        # the in-pair ONNX graphs (a few tens of KB, reading the new weights) let the pair run without torch
        pair = add_pair_graphs(src)
        target = repo / "cgan" / "data" / "pairs" / "summer2winter"
        keep = [src / "pair.json"] + [src / rec["path"] for rec in pair.records()]
        staged = Path(tmp) / "staged"
        staged.mkdir()
        for f in keep:
            shutil.copy2(f, staged / f.name)
        extras = [f for f in src.iterdir() if f.name not in {k.name for k in keep}]
        side = unused(repo / "benchmarks" / "results" / f"lease-train-{dt.date.today().isoformat()}")
        if extras:
            side.mkdir(parents=True)
            for f in extras:  # log.csv, config.json, train-speed.json, sample grids
                shutil.copy2(f, side / f.name)
        old = target.with_name(target.name + ".replaced")
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        try:
            staged.rename(target)
        except OSError:
            if old.exists():
                old.rename(target)  # put the previous pair back
            raise
        shutil.rmtree(old, ignore_errors=True)
        return target, training


def unused(path: Path) -> Path:
    """`path`, or `path` with -2, -3 ... before its suffix when it exists (a second lease the same day)."""
    n, candidate = 2, path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def check_results(src: Path) -> None:
    """Refuse results that cannot be filed before anything (the pair included) is changed."""
    from cgan.benchmarks.report import schema_errors
    from cgan.errors import CganError

    for name in ("bench-gpu.json", "profile-eager.json", "profile-compiled.json"):
        f = src / name
        if f.is_file():
            try:
                data = json.loads(f.read_text())
            except ValueError as e:
                raise CganError(f"{f} is not JSON ({e}): the lease's run was cut off?") from None
            errors = schema_errors(data) if name == "bench-gpu.json" else []
            if errors:
                raise CganError(f"{f} does not match the result schema: {errors[:3]}")
    hist = src / "history.jsonl"
    if hist.is_file():
        for i, line in enumerate(hist.read_text().splitlines(), 1):
            try:
                line.strip() and json.loads(line)
            except ValueError:
                raise CganError(f"{hist} line {i} is not JSON: the lease's run was cut off?") from None


def adopt_results(src: Path, repo: Path) -> list[Path]:
    from cgan.benchmarks.report import read_history

    written = []
    results = repo / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    bench = src / "bench-gpu.json"
    stem = None
    if bench.is_file():
        result = json.loads(bench.read_text())
        env = result.get("env") or {}
        date = str(env.get("date") or dt.date.today().isoformat())[:10]
        stem = unused(results / f"{slug(str(env.get('gpu') or 'gpu'))}-{date}.json").stem
        shutil.copy2(bench, results / f"{stem}.json")
        written.append(results / f"{stem}.json")
        if (src / "bench-gpu.png").is_file():
            shutil.copy2(src / "bench-gpu.png", results / f"{stem}.png")
            written.append(results / f"{stem}.png")
    for name in ("profile-eager.json", "profile-compiled.json"):
        if (src / name).is_file():
            dest = unused(results / (f"{stem}-{name}" if stem else f"lease-{dt.date.today().isoformat()}-{name}"))
            shutil.copy2(src / name, dest)
            written.append(dest)
    hist_new = src / "history.jsonl"
    if hist_new.is_file():
        hist = repo / "benchmarks" / "history.jsonl"
        have = {json.dumps(h, sort_keys=True) for h in read_history(hist)} if hist.is_file() else set()
        lines = [ln for ln in hist_new.read_text().splitlines() if ln.strip()]
        fresh = [ln for ln in lines if json.dumps(json.loads(ln), sort_keys=True) not in have]
        if fresh:
            with open(hist, "a", encoding="utf-8") as f:
                f.write("".join(ln + "\n" for ln in fresh))
            written.append(hist)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("files", type=Path, help="folder holding the lease's files (pair.tar, bench-gpu.json, ...)")
    p.add_argument("--repo", type=Path, default=ROOT, help="repository root (default: this checkout)")
    p.add_argument("--no-pair", action="store_true", help="adopt the results only")
    p.add_argument("--accept-cut-short", action="store_true", help="adopt a pair whose schedule was cut short")
    a = p.parse_args(argv)
    sys.path.insert(0, str(a.repo))
    from cgan.errors import CganError

    try:
        if not a.files.is_dir():
            raise CganError(f"{a.files} is not a folder of lease files")
        check_results(a.files)
        if not a.no_pair:
            if not (a.files / "pair.tar").is_file():
                raise CganError(f"{a.files} has no pair.tar (the training stage failed?); use --no-pair")
            target, training = adopt_pair(a.files / "pair.tar", a.repo, a.accept_cut_short)
            print(f"pair adopted into {target}: {training.get('steps')} steps, {training.get('seconds')} s on "
                  f"{training.get('device')}")
        for f in adopt_results(a.files, a.repo):
            print(f"wrote {f}")
    except (CganError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("next: python -m pytest -q; cgan-eval --json benchmarks/results/quality-summer2winter-$(date +%F).json "
          "--grid docs/img/summer2winter_grid.png  (31 min on 2 cores); update README's numbers; git add + commit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
