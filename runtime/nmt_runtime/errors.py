"""The one exception type for the user's mistakes, and its kind for a missing optional dependency."""


class NmtError(Exception):
    """A problem with the user's input (config, corpus, checkpoint, arguments).

    The message is one line that names the file, line or key and says what to do.
    The CLI prints it and exits with code 2; anything else is a bug.
    """


class MissingExtra(NmtError):
    """An optional dependency is not installed; the message names the extra of nmt-runtime that
    installs it. nmt, which ships nmt_runtime inside itself, catches it to name its own extra."""
