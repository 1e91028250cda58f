"""One writer at a time per pair or export folder, across processes and threads (no torch).

The lock file lives in $CGAN_HOME/locks, named by a hash of the folder's resolved path, so the folder itself
gets no extra file. A lock is reentrant within a thread: `cgan-export --pretrained` holds the imported pair's
folder while the import (`save_pair`) takes it again. Two threads, like two processes, wait for each other.
"""
from __future__ import annotations

import contextlib
import getpass
import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

from cgan._files import ensure_writable_dir

log = logging.getLogger(__name__)

_LOCKS: dict[str, Any] = {}  # lock file -> its one FileLock in this process (thread-local holders)
_GUARD = threading.Lock()


def lock_file(folder: str | os.PathLike) -> Path:
    """The lock file for writes into `folder`: in $CGAN_HOME/locks, else (an unwritable $CGAN_HOME: the export
    into a writable --out failed, naming a lock folder the user never chose) in a folder of this user's under
    the system's temp folder; CganError if neither can be written."""
    from cgan.errors import CganError
    from cgan.pairs import cgan_home

    key = hashlib.sha256(os.fsencode(Path(folder).resolve())).hexdigest()[:24]  # (any name: bytes not UTF-8 too)
    try:
        return ensure_writable_dir(cgan_home() / "locks", "cgan lock folder") / f"folder-{key}.lock"
    except CganError as e:
        try:
            uid = os.getuid() if hasattr(os, "getuid") else getpass.getuser()
            spare = Path(tempfile.gettempdir()) / f"cgan-locks-{uid}"
            spare.mkdir(mode=0o700, exist_ok=True)
            if spare.is_symlink() or (hasattr(os, "getuid") and spare.stat().st_uid != os.getuid()):
                raise OSError(f"{spare} is not this user's")
            return ensure_writable_dir(spare, "cgan lock folder") / f"folder-{key}.lock"
        except (OSError, CganError, KeyError, ImportError):  # (getpass: no user name to be found)
            raise e from None


def _instance(path: Path) -> Any:
    # one FileLock per file: two instances in one thread would wait for each other forever (flock locks belong
    # to the open file), and a FileLock counts re-entries per thread
    from filelock import FileLock

    with _GUARD:
        return _LOCKS.setdefault(str(path), FileLock(str(path)))


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, waiting: str, best_effort: bool = False) -> Iterator[None]:
    """Hold `folder`'s lock; if another writer holds it, log `waiting` and wait. With `best_effort`, a machine
    where the lock cannot be taken (unwritable $CGAN_HOME, a file system without locks) writes unguarded."""
    from filelock import Timeout

    from cgan.errors import CganError

    try:
        lock = _instance(lock_file(folder))
        try:
            lock.acquire(timeout=1)
        except Timeout:
            log.info("%s", waiting)
            lock.acquire()
    except (CganError, NotImplementedError, OSError) as e:
        if not best_effort:
            raise
        log.debug("no lock for %s (%s): writing unguarded", folder, e)
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def folder_locked(folder: str | os.PathLike) -> bool:
    """Whether a writer (another process, or another thread of this one) holds `folder`'s lock now; True too
    when no lock can be had here (a reader then waits, as it would for a writer)."""
    from filelock import Timeout

    from cgan.errors import CganError

    try:
        lock = _instance(lock_file(folder))
        lock.acquire(timeout=0)
    except (Timeout, CganError, NotImplementedError, OSError):
        return True
    lock.release()
    return False
