"""The commit of the cgan checkout this code runs from (for provenance records); no dependencies."""
from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_sha() -> str | None:
    """HEAD of the checkout cgan is imported from, + '-dirty' with uncommitted changes to tracked files; None
    when cgan is not running from a git checkout (an installed wheel)."""
    # git searches parent folders: a wheel installed into a venv inside some other checkout would get that
    # checkout's HEAD. Only a checkout that tracks this very file is cgan's own.
    if _git("ls-files", "--error-unmatch", "cgan/_git.py") is None:
        return None
    sha = _git("rev-parse", "HEAD")
    if not sha:
        return None
    return sha + ("-dirty" if _git("status", "--porcelain", "--untracked-files=no") else "")
