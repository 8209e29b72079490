"""`Mef3Client`: the Python client of a mef3lab server.

It keeps the seed client's method names so existing notebooks read naturally, and turns
every failed call into the mef3lab exception the server raised (never a silent None).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import grpc
import grpc.experimental
import numpy as np

from ..errors import Mef3LabError, NotOpenError, ServerUnavailableError, rebuild
from ..model import RawSamples, SessionInfo
from ..protocol import mef3lab_pb2 as pb
from ..protocol import mef3lab_pb2_grpc as pb_grpc
from ..protocol.wire import (
    CLIENT_ID_KEY,
    CODE_OF,
    ERROR_KEY,
    MAX_MESSAGE_BYTES,
    chunks_to_array,
    info_from_proto,
)
from .credentials import channel_for

CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 16 * MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", 16 * MAX_MESSAGE_BYTES),
    # A server that hangs with its connection open is noticed in ~40 s, not at a read's deadline.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # After a server restart, reconnect within ~2 s instead of gRPC's growing backoff.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    # A streamed reply is read on the calling thread: otherwise gRPC starts a thread for
    # each call made while the channel has none in progress (most of a small read's cost).
    (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1),
    # Its own connections: a new client after a failure (a restarted server) connects at
    # once, not through a connection another channel keeps waiting out its backoff.
    ("grpc.use_local_subchannel_pool", 1),
]


def _raise_from(err: grpc.RpcError, address: str) -> Mef3LabError:
    """The mef3lab exception a failed call stands for."""
    code = err.code() if hasattr(err, "code") else None
    name = (
        dict(err.trailing_metadata() or ()).get(ERROR_KEY)
        if hasattr(err, "trailing_metadata")
        else None
    )
    details = err.details() if hasattr(err, "details") else str(err)
    if name:
        return rebuild(name, details)
    if code == grpc.StatusCode.UNAVAILABLE:
        return ServerUnavailableError(
            f"the mef3lab server at {address} is not reachable ({details})"
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ServerUnavailableError(
            f"the mef3lab server at {address} did not answer in time "
            f"(busy, hung or unreachable; {details})"
        )
    return Mef3LabError(f"{code.name if code else 'error'}: {details}")


class Mef3Client:
    """Talks to one mef3lab server.

    It keeps the seed client's method names (`open_file`, `set_signal_chunk_size`,
    `set_active_channels`, `get_signal_segment`, `list_open_files`, `close_file`,
    `shutdown`) and adds range reads, envelopes, prefetch hints and statistics. One client
    id per instance: its settings (segment size, active channels) are its own. A recording
    the server has forgotten (idle for long, or the server restarted) is opened again, and
    the call retried once.

    Parameters
    ----------
    address : str
        "host:port" or "unix:/path" of the server.
    client_id : str, optional
        The id the server knows this client by; default: a new random one.
    timeout : float or None, optional
        Seconds a call may take (300 by default); None: no limit.
    token : str, optional
        The token sent with every call; default: the environment's
        (`mef3lab.client.credentials`).
    tls_ca : bytes, optional
        PEM bytes of the CA to trust (TLS); default: the environment's.

    Raises
    ------
    mef3lab.errors.ServerUnavailableError
        From any call, when the server is not reachable or does not answer in time.
    mef3lab.errors.Mef3LabError
        From any call, the exception the server raised, with its message.

    Examples
    --------
    >>> from mef3lab import Mef3Client
    >>> with Mef3Client("localhost:50051") as client:  # doctest: +SKIP
    ...     info = client.open_file("/data/sub-01.mefd")
    ...     x = client.read_index("/data/sub-01.mefd", 0, 2560, ["LA1", "LA2"])
    """

    def __init__(
        self,
        address: str,
        *,
        client_id: str | None = None,
        timeout: float | None = 300.0,
        token: str | None = None,
        tls_ca: bytes | None = None,
    ) -> None:
        self.address = address
        self.client_id = client_id or uuid.uuid4().hex
        self.timeout = timeout
        self._channel = channel_for(address, CHANNEL_OPTIONS, token=token, ca=tls_ca)
        self._stub = pb_grpc.Mef3LabStub(self._channel)
        self._metadata = ((CLIENT_ID_KEY, self.client_id),)
        self._active: dict[str, list[str]] = {}
        # path -> (password, engine, segment seconds): what reopening a forgotten recording needs
        self._opened: dict[str, tuple[str | None, str | None, float | None]] = {}

    # -- plumbing -------------------------------------------------------------------------
    def _call(self, name: str, request, timeout: float | None = None):
        return self._retrying(
            lambda: getattr(self._stub, name)(
                request, metadata=self._metadata, timeout=timeout or self.timeout
            ),
            request,
        )

    def _stream(self, name: str, request) -> tuple[pb.SampleChunk, np.ndarray]:
        return self._retrying(
            lambda: chunks_to_array(
                getattr(self._stub, name)(request, metadata=self._metadata, timeout=self.timeout)
            ),
            request,
        )

    def _retrying(self, call, request):
        """Run `call`; if the server forgot a recording this client opened, reopen it, retry once.

        The server forgets a recording that was idle for hours, or when it restarted.
        """
        try:
            try:
                return call()
            except grpc.RpcError as err:
                exc = _raise_from(err, self.address)
                path = getattr(request, "path", None)
                if not isinstance(exc, NotOpenError) or path not in self._opened:
                    raise exc from None
            password, engine, seconds = self._opened[path]
            self.open_file(path, password, engine)
            if seconds is not None:
                self.set_signal_chunk_size(path, seconds)
            return call()
        except grpc.RpcError as err:
            raise _raise_from(err, self.address) from None

    # -- recordings -----------------------------------------------------------------------
    def open_file(
        self, path: str, password: str | None = None, engine: str | None = None
    ) -> SessionInfo:
        """Open a recording on the server.

        Parameters
        ----------
        path : str
            The recording, as the server names it (a path, or a name from
            `list_recordings`).
        password : str, optional
            The recording's password, if it is encrypted.
        engine : str, optional
            The server's decoder for it ("numba", "pymef" or "mef3io"); None: the server's.

        Returns
        -------
        SessionInfo
            Its description: channels, rates, gaps, annotations.

        Raises
        ------
        mef3lab.errors.RecordingNotFoundError
            When there is no recording at `path`.
        mef3lab.errors.PasswordError
            When `password` does not open it.
        mef3lab.errors.PathNotServedError
            When the server does not serve `path` (outside its roots).
        """
        info = info_from_proto(
            self._call(
                "Open", pb.OpenRequest(path=str(path), password=password or "", engine=engine or "")
            )
        )
        self._opened[str(path)] = (password, engine, None)
        return info

    def refresh(self, path: str) -> SessionInfo:
        """What a recording this client opened holds now on disk: this client's view moves to it.

        A recording a writer appends to keeps, for its open views, the extent it had when
        they opened it; refreshing opens it again (with the same password, decoder and
        segment size), so that this client reads the new samples too. A recording written
        again since it was opened is read as the new one from now on.

        Parameters
        ----------
        path : str
            The recording, as this client opened it.

        Returns
        -------
        SessionInfo
            Its description now: the new extent, the new channels and annotations.

        Raises
        ------
        mef3lab.errors.Mef3LabError
            As `open_file` (the recording may be gone, or unreadable now).

        Examples
        --------
        >>> info = client.refresh("/data/monitoring.mefd")  # doctest: +SKIP
        >>> info.rate_groups[0].grid.n_samples  # doctest: +SKIP
        """
        password, engine, seconds = self._opened.get(str(path), (None, None, None))
        info = self.open_file(path, password, engine)
        self._opened[str(path)] = (password, engine, seconds)
        return info

    def list_recordings(self, folder: str = "") -> list[tuple[str, bool]]:
        """What the server serves: its roots, or the sessions and folders in one.

        Parameters
        ----------
        folder : str, optional
            A name from an earlier listing; empty: the server's roots.

        Returns
        -------
        list of (str, bool)
            ``(name, is_recording)`` per entry.
        """
        return [
            (e.name, e.recording) for e in self._call("List", pb.ListRequest(folder=folder)).entries
        ]

    def info(self, path: str) -> SessionInfo:
        """The description of a recording this client opened.

        Parameters
        ----------
        path : str
            The recording, as the server names it.

        Returns
        -------
        SessionInfo
            Channels, rates, gaps, annotations.
        """
        return info_from_proto(self._call("Info", pb.RecordingRequest(path=str(path))))

    def close_file(self, path: str, timeout: float | None = None) -> bool:
        """Close a recording for this client (the server closes it with its last client).

        Parameters
        ----------
        path : str
            The recording, as the server names it.
        timeout : float, optional
            Seconds to wait; default: the client's `timeout`.

        Returns
        -------
        bool
            Whether this client had it open.
        """
        self._opened.pop(str(path), None)
        return self._call("Close", pb.RecordingRequest(path=str(path)), timeout).closed

    def list_open_files(self, timeout: float | None = None) -> list[str]:
        """The recordings this client has open (also a cheap way to check the server answers).

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait; default: the client's `timeout`.

        Returns
        -------
        list of str
            Their paths.
        """
        return list(self._call("ListOpen", pb.ListOpenRequest(), timeout).paths)

    # -- segments -------------------------------------------------------------------------
    def set_signal_chunk_size(self, path: str, seconds: float) -> pb.SegmentGrid:
        """Cut the recording into segments of `seconds`, for this client only.

        Parameters
        ----------
        path : str
            The recording, as the server names it.
        seconds : float
            The segment length.

        Returns
        -------
        mef3lab_pb2.SegmentGrid
            The segments of each rate group (as `segment_grid`).

        Raises
        ------
        mef3lab.errors.TimeRangeError
            When `seconds` is below the server's minimum, or not finite.
        """
        grid = self._call("SetSegmentSize", pb.SegmentSizeRequest(path=str(path), seconds=seconds))
        if str(path) in self._opened:
            self._opened[str(path)] = self._opened[str(path)][:2] + (seconds,)
        return grid

    def segment_grid(self, path: str) -> pb.SegmentGrid:
        """The recording's segments as this client sees them.

        Parameters
        ----------
        path : str
            The recording, as the server names it.

        Returns
        -------
        mef3lab_pb2.SegmentGrid
            The segment length in use (``seconds``) and, per rate group (``groups``), its
            rate, segment length in samples and number of segments.
        """
        return self._call("GetSegmentGrid", pb.RecordingRequest(path=str(path)))

    def set_active_channels(self, path: str, channels: Sequence[str]) -> list[str]:
        """Remember the channels `get_signal_segment` returns when it names none.

        Parameters
        ----------
        path : str
            The recording, as the server names it.
        channels : sequence of str
            The channels, rows in this order.

        Returns
        -------
        list of str
            The channels, checked against the recording.

        Raises
        ------
        mef3lab.errors.UnknownChannelError
            When the recording has no such channel.
        """
        self._active[str(path)] = list(self.info(path).check_channels(channels))
        return self._active[str(path)]

    def get_signal_segment(
        self,
        path: str,
        chunk_idx: int,
        channels: Sequence[str] | None = None,
        dtype: str = "float32",
    ) -> np.ndarray:
        """One segment of the recording.

        Parameters
        ----------
        path : str
            The recording, as the server names it.
        chunk_idx : int
            The segment's index (see `segment_grid`).
        channels : sequence of str, optional
            Channels of one rate group, rows in this order; None: those of
            `set_active_channels`, else every channel (they must then share one rate).
        dtype : {"float32", "float64", "int32"}, optional
            Values in channel units, NaN in gaps, or the stored counts.

        Returns
        -------
        numpy.ndarray
            Shape (channels, samples).

        Raises
        ------
        mef3lab.errors.SegmentIndexError
            When there is no such segment.
        """
        names = channels if channels is not None else self._active.get(str(path))
        req = pb.ReadSegmentRequest(
            path=str(path), index=chunk_idx, channels=names or [], dtype=CODE_OF[dtype]
        )
        return self._stream("ReadSegment", req)[1]

    # -- ranges ---------------------------------------------------------------------------
    def read_range(
        self,
        path: str,
        start_uutc: int,
        end_uutc: int,
        channels: Sequence[str] | None = None,
        dtype: str = "float32",
    ) -> np.ndarray:
        """The samples in a time window, on the channels' grid.

        Parameters
        ----------
        path : str
            The recording, as the server names it.
        start_uutc, end_uutc : int
            The window ``[start_uutc, end_uutc)`` in µUTC.
        channels : sequence of str, optional
            Channels of one rate group, rows in this order; None: every channel (they must
            then share one rate).
        dtype : {"float32", "float64", "int32"}, optional
            Values in channel units, NaN in gaps, or the stored counts.

        Returns
        -------
        numpy.ndarray
            Shape (channels, samples).
        """
        req = pb.ReadRangeRequest(
            path=str(path),
            channels=channels or [],
            dtype=CODE_OF[dtype],
            time=pb.TimeWindow(start_uutc=int(start_uutc), end_uutc=int(end_uutc)),
        )
        return self._stream("ReadRange", req)[1]

    def read_index(
        self,
        path: str,
        start: int,
        stop: int,
        channels: Sequence[str] | None = None,
        dtype: str = "float32",
        prefetch: bool = True,
    ) -> np.ndarray:
        """Grid samples ``[start, stop)`` of the channels' rate group (what an xarray chunk is).

        Parameters
        ----------
        path : str
            The recording, as the server names it.
        start, stop : int
            The samples, on the rate group's grid.
        channels : sequence of str, optional
            Channels of one rate group, rows in this order; None: every channel (they must
            then share one rate).
        dtype : {"float32", "float64", "int32"}, optional
            Values in channel units, NaN in gaps, or the stored counts.
        prefetch : bool, optional
            Whether the server may read ahead after this read (True by default).

        Returns
        -------
        numpy.ndarray
            Shape (channels, stop - start).
        """
        req = pb.ReadRangeRequest(
            path=str(path),
            channels=channels or [],
            dtype=CODE_OF[dtype],
            samples=pb.IndexWindow(start=start, stop=stop),
            no_prefetch=not prefetch,
        )
        return self._stream("ReadRange", req)[1]

    def read_raw(
        self, path: str, start: int, stop: int, channels: Sequence[str] | None = None
    ) -> RawSamples:
        """The stored int32 counts of grid samples ``[start, stop)``, and their factors.

        Parameters
        ----------
        path : str
            The recording, as the server names it.
        start, stop : int
            The samples, on the rate group's grid.
        channels : sequence of str, optional
            Channels of one rate group, rows in this order; None: every channel (they must
            then share one rate).

        Returns
        -------
        RawSamples
            The counts (`RAW_NAN` in gaps) and each channel's conversion factor.

        Raises
        ------
        mef3lab.errors.FactorChangeError
            When a channel's conversion factor changes inside the recording.
        """
        req = pb.ReadRangeRequest(
            path=str(path),
            channels=channels or [],
            dtype=pb.INT32,
            samples=pb.IndexWindow(start=start, stop=stop),
        )
        header, counts = self._stream("ReadRange", req)
        return RawSamples(counts, np.array(header.conversion_factors, np.float64))

    def read_envelope(
        self,
        path: str,
        start_uutc: int,
        end_uutc: int,
        bins: int,
        channels: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Each bin's minimum and maximum in a time window, for display.

        Parameters
        ----------
        path : str
            The recording, as the server names it.
        start_uutc, end_uutc : int
            The window ``[start_uutc, end_uutc)`` in µUTC.
        bins : int
            How many bins the window is cut into.
        channels : sequence of str, optional
            Channels of one rate group, rows in this order; None: every channel (they must
            then share one rate).

        Returns
        -------
        numpy.ndarray
            float32, shape (2, channels, bins): the minima, then the maxima.
        """
        req = pb.EnvelopeRequest(
            path=str(path),
            channels=channels or [],
            bins=bins,
            time=pb.TimeWindow(start_uutc=int(start_uutc), end_uutc=int(end_uutc)),
        )
        return self._stream("ReadEnvelope", req)[1]

    def block_index(self, path: str, channel: str) -> dict[str, np.ndarray]:
        """Every stored block of `channel`, from the block index (nothing decoded).

        Parameters
        ----------
        path : str
            The recording, as the server names it.
        channel : str
            The channel.

        Returns
        -------
        dict of str to numpy.ndarray
            ``start_uutc``, ``end_uutc`` (int64) and ``min``, ``max`` (float64, channel
            units), one entry per block.
        """
        msg = self._call("ReadBlockIndex", pb.BlockIndexRequest(path=str(path), channel=channel))
        return {
            "start_uutc": np.array(msg.start_uutc, np.int64),
            "end_uutc": np.array(msg.end_uutc, np.int64),
            "min": np.array(msg.min, np.float64),
            "max": np.array(msg.max, np.float64),
        }

    def prefetch(
        self,
        path: str,
        start: int,
        stop: int,
        channels: Sequence[str] | None = None,
        dtype: str = "float32",
    ) -> int:
        """Ask the server to decode grid samples ``[start, stop)`` in the background.

        Parameters
        ----------
        path : str
            The recording, as the server names it.
        start, stop : int
            The samples, on the rate group's grid.
        channels : sequence of str, optional
            Channels of one rate group, rows in this order; None: every channel (they must
            then share one rate).
        dtype : {"float32", "float64", "int32"}, optional
            Values in channel units, NaN in gaps, or the stored counts.

        Returns
        -------
        int
            How many segments the server queued.
        """
        return self._call(
            "Prefetch", self._prefetch_request(path, start, stop, channels, dtype)
        ).queued

    def prefetch_nowait(
        self,
        path: str,
        start: int,
        stop: int,
        channels: Sequence[str] | None = None,
        dtype: str = "float32",
        timeout: float = 10.0,
    ) -> grpc.Future:
        """Like `prefetch`, without waiting: the call's future (its outcome is only advice).

        Parameters
        ----------
        path, start, stop, channels, dtype
            As in `prefetch`.
        timeout : float, optional
            Seconds the call may take.

        Returns
        -------
        grpc.Future
            The call.
        """
        return self._stub.Prefetch.future(
            self._prefetch_request(path, start, stop, channels, dtype),
            metadata=self._metadata,
            timeout=timeout,
        )

    @staticmethod
    def _prefetch_request(path, start, stop, channels, dtype) -> pb.PrefetchRequest:
        return pb.PrefetchRequest(
            path=str(path),
            channels=list(channels or []),
            dtype=CODE_OF[dtype],
            samples=pb.IndexWindow(start=int(start), stop=int(stop)),
        )

    def stats(self) -> dict[str, Any]:
        """The server's statistics: its cache, reads, prefetches, reader processes, clients.

        Returns
        -------
        dict
            One entry per field of the server's ``ServerStats``: counters (``hits``,
            ``misses``, ``prefetches``, ``decoded_samples``...) as int, ``version`` as str,
            ``worker_pids`` as a list of int.
        """
        msg = self._call("GetStats", pb.StatsRequest())
        out = {f.name: getattr(msg, f.name) for f in msg.DESCRIPTOR.fields}
        out["worker_pids"] = list(out["worker_pids"])
        return out

    def healthy(self, timeout: float = 5.0) -> bool:
        """Whether the server's gRPC health check says SERVING.

        Parameters
        ----------
        timeout : float, optional
            Seconds to wait for the answer.

        Returns
        -------
        bool
            False too when the server is unreachable or does not answer in time.
        """
        from grpc_health.v1 import health_pb2, health_pb2_grpc  # only the extension asks

        try:
            reply = health_pb2_grpc.HealthStub(self._channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout, wait_for_ready=True
            )
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    # -- lifecycle ------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Close this client's connection (the server keeps running)."""
        self._channel.close()

    def __enter__(self) -> Mef3Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
