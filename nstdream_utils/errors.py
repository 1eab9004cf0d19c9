"""Exceptions that carry a fix, shown as one line ``<where>: <what> — <fix>``; each is also the expected built-in."""

import difflib


def did_you_mean(name, valid, listing: str) -> str:
    """``"did you mean '<closest of valid>'? <listing>"``, or ``listing`` if none is close (case, ``-`` and spaces
    aside); ``listing`` names the valid choices."""
    key = str(name).lower().replace("-", "_").replace(" ", "_")
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}? {listing}" if close else listing


class NstdreamError(Exception):
    """``what`` is wrong with ``where`` (a file, a parameter); ``fix`` says what to do."""
    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what, self.where, self.fix = what, where, fix
        super().__init__((f"{where}: " if where else "") + what + (f" — {fix}" if fix else ""))

    one_line = Exception.__str__  # the message: ``<where>: <what> — <fix>``


class InputError(NstdreamError, ValueError):
    """A bad image, path or parameter given by the user."""


class MissingFileError(NstdreamError, FileNotFoundError):
    """A file the user named does not exist."""


class WeightsError(NstdreamError, FileNotFoundError):
    """Weight files that are missing, truncated or fail their md5 check."""


class NonFiniteLossError(NstdreamError, FloatingPointError):
    """The loss or image became NaN or Inf at ``step``; ``last_image`` is the last finite image."""
    def __init__(self, what: str, *, step: int, last_image=None, history=None, fix: str | None = None):
        self.step, self.last_image, self.history = step, last_image, history
        super().__init__(what, where=f"step {step}", fix=fix)


class PerformanceWarning(UserWarning):
    """A request that works but runs much slower than the user expects; the text says why and the fix."""
