"""Errors a user can cause. The CLI prints their message on one line and exits non-zero."""


class PeganError(Exception):
    """A user-facing error: bad config, missing data or weights, diverged training."""

    exit_code = 2


class ConfigError(PeganError):
    """The configuration is invalid; the message names the offending key."""


class FileSystemError(PeganError):
    """A write failed for a reason of the file system (read-only, permission, full, quota);
    the message names the path and the cause."""

    exit_code = 74                      # EX_IOERR
