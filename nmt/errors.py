"""The one exception type for the user's mistakes: nmt_runtime's (the lower layer, runtime/), so
that an `except NmtError` catches the runtime's refusals and nmt's alike."""

from nmt_runtime.errors import NmtError

__all__ = ["NmtError"]
