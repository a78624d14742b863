"""User-facing errors.

Anything a user can cause (a missing file, a bad flag value, a corrupt checkpoint, no weights offline) raises
:class:`VJError` with a message that fits on one line (or one short paragraph for "how to provide weights").
The CLI prints it as ``vj: error: <message>`` and exits with :attr:`VJError.exit_code`; it never shows a traceback
for them. Live mode catches them where it can keep the show going.
"""

from __future__ import annotations


class VJError(Exception):
    """An error caused by input or environment, reported to the user without a traceback.

    Args:
        message: what went wrong and, where useful, what to do about it.
        exit_code: process exit status for batch commands (default 2).
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class AudioInputError(VJError):
    """Audio could not be read or decoded (missing, unreadable, not audio, zero length)."""


class WeightsError(VJError):
    """Model weights are unavailable, corrupt, or do not match the model."""
