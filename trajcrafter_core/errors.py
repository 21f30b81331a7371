"""The one exception type of the pack.

Every check on user input raises :class:`TrajCrafterError` (a ``ValueError``) with a message
that names the input, says what was wrong and what to do. ComfyUI shows the message as is.
"""

from __future__ import annotations


class TrajCrafterError(ValueError):
    """Bad input or missing resources, explained for a user (never a deep torch traceback)."""


class MissingFilesError(TrajCrafterError, FileNotFoundError):
    """Weights, videos or other files that are not where they must be.

    The message lists the missing files and the folder they belong in.
    """
