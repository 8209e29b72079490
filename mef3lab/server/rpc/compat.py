"""The lab's `gRPCMef3Server` interface, served from mef3lab's engine (drop-in compatibility).

Both generations of the lab's server speak it: the original segment server and its successor
`mef3io-server`; their unmodified clients work against a mef3lab server, on the same port
and engine as mef3lab's own API. This module only translates messages; every read goes
through `Engine`. What their clients can rely on is in ``docs/serving.md``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

import grpc
import numpy as np

from ...errors import Mef3LabError, MixedRatesError, NotOpenError, PasswordError, TimeRangeError
from ...model import SessionInfo
from ...protocol import gRPCMef3Server_pb2 as pb
from ...protocol import gRPCMef3Server_pb2_grpc as pb_grpc
from ...protocol.wire import ERROR_KEY, MAX_MESSAGE_BYTES
from ...signal.decimate import CHUNK_BYTES, minmax_points_blocks
from ..core.convert import array_blocks
from ..core.engine import Engine
from .auth import ClientId
from .service import client_id, handle_errors

log = logging.getLogger(__name__)

SERVICE_NAME = "gRPCMef3Server"
CLIENT_ID_KEY = "x-mef3io-client-id"
PASSWORD_KEY = "x-mef3lab-password"
SEGMENT_DTYPE = "float64"  # GetSignalSegment, as the original server sent
RANGE_DTYPE = "float32"  # GetSignalRange, as the successor sent
ENVELOPE_ROWS = 65_536  # rows per ChannelEnvelope message (32 B each: 2 MiB)


def compat_client(context: grpc.ServicerContext) -> ClientId:
    """The engine's client id of a caller of this interface (its own namespace, same caller)."""
    own = client_id(context, key=CLIENT_ID_KEY)
    return ClientId(f"{SERVICE_NAME}/{own}", own.caller, own.identity)


def error_text(exc: BaseException) -> str:
    """What a person reads in `error_message`; unexpected errors are logged in full."""
    if isinstance(exc, NotOpenError):
        return (
            f"{exc} with OpenFile (open files are per client: per {CLIENT_ID_KEY} metadata, "
            "else per connection)"
        )
    if isinstance(exc, (Mef3LabError, ValueError, TypeError, OSError)):
        return str(exc)
    log.exception("unexpected error")
    return f"internal server error: {type(exc).__name__}: {exc}"


def in_band(make_error: Callable[[object, str], object]) -> Callable:
    """A decorator: every exception of a handler becomes ``make_error(request, text)``.

    The old clients read errors in the reply's `error_message`, so that reply is sent with
    an OK status; the mef3lab error class travels in the trailing metadata.

    Parameters
    ----------
    make_error : callable
        ``make_error(request, text)``: the reply that carries `text`.

    Returns
    -------
    callable
        The decorator.
    """

    def failed(request, context, exc: BaseException):
        context.set_trailing_metadata(
            ((ERROR_KEY, type(exc).__name__ if isinstance(exc, Mef3LabError) else "Mef3LabError"),)
        )
        return make_error(request, error_text(exc))

    return handle_errors(failed)


def _info_error(req, text):
    return pb.FileInfoResponse(file_path=req.file_path, file_opened=False, error_message=text)


class CompatService(pb_grpc.gRPCMef3ServerServicer):
    """The lab's `gRPCMef3Server` API on mef3lab's engine.

    Each method translates its request into engine calls and the result into the reply the
    old clients expect; errors travel in the reply's `error_message` (`in_band`).

    Parameters
    ----------
    engine : Engine
        What answers every call (the same engine as mef3lab's own API).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # (client, canonical path) -> the path as that client spelled it, for ListOpenFiles.
        self._spelling: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    # -- files ------------------------------------------------------------------------------
    @in_band(_info_error)
    def OpenFile(self, request, context):
        """Open a file for the caller; its description (a password comes as metadata)."""
        if request.HasField("cache_fs"):
            raise ValueError(
                f"cache_fs (serving a file at a reduced rate) is not supported by this server; "
                f"{request.file_path} was not opened. Open it without cache_fs and ask "
                "GetSignalRange for n_points to read at display resolution"
            )
        client = compat_client(context)
        password = _password(context)
        try:
            info = self.engine.open(client, request.file_path, password)
        except PasswordError as exc:
            if password:
                raise
            raise PasswordError(
                f"{exc}, as {PASSWORD_KEY} call metadata (this interface has no password field)"
            ) from exc
        with self._lock:
            self._spelling[(client, self.engine.resolve(client, request.file_path))] = (
                request.file_path
            )
        return _file_info(request.file_path, info)

    @in_band(_info_error)
    def CloseFile(self, request, context):
        """Close the caller's file."""
        client = compat_client(context)
        self.engine.close(client, request.file_path)
        with self._lock:
            self._spelling.pop((client, self.engine.resolve(client, request.file_path)), None)
        return pb.FileInfoResponse(file_path=request.file_path, file_opened=False)

    @in_band(_info_error)
    def FileInfo(self, request, context):
        """The description of a file the caller has open (`file_opened` false if not)."""
        try:
            info = self.engine.info(compat_client(context), request.file_path)
        except NotOpenError:
            return pb.FileInfoResponse(file_path=request.file_path, file_opened=False)
        return _file_info(request.file_path, info)

    @in_band(lambda req, text: pb.ListOpenFilesResponse(error_message=text))
    def ListOpenFiles(self, request, context):
        """The caller's open files, spelled as the caller opened them."""
        client = compat_client(context)
        paths = self.engine.list_open(client)
        with self._lock:
            return pb.ListOpenFilesResponse(
                file_paths=[self._spelling.get((client, p), p) for p in paths]
            )

    # -- the original's segment grid ------------------------------------------------------------
    @in_band(
        lambda req, text: pb.SetSignalSegmentResponse(file_path=req.file_path, error_message=text)
    )
    def SetSignalSegmentSize(self, request, context):
        """Set the caller's segment size; the number of segments."""
        client = compat_client(context)
        self.engine.set_segment_seconds(client, request.file_path, request.seconds)
        return pb.SetSignalSegmentResponse(
            file_path=request.file_path,
            number_of_segments=self._n_segments(client, request.file_path),
        )

    @in_band(
        lambda req, text: pb.GetNumberOfSegmentsResponse(
            file_path=req.file_path, error_message=text
        )
    )
    def GetNumberOfSegments(self, request, context):
        """The number of segments of the caller's active channels."""
        client = compat_client(context)
        return pb.GetNumberOfSegmentsResponse(
            file_path=request.file_path,
            number_of_segments=self._n_segments(client, request.file_path),
        )

    def _n_segments(self, client: str, path: str) -> int:
        info = self.engine.info(client, path)
        names = set(self.engine.channels(client, path))
        return max(
            self.engine.segment_grid(client, path, g)[1]
            for g in info.rate_groups
            if names.intersection(g.channels)
        )

    @in_band(
        lambda req, text: pb.SetActiveChannelsResponse(file_path=req.file_path, error_message=text)
    )
    def SetActiveChannels(self, request, context):
        """Set the channels the caller's segment reads return (none: all)."""
        client, path, names = compat_client(context), request.file_path, list(request.channel_names)
        info = self.engine.info(client, path)
        unknown = [n for n in dict.fromkeys(names) if n not in info.names]
        if unknown:
            current = self.engine.channels(client, path)
            return pb.SetActiveChannelsResponse(
                file_path=path,
                active_channels=current,
                error_message=f"no channel{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))} in {path}; the active channels are unchanged "
                f"({len(current)} channels)",
            )
        return pb.SetActiveChannelsResponse(
            file_path=path, active_channels=self.engine.set_channels(client, path, names or None)
        )

    @in_band(
        lambda req, text: pb.GetActiveChannelsResponse(file_path=req.file_path, error_message=text)
    )
    def GetActiveChannels(self, request, context):
        """The channels the caller's segment reads return."""
        return pb.GetActiveChannelsResponse(
            file_path=request.file_path,
            active_channels=self.engine.channels(compat_client(context), request.file_path),
        )

    @in_band(lambda req, text: pb.SignalChunk(file_path=req.file_path, error_message=text))
    def GetSignalSegment(self, request, context):
        """One segment of the caller's active channels, float64, streamed."""
        client, path = compat_client(context), request.file_path
        names = self.engine.channels(client, path)
        _one_rate(
            self.engine.info(client, path), names, "SetActiveChannels to the channels of one rate"
        )
        s = self.engine.read_segment(
            client, path, request.chunk_idx, names, SEGMENT_DTYPE, defer_prefetch=True
        )
        grid, k0 = s.group.grid, s.start_index
        try:
            yield from _messages(
                path,
                s.blocks(MAX_MESSAGE_BYTES),
                s.channels,
                s.group.fs,
                lambda k: grid.uutc_of(k0 + k),
            )
        finally:
            s.start_prefetch()

    # -- the successor's range reads --------------------------------------------------------------
    @in_band(lambda req, text: pb.SignalChunk(file_path=req.file_path, error_message=text))
    def GetSignalRange(self, request, context):
        """A time window, float32, streamed; with `n_points` reduced to min/max points."""
        client, path = compat_client(context), request.file_path
        t0, t1 = request.start_uutc, request.end_uutc
        n_points = request.n_points if request.HasField("n_points") else None
        info = self.engine.info(client, path)
        names = self.engine.channels(
            client, path, list(request.channel_names) or info.names
        )  # not the active
        if t1 <= t0:
            raise TimeRangeError(
                f"the time range ends before it starts (start {t0} µUTC, end {t1} µUTC)"
            )
        if n_points is not None and n_points < 2:
            raise ValueError(
                f"n_points must be at least 2 (a minimum and a maximum), not {n_points}"
            )
        if n_points is None:
            _one_rate(
                info, names, "ask for one rate group per call, or set n_points for a display read"
            )
        groups = [
            (g, [n for n in dict.fromkeys(names) if n in g.channels]) for g in info.rate_groups
        ]
        reads = [
            (g, self.engine.read_time(client, path, mine, t0, t1, RANGE_DTYPE, defer_prefetch=True))
            for g, mine in groups
            if mine
        ]
        try:
            if len(reads) == 1 and (n_points is None or reads[0][1].shape[1] <= n_points):
                s = reads[0][1]
                grid, k0 = s.group.grid, s.start_index
                yield from _messages(
                    path,
                    s.blocks(MAX_MESSAGE_BYTES),
                    s.channels,
                    s.group.fs,
                    lambda k: grid.uutc_of(k0 + k),
                )
                return
            # Decimated: every rate group to the same number of points over the window.
            n_out = min([n_points] + [s.shape[1] for _, s in reads])
            if any(s.shape[1] > n_out for _, s in reads):
                n_out -= n_out % 2
            if n_out < 2:
                raise TimeRangeError(
                    f"the window [{t0}, {t1}) µUTC holds too few samples of "
                    f"{_groups_text(info, names)} for one display read; read each rate group "
                    "separately"
                )
            rows = {}
            for _, s in reads:
                # Converted and reduced a few columns at a time: never the whole window at once.
                points = minmax_points_blocks(s.blocks(CHUNK_BYTES), s.shape, n_out, RANGE_DTYPE)
                for name, row in zip(s.channels, points, strict=True):
                    rows[name] = row
            data = np.stack([rows[n] for n in names])
            first = reads[0][1]  # the fastest group's window sets the times
            a, b = first.first_sample_uutc, first.end_uutc
            yield from _messages(
                path,
                array_blocks(data, MAX_MESSAGE_BYTES),
                names,
                n_out * 1e6 / (b - a),
                lambda p: int(round(a + p * (b - a) / n_out)),
            )
        finally:
            for _, read in reads:
                read.start_prefetch()

    @in_band(lambda req, text: pb.ChannelEnvelope(file_path=req.file_path, error_message=text))
    def GetEnvelope(self, request, context):
        """Each channel's per-block minimum and maximum from the index, streamed."""
        client, path = compat_client(context), request.file_path
        every = self.engine.info(client, path).names
        names = self.engine.channels(client, path, list(request.channel_names) or every)
        t0 = request.start_uutc if request.HasField("start_uutc") else None
        t1 = request.end_uutc if request.HasField("end_uutc") else None
        if t0 is not None and t1 is not None and t1 <= t0:
            raise TimeRangeError(
                f"the time range ends before it starts (start {t0} µUTC, end {t1} µUTC)"
            )
        for name in names:
            env = self.engine.block_envelope(client, path, name, t0, t1)
            rows = len(env["start_uutc"])
            for a in range(0, max(rows, 1), ENVELOPE_ROWS):
                b = a + ENVELOPE_ROWS
                yield pb.ChannelEnvelope(
                    file_path=path,
                    channel_name=name,
                    start_uutc=np.asarray(env["start_uutc"][a:b], np.int64).tolist(),
                    end_uutc=np.asarray(env["end_uutc"][a:b], np.int64).tolist(),
                    min=np.asarray(env["min"][a:b], np.float64).tolist(),
                    max=np.asarray(env["max"][a:b], np.float64).tolist(),
                )


# -- helpers -------------------------------------------------------------------------------------
def _password(context: grpc.ServicerContext) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == PASSWORD_KEY and v:
            return v
    return None


def _file_info(path: str, info: SessionInfo) -> pb.FileInfoResponse:
    return pb.FileInfoResponse(
        file_path=path,
        file_opened=True,
        number_of_channels=len(info.channels),
        channel_names=info.names,
        channel_sampling_rates=[c.fs for c in info.channels],
        start_uutc=info.start_uutc,
        end_uutc=info.end_uutc,
        duration_s=info.duration_s,
        channel_start_uutc=[c.start_uutc for c in info.channels],
        channel_end_uutc=[c.end_uutc for c in info.channels],
        channel_served_sampling_rates=[c.fs for c in info.channels],
    )


def _groups_text(info: SessionInfo, names: Sequence[str]) -> str:
    return "; ".join(
        f"{g.fs:g} Hz: {', '.join(n for n in dict.fromkeys(names) if n in g.channels)}"
        for g in info.rate_groups
        if set(names).intersection(g.channels)
    )


def _one_rate(info: SessionInfo, names: Sequence[str], advice: str) -> None:
    rates = {info.channel(n).fs for n in names}
    if len(rates) > 1:
        raise MixedRatesError(
            f"the channels asked for have {len(rates)} sampling rates "
            f"({_groups_text(info, names)}); and one reply carries one sampling rate: {advice}"
        )


def _messages(
    path: str,
    blocks: Iterable[tuple[int, int, np.ndarray]],
    channels: Sequence[str],
    fs: float,
    time_of: Callable[[int], int],
) -> Iterator[pb.SignalChunk]:
    """Column `blocks` ``(a, b, values)`` as SignalChunks from ``time_of(a)`` to ``time_of(b)``."""
    names = list(channels)
    for a, b, block in blocks:
        # tobytes() writes C order: one copy, even of a strided view
        yield pb.SignalChunk(
            file_path=path,
            array_bytes=block.tobytes(),
            dtype=block.dtype.name,
            shape=block.shape,
            start_uutc=time_of(a),
            end_uutc=time_of(b),
            fs=fs,
            channel_names=names,
        )
