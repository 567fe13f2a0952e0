"""Errors a user can act on.

A `UserError` is printed as one message without a traceback and ends the CLI with exit code 2. Raise it for
anything that is the input's fault (a bad recipe key, a missing file, a corrupt shard), with a message that
says what was wrong, where, and what to do.
"""


class UserError(Exception):
    """A problem with the user's input or settings, reported without a traceback (exit code 2)."""
