"""Exceptions that carry a fix, printed as one line (``<where>: <what> — <fix>``) by the CLI and in notebooks.
Each also derives from the built-in exception a Python user would expect."""

from __future__ import annotations


class NstdreamError(Exception):
    """Base class: ``what`` is wrong with ``where`` (a file, a parameter), and ``fix`` says what to do."""

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what, self.where, self.fix = what, where, fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message as one line: ``<where>: <what> — <fix>``."""
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text} — {self.fix}" if self.fix else text


class InputError(NstdreamError, ValueError):
    """A bad image, path or parameter given by the user."""


class MissingFileError(NstdreamError, FileNotFoundError):
    """A file the user named does not exist."""


class WeightsError(NstdreamError, FileNotFoundError):
    """Weight files that are missing, truncated or fail their md5 check."""


class NonFiniteLossError(NstdreamError, FloatingPointError):
    """The loss or image became NaN or Inf; ``last_image`` is the last finite image, ``step`` where."""

    def __init__(self, what: str, *, step: int, last_image=None, history=None, fix: str | None = None):
        self.step, self.last_image, self.history = step, last_image, history
        super().__init__(what, where=f"step {step}", fix=fix)


class PerformanceWarning(UserWarning):
    """A request that works but will run much slower than the user expects; the text says why and the fix."""
