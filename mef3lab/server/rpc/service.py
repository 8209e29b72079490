"""mef3lab's own gRPC servicer: protobuf in, engine call, protobuf out. Nothing else.

Errors become gRPC statuses in one place (`grpc_errors`), with the mef3lab exception
class in trailing metadata so the client re-raises the same class. The API itself is
``proto/mef3lab/v1/mef3lab.proto``.
"""

from __future__ import annotations

import errno
import functools
import inspect
import logging
from collections.abc import Callable

import grpc
import numpy as np

from ...errors import Mef3LabError, NoRootsError, TimeRangeError
from ...protocol import mef3lab_pb2 as pb
from ...protocol import mef3lab_pb2_grpc as pb_grpc
from ...protocol.wire import (
    CLIENT_ID_KEY,
    CODE_OF,
    DTYPE_OF,
    ERROR_KEY,
    MAX_MESSAGE_BYTES,
    info_to_proto,
    pieces_to_chunks,
)
from ...version import __version__
from ..core.cancel import call_scope
from ..core.engine import Engine
from ..core.roots import ServedRoots
from ..core.samples import Samples
from .auth import ClientId, current_caller, identity_of

log = logging.getLogger(__name__)


def client_id(context: grpc.ServicerContext, key: str = CLIENT_ID_KEY) -> ClientId:
    """Who is calling, as the engine's client id.

    The id the client sent in metadata, else its connection; under the authenticated user's
    name when auth is on, so no one can take another user's id. Its quotas count against
    its identity (`identity_of`), not the id it chose.

    Parameters
    ----------
    context : grpc.ServicerContext
        The call.
    key : str, default CLIENT_ID_KEY
        The metadata key the client's own id travels in.

    Returns
    -------
    ClientId
        The id, carrying the authenticated caller (if any).
    """
    own = next(
        (f"id:{v}" for k, v in context.invocation_metadata() or () if k == key and v),
        f"peer:{context.peer()}",
    )
    caller = current_caller()
    return ClientId(
        own if caller is None else f"user:{caller.user}/{own}",
        caller,
        identity_of(context.peer(), caller),
    )


def abort_with(context: grpc.ServicerContext, exc: BaseException) -> None:
    """Abort the call with the status that fits `exc` and a message a person understands.

    Parameters
    ----------
    context : grpc.ServicerContext
        The call.
    exc : BaseException
        What went wrong: a `Mef3LabError` has its own status, ValueError and TypeError are
        INVALID_ARGUMENT, a filesystem error the status of its kind (`os_status`), anything
        else is INTERNAL (and logged).
    """
    if isinstance(exc, Mef3LabError):
        code, name, text = getattr(grpc.StatusCode, exc.grpc_status), type(exc).__name__, str(exc)
    elif isinstance(exc, (ValueError, TypeError)):
        code, name, text = grpc.StatusCode.INVALID_ARGUMENT, "Mef3LabError", str(exc)
    elif isinstance(exc, OSError):
        code, name, text = os_status(exc), "Mef3LabError", str(exc)
    else:
        log.exception("unexpected error")
        code, name, text = grpc.StatusCode.INTERNAL, "Mef3LabError", f"internal server error: {exc}"
    context.set_trailing_metadata(((ERROR_KEY, name),))
    context.abort(code, text)


#: Filesystem conditions by errno, as a caller can act on them (the rest: the file is unreadable).
_OS_STATUS = {
    errno.ENOENT: grpc.StatusCode.NOT_FOUND,
    errno.ENOTDIR: grpc.StatusCode.NOT_FOUND,
    errno.EACCES: grpc.StatusCode.PERMISSION_DENIED,
    errno.EPERM: grpc.StatusCode.PERMISSION_DENIED,
    errno.ENAMETOOLONG: grpc.StatusCode.INVALID_ARGUMENT,
    errno.ELOOP: grpc.StatusCode.INVALID_ARGUMENT,
    errno.EINVAL: grpc.StatusCode.INVALID_ARGUMENT,
    errno.EISDIR: grpc.StatusCode.INVALID_ARGUMENT,
    errno.EMFILE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errno.ENFILE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errno.ENOMEM: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errno.ENOSPC: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


def os_status(exc: OSError) -> grpc.StatusCode:
    """The gRPC status of a filesystem error: what the caller can do about it, never INTERNAL.

    Parameters
    ----------
    exc : OSError
        The error (its `errno`).

    Returns
    -------
    grpc.StatusCode
        NOT_FOUND, PERMISSION_DENIED, INVALID_ARGUMENT (a name the system refuses),
        RESOURCE_EXHAUSTED (the server is out of descriptors, memory or space), else
        DATA_LOSS (the file cannot be read).
    """
    return _OS_STATUS.get(exc.errno, grpc.StatusCode.DATA_LOSS)


def handle_errors(
    on_error: Callable[[object, grpc.ServicerContext, Exception], object],
) -> Callable:
    """A decorator that hands every exception of a unary or streaming handler to `on_error`.

    The one place both services shape failures. The handler runs in its call's
    `call_scope`, so its reads stop when the call ends.

    Parameters
    ----------
    on_error : callable
        ``on_error(request, context, exc)``; what it returns (if not None) is the reply.

    Returns
    -------
    callable
        The decorator.
    """

    def decorate(method: Callable) -> Callable:
        if inspect.isgeneratorfunction(method):

            @functools.wraps(method)
            def stream(self, request, context):
                try:
                    with call_scope(context):
                        yield from method(self, request, context)
                except Exception as exc:  # every error must reach on_error
                    reply = on_error(request, context, exc)
                    if reply is not None:
                        yield reply

            return stream

        @functools.wraps(method)
        def unary(self, request, context):
            try:
                with call_scope(context):
                    return method(self, request, context)
            except Exception as exc:
                return on_error(request, context, exc)

        return unary

    return decorate


#: mef3lab's own API: every error becomes a gRPC status.
grpc_errors = handle_errors(lambda request, context, exc: abort_with(context, exc))


def sample_type(code: int) -> str:
    """The dtype a request's SampleType stands for.

    Raises
    ------
    ValueError
        An unknown code (the caller's error: INVALID_ARGUMENT).
    """
    try:
        return DTYPE_OF[code]
    except KeyError:
        raise ValueError(f"unknown sample type {code}; use FLOAT32, FLOAT64 or INT32") from None


def stream_samples(s: Samples):
    """The reply's chunks, converted message by message as they are sent (`Samples.pieces`).

    Once the reply is sent, the background loads the read deferred are started.
    """
    header = samples_header(s)
    try:
        yield from pieces_to_chunks(s.shape, s.pieces(MAX_MESSAGE_BYTES), header)
    finally:
        s.start_prefetch()


def samples_header(s: Samples) -> pb.SampleChunk:
    """The first chunk's description of a reply: dtype, channels, rate, where it starts."""
    return pb.SampleChunk(
        dtype=CODE_OF[s.dtype],
        channels=s.channels,
        fs=s.group.fs,
        start_index=s.start_index,
        first_sample_uutc=s.first_sample_uutc,
        conversion_factors=s.factors.tolist() if s.factors is not None else [],
    )


class Mef3LabService(pb_grpc.Mef3LabServicer):
    """mef3lab's own API (``mef3lab.v1.Mef3Lab``) on an engine.

    Each method translates its request into one engine call and the result into its reply;
    errors become gRPC statuses (`grpc_errors`).

    Parameters
    ----------
    engine : Engine
        What answers every call.
    roots : ServedRoots, optional
        The served roots `List` browses (None: the server opens any path).
    """

    def __init__(self, engine: Engine, roots: ServedRoots | None = None) -> None:
        self.engine = engine
        self.roots = roots

    @grpc_errors
    def Open(self, request, context):
        """Open a recording for the caller; its description."""
        info = self.engine.open(
            client_id(context), request.path, request.password, request.engine or None
        )
        return info_to_proto(info, self.engine.recording_decoder(client_id(context), request.path))

    @grpc_errors
    def Close(self, request, context):
        """Close the caller's recording; whether it was open."""
        return pb.CloseResponse(
            path=request.path, closed=self.engine.close(client_id(context), request.path)
        )

    @grpc_errors
    def ListOpen(self, request, context):
        """The paths the caller has open."""
        return pb.ListOpenResponse(paths=self.engine.list_open(client_id(context)))

    @grpc_errors
    def List(self, request, context):
        """What the caller may open in a folder of the served roots."""
        if not self.roots:
            raise NoRootsError(
                "this server has no served roots to list (it opens any path it can read)"
            )
        entries = self.roots.list(request.folder, client_id(context).groups)
        return pb.ListResponse(
            entries=[pb.ListEntry(name=e.name, recording=e.recording) for e in entries]
        )

    @grpc_errors
    def Info(self, request, context):
        """The description of a recording the caller has open."""
        info = self.engine.info(client_id(context), request.path)
        return info_to_proto(info, self.engine.recording_decoder(client_id(context), request.path))

    @grpc_errors
    def SetSegmentSize(self, request, context):
        """Set the caller's segment size of a recording; its segment grid."""
        self.engine.set_segment_seconds(client_id(context), request.path, request.seconds)
        return self._grid(client_id(context), request.path)

    @grpc_errors
    def GetSegmentGrid(self, request, context):
        """The caller's segment grid of a recording, one per rate group."""
        return self._grid(client_id(context), request.path)

    def _grid(self, client: str, path: str) -> pb.SegmentGrid:
        info = self.engine.info(client, path)
        groups = []
        for g in info.rate_groups:
            length, n_seg = self.engine.segment_grid(client, path, g)
            groups.append(
                pb.RateGrid(
                    fs=g.fs,
                    channels=g.channels,
                    start_uutc=g.grid.start_uutc,
                    n_samples=g.grid.n_samples,
                    segment_samples=length,
                    n_segments=n_seg,
                )
            )
        return pb.SegmentGrid(
            path=path, seconds=self.engine.segment_seconds(client, path), groups=groups
        )

    @grpc_errors
    def ReadSegment(self, request, context):
        """One of the caller's segments, streamed."""
        dtype = sample_type(request.dtype)
        s = self.engine.read_segment(
            client_id(context),
            request.path,
            request.index,
            list(request.channels) or None,
            dtype,
            not request.no_prefetch,
            True,
        )
        yield from stream_samples(s)

    @grpc_errors
    def ReadRange(self, request, context):
        """A window of samples, given in time or in samples, streamed."""
        dtype = sample_type(request.dtype)
        yield from stream_samples(self._window(request, context, dtype, not request.no_prefetch))

    @grpc_errors
    def ReadEnvelope(self, request, context):
        """The min/max envelope of a window in `bins` bins, streamed."""
        client, names = client_id(context), list(request.channels) or None
        s = self.engine.envelope(
            client, request.path, names, *self._indices(request, client, names), request.bins
        )
        yield from stream_samples(s)

    @grpc_errors
    def ReadBlockIndex(self, request, context):
        """A channel's per-block minimum and maximum, from the index."""
        env = self.engine.block_envelope(client_id(context), request.path, request.channel)
        return pb.BlockIndex(
            start_uutc=np.asarray(env["start_uutc"], np.int64).tolist(),
            end_uutc=np.asarray(env["end_uutc"], np.int64).tolist(),
            min=np.asarray(env["min"], np.float64).tolist(),
            max=np.asarray(env["max"], np.float64).tolist(),
        )

    def _window(self, request, context, dtype: str, prefetch: bool) -> Samples:
        client, names = client_id(context), list(request.channels) or None
        k0, k1 = self._indices(request, client, names)
        return self.engine.read_index(
            client, request.path, names, k0, k1, dtype, prefetch, defer_prefetch=True
        )

    def _indices(self, request, client: str, names) -> tuple[int, int]:
        """The request's window as grid indices, whether it was given in time or in samples."""
        which = request.WhichOneof("window")
        if which == "time":
            return self.engine.time_window(
                client, request.path, names, request.time.start_uutc, request.time.end_uutc
            )
        if which == "samples":
            return request.samples.start, request.samples.stop
        raise TimeRangeError("the request names no window (give a time or a sample window)")

    @grpc_errors
    def Prefetch(self, request, context):
        """Queue loads for a window the caller is about to read; how many were queued."""
        n = self.engine.hint(
            client_id(context),
            request.path,
            list(request.channels) or None,
            request.samples.start,
            request.samples.stop,
            sample_type(request.dtype),
        )
        return pb.PrefetchResponse(queued=n)

    @grpc_errors
    def GetStats(self, request, context):
        """The engine's counters, the version, the reader processes and the prefetch depth."""
        config = self.engine.config
        return pb.ServerStats(
            **self.engine.stats(),
            version=__version__,
            configured_workers=config.n_process_workers,
            worker_pids=self.engine.pool.stats().get("pids", []),
            prefetch_depth=config.n_prefetch,
        )
