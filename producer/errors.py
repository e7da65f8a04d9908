"""Errors that end a command with a documented exit code and one clear line."""

from __future__ import annotations

EXIT_OK = 0
EXIT_DEAD_LETTERED = 1
EXIT_USAGE = 2
EXIT_STREAM_UNUSABLE = 3
# The run's books do not balance: records neither accepted nor dead-lettered (a spool that
# could not be written, a --workers process that died without its summary).
EXIT_INCOMPLETE = 4
# A check or a benchmark's target the user set (or the project's, for bench soak-memory) failed.
EXIT_TARGET_FAILED = 5


class LoadgenError(Exception):
    """An error the user can fix; ``str(exc)`` is the one line we print."""

    exit_code = EXIT_USAGE


class UsageError(LoadgenError):
    """Bad flags, files, endpoints, credentials or missing streams: exit 2."""

    exit_code = EXIT_USAGE


class StreamUnusable(LoadgenError):
    """No stream could be used at all (access denied, deleted mid-run...): exit 3."""

    exit_code = EXIT_STREAM_UNUSABLE
