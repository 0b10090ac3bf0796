"""The one exception family the CLI turns into a clean message and a non-zero exit code."""


class MixtapeError(Exception):
    """A user-facing error: the message names the file, row or key and what is wrong with it."""
