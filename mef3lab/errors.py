"""The exception hierarchy every layer of mef3lab shares.

Each class names the gRPC status it travels as (``grpc_status``, a string, so this module
never imports grpc): the server maps errors to statuses in one place and the client maps them
back to the same class, so a user sees the same exception whether reading embedded or remote.
Each class also subclasses the builtin a Python user would naturally catch (``KeyError`` for
an unknown channel, ``PermissionError`` for a password, ...).
"""

from __future__ import annotations


class Mef3LabError(Exception):
    """Base class of every error mef3lab raises on purpose."""

    grpc_status: str = "INTERNAL"


class RecordingNotFoundError(Mef3LabError, FileNotFoundError):
    """The path does not exist."""

    grpc_status = "NOT_FOUND"


class NotAMefSessionError(Mef3LabError, ValueError):
    """The path exists but is not a MEF 3.0 session (.mefd folder with channels)."""

    grpc_status = "INVALID_ARGUMENT"


class PasswordError(Mef3LabError, PermissionError):
    """The session is encrypted and the password is missing, wrong or of too low a level."""

    grpc_status = "PERMISSION_DENIED"


class Level1PasswordError(PasswordError):
    """A level-1 (technical) password, which pymef accepts but cannot decode samples with."""


class PathNotServedError(Mef3LabError, PermissionError):
    """A path outside the server's served roots (or in a root this user may not read).

    The message never says whether the path exists: that would let anyone probe the disk.
    """

    grpc_status = "PERMISSION_DENIED"


class NoRootsError(Mef3LabError):
    """Listing recordings on a server that serves any path (it was started without --root)."""

    grpc_status = "FAILED_PRECONDITION"


class AuthenticationError(Mef3LabError, PermissionError):
    """The server wants a valid token (missing, wrong or expired)."""

    grpc_status = "UNAUTHENTICATED"


class UnknownChannelError(Mef3LabError, KeyError):
    """A channel name that the recording does not have."""

    grpc_status = "INVALID_ARGUMENT"

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class TimeRangeError(Mef3LabError, ValueError):
    """An empty or inverted time range, or one wholly outside the recording."""

    grpc_status = "INVALID_ARGUMENT"


class SegmentIndexError(Mef3LabError, IndexError):
    """A segment index outside the recording's segment grid."""

    grpc_status = "OUT_OF_RANGE"


class MixedRatesError(Mef3LabError, ValueError):
    """Channels of different sampling rates asked for on one sample grid."""

    grpc_status = "INVALID_ARGUMENT"


class RateChangeError(Mef3LabError, ValueError):
    """A channel whose sampling rate changes between MEF segments (no single grid exists)."""

    grpc_status = "FAILED_PRECONDITION"


class FactorChangeError(Mef3LabError, ValueError):
    """Stored counts asked of a channel whose MEF segments store different conversion factors.

    One factor per channel (int32 reads, xarray ``dtype="int32"``) cannot describe them.
    """

    grpc_status = "FAILED_PRECONDITION"


class CorruptDataError(Mef3LabError):
    """The files are damaged: a decoder crashed, or gave no data where the index lists some."""

    grpc_status = "DATA_LOSS"


class ReaderCrashedError(CorruptDataError):
    """A reader process died while decoding this (a decoder crash on damaged files, or a kill).

    Parameters
    ----------
    message : str
        What was being read, for the user.
    exitcode : int, optional
        The reader process's exit code; ``-N`` when it was killed by signal N.
    """

    def __init__(self, message: str, exitcode: int | None = None) -> None:
        super().__init__(message)
        self.exitcode = exitcode


class ReadTimeoutError(Mef3LabError, TimeoutError):
    """A decoder took longer than the server's read timeout (its reader process was replaced)."""

    grpc_status = "DEADLINE_EXCEEDED"


class QuarantinedError(CorruptDataError):
    """A recording that crashed reader processes repeatedly: the server no longer reads it."""


class ReadTooLargeError(Mef3LabError):
    """A single read larger than the configured maximum."""

    grpc_status = "RESOURCE_EXHAUSTED"


class TooManyOpenError(Mef3LabError):
    """Opening one more recording would pass the server's limit (per client or in total)."""

    grpc_status = "RESOURCE_EXHAUSTED"


class NotOpenError(Mef3LabError):
    """An operation on a recording this client has not opened."""

    grpc_status = "FAILED_PRECONDITION"


class RecordingChangedError(Mef3LabError):
    """The recording changed on disk since it was opened (written again, not only appended to).

    Its samples as opened are gone: reopen it (a grown recording needs no reopening: its
    views keep their extent and may refresh it).
    """

    grpc_status = "FAILED_PRECONDITION"


class ServerUnavailableError(Mef3LabError, ConnectionError):
    """The mef3lab server cannot be reached (down, wrong address, or went away mid-call)."""

    grpc_status = "UNAVAILABLE"


class CancelledError(Mef3LabError):
    """The read was cancelled (the caller went away or interrupted it)."""

    grpc_status = "CANCELLED"


#: Every concrete error class by name: how an error crosses a process or network boundary.
ERROR_CLASSES: dict[str, type[Mef3LabError]] = {
    cls.__name__: cls
    for cls in (
        Mef3LabError,
        RecordingNotFoundError,
        NotAMefSessionError,
        PasswordError,
        Level1PasswordError,
        PathNotServedError,
        NoRootsError,
        AuthenticationError,
        UnknownChannelError,
        TimeRangeError,
        SegmentIndexError,
        MixedRatesError,
        RateChangeError,
        FactorChangeError,
        CorruptDataError,
        ReaderCrashedError,
        QuarantinedError,
        ReadTimeoutError,
        ReadTooLargeError,
        TooManyOpenError,
        NotOpenError,
        RecordingChangedError,
        ServerUnavailableError,
        CancelledError,
    )
}


def rebuild(name: str, message: str) -> Mef3LabError:
    """The error named `name` carrying `message`, as it arrives from another process.

    Parameters
    ----------
    name : str
        A class name from `ERROR_CLASSES`.
    message : str
        The error's message.

    Returns
    -------
    Mef3LabError
        An instance of that class, or of `Mef3LabError` for a name this version does not know.
    """
    return ERROR_CLASSES.get(name, Mef3LabError)(message)
