"""cgan's switches in the environment (CGAN_DEBUG, CGAN_NO_CUDA): one reading of them (no torch, nothing else)."""
from __future__ import annotations

import os


def env_flag(name: str) -> bool:
    """Whether the environment switch `name` is on: set to anything but empty, 0, false, no or off."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")
