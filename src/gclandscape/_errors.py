"""Exceptions raised by gclandscape.

Every error a user can cause is one of these, raised early, with a message that names the
problem and the fix. They subclass the built-in exception a caller would expect
(:class:`ValueError`, :class:`FileNotFoundError`, :class:`KeyError` is avoided because its
message is shown quoted), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class GclError(ValueError):
    """Bad input to a gclandscape function: the message names the problem and the fix."""


class GclFileNotFoundError(GclError, FileNotFoundError):
    """A path given to gclandscape does not exist."""


class GclFormatError(GclError):
    """A file could not be parsed as the format it claims to be."""


class GclDownloadError(GclError, OSError):
    """A dataset could not be downloaded (for example, the machine is offline)."""


class GclDivergenceError(GclError, ArithmeticError):
    """A simulation produced NaN or infinite values."""
