"""Exceptions a user can cause; the CLI turns each into one line and exit code 2."""


class GalmetError(Exception):
    """A problem with the user's input (file, row, column, option) rather than a bug.

    The message is one line that says what is wrong and where (file, objID, column).
    """


class DataError(GalmetError):
    """Bad dataset content: missing or undecodable image, wrong size or mode, bad label."""


class ConfigError(GalmetError):
    """A bad option or configuration value."""
