"""The one exception type for the user's mistakes."""


class NmtError(Exception):
    """A problem with the user's input (config, corpus, checkpoint, arguments).

    The message is one line that names the file, line or key and says what to do.
    The CLI prints it and exits with code 2; anything else is a bug.
    """
