"""One exception type for user mistakes: the CLIs print its message on one line and exit non-zero."""
from __future__ import annotations


class CganError(Exception):
    """A problem the user can fix. The message says what is wrong and what to do; no traceback is shown."""

    exit_code = 2
    #: how the command line prints it: "error: <message>"
    label = "error"


class IntegrityError(CganError):
    """A file does not match its manifest (hash, size, shape) or is not what it claims to be."""

    exit_code = 3


class BackendUnavailable(CganError):
    """A backend cannot run here (library missing, no GPU, ...); the message says what to install.

    `alternative`, when given, is what else the user can do, in the words of the command that raised it (e.g.
    cgan-export's "export without --engine"); the message ends with ", or <alternative>". A command that calls
    another's code swaps it for its own with `instead()`."""

    exit_code = 4

    def __init__(self, message: str, *, alternative: str | None = None):
        self.reason = message
        self.alternative = alternative
        super().__init__(message if alternative is None else f"{message}, or {alternative}")

    def instead(self, alternative: str | None) -> BackendUnavailable:
        """The same error with another alternative (None: without one)."""
        return type(self)(self.reason, alternative=alternative)


class ShapeUnsupported(CganError):
    """A frame size or batch this backend's model cannot take (e.g. outside a TensorRT engine's profiles): a
    request to change, not a failure of the backend."""


class Terminated(KeyboardInterrupt):
    """A second SIGTERM forcing a run's stop (as a second Ctrl-C raises KeyboardInterrupt): the command line
    says 'terminated' and exits 143, as for the first."""


def first_line(e: BaseException, most: int = 300) -> str:
    """An exception's message for a one-line error: its first line, at most `most` characters (the type's name
    when the message is empty)."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:most]
