"""The one exception type a user sees: a clear message, no traceback (see cli.main)."""


class UserError(Exception):
    """Bad input or a condition the user can fix. The CLI prints it on one line and exits 2."""
