"""Limits every part of cgan applies (no torch, nothing of cgan but its errors): the largest frame side, and how
many CPU threads a caller may ask for. One place, so the trainer, the exporter, the runtime and the benchmarks
agree."""
from __future__ import annotations

import math
import os

from cgan.errors import CganError

#: the largest frame side: the runtime refuses frames over MAX_SIDE² pixels by default (activations would need
#: many GB), the trainer refuses --size/--load-size above it, parity and benchmark sizes likewise
MAX_SIDE = 4096
MAX_PIXELS = MAX_SIDE * MAX_SIDE

#: the most pixels a training photo may have (134 megapixels: a 100-megapixel camera's photos fit). A 250 KB PNG
#: declaring 16000x16000 took 1.2 GB to decode, per loader worker; OpenCV's own limit is 2^30
MAX_DECODE_PIXELS = 1 << 27


def limit_opencv_decoding() -> None:
    """Hold OpenCV's own decoder to MAX_DECODE_PIXELS, for every format: OpenCV reads OPENCV_IO_MAX_IMAGE_PIXELS
    once, when it loads, so the CLIs (cgan-train, cgan-video, cgan-eval) call this at import, before anything
    imports cv2; the limit then also holds in loader workers forked later. The formats whose headers cgan._images
    reads (PNG, JPEG, TIFF, WebP, BMP) are refused before decoding anyway (`bomb_size`); a PPM/PGM bomb is stopped
    here. A value the user set wins."""
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_DECODE_PIXELS))


def max_threads() -> int:
    """The most CPU threads anything may be given: 4 per logical core, at least 64 (thousands of threads made
    onnxruntime hang and torch crash)."""
    return max(64, 4 * (os.cpu_count() or 1))


def check_threads(threads: int, given: str) -> None:
    """A one-line CganError for `threads` over max_threads() (`given`: how the user said it, e.g.
    '--threads 100000')."""
    if threads > max_threads():
        raise CganError(f"{given} is more than this machine allows ({max_threads()}: 4 per logical core, "
                        f"{os.cpu_count() or 1} here, and at least 64): use at most {max_threads()}")


def _cpu_list(text: str) -> set[int]:
    """'0-3,8,10-11' (the kernel's CPU lists) -> {0, 1, 2, 3, 8, 10, 11}; empty when it does not read."""
    cpus: set[int] = set()
    try:
        for part in text.strip().split(","):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        return set()
    return cpus


def _own_cgroup(root: str, proc: str = "/proc/self/cgroup") -> list[str]:
    """cgroup v2 folders under `root` that bound this process: its own (from /proc/self/cgroup, as a systemd
    slice with CPUQuota= places it) and each parent up to the root."""
    try:
        with open(proc, encoding="ascii", errors="replace") as f:
            path = next((line.split("::", 1)[1].strip() for line in f if line.startswith("0::")), "")
    except OSError:
        path = ""
    parts = [p for p in path.strip("/").split("/") if p and p != ".."]
    return [os.path.join(root, *parts[:i]) for i in range(len(parts), 0, -1)]


def _cgroup_cpus(root: str = "/sys/fs/cgroup", proc: str = "/proc/self/cgroup") -> float | None:
    """The CPUs a CPU quota allows this process (cgroup v2 cpu.max of its own cgroup and its parents, the
    smallest; the root's, as a container shows it; v1 cpu.cfs_quota_us); None: no quota."""
    v2 = [os.path.join(folder, "cpu.max") for folder in _own_cgroup(root, proc)]
    quotas = [q for q in map(_quota, v2) if q is not None]
    if quotas:
        return min(quotas)
    for quota_file, period_file in (("cpu.max", None), ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us"),
                                    ("cpu,cpuacct/cpu.cfs_quota_us", "cpu,cpuacct/cpu.cfs_period_us")):
        if os.path.exists(os.path.join(root, quota_file)):  # the first one there says
            return _quota(os.path.join(root, quota_file), period_file and os.path.join(root, period_file))
    return None


def _quota(path: str, period_path: str | None = None) -> float | None:
    """CPUs a quota file allows: cgroup v2's cpu.max ("QUOTA PERIOD" or "max PERIOD"), or v1's cfs_quota_us
    with its cfs_period_us (-1: none); None for no quota or a file that is not there."""
    try:
        fields = []
        for p in (path, period_path) if period_path else (path,):
            with open(p, encoding="ascii") as f:
                fields += f.read().split()
        if len(fields) < 2 or fields[0] == "max" or int(fields[0]) <= 0:
            return None
        return int(fields[0]) / max(1, int(fields[1]))
    except (OSError, ValueError):
        return None


def usable_cpus() -> int:
    """The CPUs this process may run on (taskset, a container's cpuset), as torch's DataLoader counts them."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def compute_threads(cpu_root: str = "/sys/devices/system/cpu", cgroup_root: str = "/sys/fs/cgroup",
                    proc_cgroup: str = "/proc/self/cgroup") -> int:
    """How many threads a compute-bound library should run by default here: one per physical core among the
    CPUs this process may run on (taskset, a container's cpuset), at most the CPUs its quota allows (a container's
    --cpus). os.cpu_count() counts every logical CPU of the machine: on a 2-CPU container of a 64-core host with
    SMT it said 128, and onnxruntime ran 128 threads on 2 CPUs."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = list(range(os.cpu_count() or 1))
    cores: set[frozenset[int]] = set()
    topology = True
    for cpu in allowed:  # SMT siblings share a core: count each core once
        try:
            with open(f"{cpu_root}/cpu{cpu}/topology/thread_siblings_list", encoding="ascii") as f:
                siblings = _cpu_list(f.read())
        except OSError:
            siblings, topology = set(), False
        cores.add(frozenset(siblings or {cpu}))
    n = len(cores) or len(allowed) or 1
    if not topology:  # (macOS, Windows: no sysfs) psutil's physical cores, where it is installed
        try:
            import psutil

            n = min(n, int(psutil.cpu_count(logical=False) or n))
        except (ImportError, AttributeError, ValueError, TypeError, OSError):
            pass
    quota = _cgroup_cpus(cgroup_root, proc_cgroup)
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)
