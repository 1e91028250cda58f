"""Small file helpers shared by every package: atomic writes, hashing, safe paths (no torch)."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterable, Iterator

from cgan.errors import CganError, IntegrityError


#: photo files the trainer and cgan-eval read (what OpenCV decodes); one list, so both read the same folders
IMAGE_EXTS = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")


def name_slug(text: str) -> str:
    """A GPU's or a model's name as part of a file name: letters and digits kept, anything else '-', lower case
    ("NVIDIA GeForce RTX 4090" -> "nvidia-geforce-rtx-4090")."""
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower()


def user_path(value: str | os.PathLike) -> Path:
    """A path as a user typed it: surrounding blanks (a copy-paste's) dropped, "~" expanded."""
    return Path(os.path.expanduser(os.fspath(value).strip()))


def path_key(p: str | os.PathLike) -> str:
    """A path's identity for collisions: the real path, case folded (case-insensitive file systems — macOS,
    Windows, exFAT, SMB shares — are common, and a false alarm only asks for another name)."""
    return os.path.realpath(p).casefold()


def visible_files(folder: Path, onerror: Any = None, leave_out: Path | None = None) -> Iterator[Path]:
    """The files under `folder`, recursively, folders in name order: hidden files and folders (a leading dot) left
    out, symlinked folders not entered, nothing under `leave_out`. `onerror` as os.walk's (None: unreadable
    folders are passed over)."""
    skip = leave_out.resolve() if leave_out is not None else None
    for root, dirs, files in os.walk(folder, onerror=onerror):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or (here / d).resolve() != skip))
        yield from (here / f for f in files if not f.startswith("."))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def nearest_existing(folder: str | os.PathLike) -> Path:
    """`folder` itself if it exists (even as a broken link), else its nearest existing parent: where a check of a
    path still to be created can look without creating anything."""
    folder = Path(folder)
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    return folder


def _not_a_folder(p: Path) -> str:
    """What stands where a folder was asked for (a link to nothing was called "a file")."""
    if p.is_symlink() and not p.exists():
        return f"a link to {os.readlink(p)}, which does not exist, not a folder"
    return "a file, not a folder"


def ensure_writable_dir(path: str | os.PathLike, what: str = "output folder", fix: str | None = None) -> Path:
    """Create `path` (and parents) and check we can write there; raise a one-line CganError if not, ending in
    `fix` (what to do) when the user did not choose the path."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".cgan-write-test-"):
            pass
    except OSError as e:
        if os.path.lexists(p) and not p.is_dir():  # (mkdir said only "File exists")
            raise CganError(f"cannot write to {what} {p}: it is {_not_a_folder(p)}; {fix or 'choose another path'}"
                            ) from None
        blocking = nearest_existing(p)
        if not blocking.is_dir():
            raise CganError(f"cannot write to {what} {p}: {blocking} is {_not_a_folder(blocking)}; "
                            f"{fix or 'choose another path'}") from None
        raise CganError(f"cannot write to {what} {p}: {e.strerror or e}; {fix or 'choose a writable folder'}"
                        ) from None
    return p


def check_folder_target(path: str | os.PathLike, option: str) -> Path:
    """Check, creating nothing, that a folder could be made (or written) at `path`: a one-line CganError if a file
    is in the way or the nearest existing folder is not writable. For outputs written last, after minutes of
    work (cgan-export --triton), whose mistakes must show up before that work."""
    p = Path(path)
    try:
        if os.path.lexists(p) and not p.is_dir():
            raise CganError(f"{option} {p} is {_not_a_folder(p)}; choose another path")
        anc = nearest_existing(p)
        if not anc.is_dir():
            raise CganError(f"{option} {p}: {anc} is {_not_a_folder(anc)}; choose another path")
        with tempfile.NamedTemporaryFile(dir=anc, prefix=".cgan-write-test-"):
            pass
    except OSError as e:
        raise CganError(f"{option} {p} cannot be written ({e.strerror or e}); choose a writable folder") from None
    return p


NAME_MAX = 255  # bytes in one file name (Linux, macOS, Windows' NTFS: 255 characters)
_RANDOM = 8  # the characters tempfile.mkstemp puts between prefix and suffix


def temp_prefix(prefix: str, suffix: str) -> str:
    """`prefix` cut (by bytes, on a character's boundary) so that a mkstemp name with it and `suffix` fits in
    NAME_MAX: a temp name beside a file whose own name is near the limit (a valid 250-byte name) was too long to
    create, and the write failed."""
    room = NAME_MAX - _RANDOM - len(os.fsencode(suffix))
    raw = os.fsencode(prefix)
    if len(raw) <= room:
        return prefix
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:  # a name of bytes that are not UTF-8 (Linux): cut as bytes
        return os.fsdecode(raw[:room])
    return raw[:room].decode("utf-8", "ignore")  # (a character cut in two is left out)


def remove_stale_temps(temps: Iterable[Path], age: float, left_by: str, log: Any) -> bool:
    """Remove the temp files among `temps` (atomic_path's, `.NAME.*.tmp`) at least `age` seconds old, each said at
    info level as left by `left_by` (a process that was killed); True when any was removed."""
    import time

    now, removed = time.time(), False
    for tmp in temps:
        with contextlib.suppress(OSError):
            if now - tmp.lstat().st_mtime >= age:
                tmp.unlink()
                removed = True
                log.info("removed %s, left by %s", tmp, left_by)
    return removed


def _new_temp(final: Path) -> Path:
    """An empty temp file beside `final` (its folder made), with the mode a new file gets."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=temp_prefix(f".{final.name}.", ".tmp"), suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def _sync_temp(tmp: Path) -> None:
    # the mode again: some writers replace the file (safetensors' save_file leaves it 0600), and a model that
    # only its writer can read breaks a Triton server or a colleague running as another user
    os.chmod(tmp, 0o666 & ~_umask())
    fsync_file(tmp)


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file's data to disk (before it is renamed to a final name)."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def replace_synced(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Rename a finished temporary file over `final` durably: its data fsynced first, its folder after (a file
    renamed unsynced could, after a power cut, stand under its final name empty or cut short)."""
    fsync_file(tmp)
    os.replace(tmp, final)
    _fsync_dir(Path(final).parent)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, sync_dir: bool = True,
                inflight: set[Path] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success it is fsynced and renamed over `final`.

    On any exception the temporary file is removed, so nothing half-written ever carries the final name.
    sync_dir=False skips the fsync of the folder after the rename (a power cut may then lose the rename, never
    leave the file empty or half-written under its name): for many small outputs, such as translated photos.
    `inflight`: a set that holds the temporary path while it exists (a caller that gives up on a writer thread
    removes what is left).
    """
    final = Path(final)
    tmp_path = _new_temp(final)
    if inflight is not None:
        inflight.add(tmp_path)
    try:
        yield tmp_path
        _sync_temp(tmp_path)
        os.replace(tmp_path, final)
        if sync_dir:
            _fsync_dir(final.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
    finally:
        if inflight is not None:
            inflight.discard(tmp_path)


@contextlib.contextmanager
def atomic_group() -> Iterator[Any]:
    """Several files replaced as one: `tmp = add(final)` gives a temp path beside each `final` to write. When the
    block ends without error every temp file is fsynced (the slow part), and only then are they all renamed into
    place, in the order added, and their folders fsynced: an error or Ctrl-C while writing or syncing leaves every
    old file as it was and no temp file (one atomic_path per file renamed each after its own fsync, so an
    interrupt between them left some new files beside old ones)."""
    temps: list[tuple[Path, Path]] = []

    def add(final: str | os.PathLike) -> Path:
        tmp = _new_temp(Path(final))
        temps.append((tmp, Path(final)))
        return tmp

    try:
        yield add
        for tmp, _ in temps:
            _sync_temp(tmp)
        for k, (tmp, final) in enumerate(temps):
            os.replace(tmp, final)
            temps[k] = (final, final)  # (in place: nothing to remove)
    except BaseException:
        for tmp, final in temps:
            if tmp != final:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        raise
    for folder in dict.fromkeys(final.parent for _, final in temps):
        _fsync_dir(folder)


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process's umask. Read from /proc where Linux says it, without changing it: setting it to 0 and back
    (the only portable way) gives any file another thread creates meanwhile mode 0666 -- photo writers run in
    parallel. Elsewhere the set-and-restore runs under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0)
        os.umask(mask)
        return mask


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_bytes_atomic(final: str | os.PathLike, data: bytes, sync_dir: bool = True,
                       inflight: set[Path] | None = None) -> None:
    with atomic_path(final, sync_dir, inflight) as tmp:
        tmp.write_bytes(data)


def json_bytes(obj: Any) -> bytes:
    """A manifest's bytes: indented, keys sorted, a final newline."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def write_json_atomic(final: str | os.PathLike, obj: Any) -> None:
    write_bytes_atomic(final, json_bytes(obj))


def read_json(path: str | os.PathLike, what: str = "JSON file", max_bytes: int = 16 << 20) -> Any:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise IntegrityError(f"{what} {p} is {size} bytes, too large to be a cgan manifest")
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CganError(f"{what} not found: {p}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IntegrityError(f"{what} {p} is not valid JSON ({e}); re-create it") from None
    except RecursionError:  # '[' * 100000: small, but deeper than Python's parser goes
        raise IntegrityError(f"{what} {p} is nested too deeply to be a cgan manifest; re-create it") from None
    except IsADirectoryError:
        raise CganError(f"{what} {p} is a folder, expected a file") from None
    except OSError as e:  # a device or /proc file linked in, no permission, an I/O error
        raise CganError(f"cannot read {what} {p}: {e.strerror or e}") from None


def inside(folder: str | os.PathLike, name: str, what: str = "manifest") -> Path:
    """Resolve `name` relative to `folder` and refuse anything that escapes it (path traversal, absolute paths)."""
    base = Path(folder).resolve()
    if isinstance(name, str) and "\x00" in name:
        raise IntegrityError(f"{what} names a file with a NUL character in its name: {name!r}")
    if not isinstance(name, str) or not name or os.path.isabs(name) or "\\" in name:
        raise IntegrityError(f"{what} names a file outside its folder: {name!r}")
    p = (base / name).resolve()
    if p.parent != base and base not in p.parents:
        norm = os.path.normpath(name)
        if not os.path.dirname(norm) and norm != "..":  # a plain name whose file links out of the folder
            raise IntegrityError(f"{what} names {name!r}, a link to {p} outside its folder: copy the file into "
                                 f"the folder instead of linking it")
        raise IntegrityError(f"{what} names a file outside its folder: {name!r}")
    return p


def file_identity(path: str | os.PathLike) -> tuple[int, int, int, int] | None:
    """(device, inode, size, modification time in ns) of the file at `path`, None when it cannot be read: taken
    when a file is opened and again before it is read by its path a second time, it tells a file replaced (another
    inode) or written over (another size or time) in between."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def written_over(path: str | os.PathLike, opened: tuple[int, int, int, int] | None, whole: bool) -> bool:
    """Whether the file opened as `opened` (file_identity) was written over in place, or was still being written,
    while it was read: the same file with another size, or another modification time when its reading ended
    short of its length (`whole` False). A time alone changes with `touch`, a sync client or `rsync -t` on a file
    read whole. A file renamed into its place is not this: the one opened is still read whole."""
    now = file_identity(path) if opened is not None else None
    if now is None or now[:2] != opened[:2]:
        return False
    return now[2] != opened[2] or (now[3] != opened[3] and not whole)


def file_record(path: Path, folder: Path, final: Path | None = None) -> dict[str, Any]:
    """{'path', 'sha256', 'bytes'} for a manifest's file list (path relative to its folder); with `final`, the
    record of `path` (a temp file) under the name it will be renamed to."""
    return {"path": (final or path).relative_to(folder).as_posix(), "sha256": sha256_file(path),
            "bytes": path.stat().st_size}


def verify_record(folder: Path, rec: dict[str, Any], what: str) -> Path:
    """Check one manifest file record (inside folder, exists, size, sha256); return its path."""
    try:
        name, digest, size = rec["path"], rec["sha256"], rec.get("bytes")
    except (KeyError, TypeError):
        raise IntegrityError(f"{what} has a malformed file entry {rec!r}") from None
    p = inside(folder, name, what)
    if not p.is_file():
        state = "is not a file" if p.exists() else "is missing"  # (a folder of that name was called missing)
        raise IntegrityError(f"{what} lists {name} but {p} {state}; re-create the folder")
    if size is not None and p.stat().st_size != size:
        raise IntegrityError(f"{p} is {p.stat().st_size} bytes but {what} says {size}: truncated or replaced")
    if sha256_file(p) != digest:
        raise IntegrityError(f"{p} does not match the sha256 in {what}: corrupted or replaced; re-create it")
    return p
