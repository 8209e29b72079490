"""Mef3Client: the Python client of a mef3lab server.

It keeps the seed client's method names (`open_file`, `set_signal_chunk_size`,
`set_active_channels`, `get_signal_segment`, `list_open_files`, `close_file`,
`shutdown`) so existing notebooks read naturally, and adds range reads, envelopes,
prefetch hints and stats. Server errors come back as the mef3lab exception the
server raised, with its message — never as a silent None.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import grpc
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
    """Talks to one mef3lab server. One client id per instance: its settings are its own."""

    def __init__(
        self,
        address: str,
        *,
        client_id: str | None = None,
        timeout: float | None = 300.0,
        token: str | None = None,
        tls_ca: bytes | None = None,
    ) -> None:
        """`token` and `tls_ca` (PEM bytes) default to the environment (`mef3lab.client.credentials`)."""
        self.address = address
        self.client_id = client_id or uuid.uuid4().hex
        self.timeout = timeout
        self._channel = channel_for(address, CHANNEL_OPTIONS, token=token, ca=tls_ca)
        self._stub = pb_grpc.Mef3LabStub(self._channel)
        self._metadata = ((CLIENT_ID_KEY, self.client_id),)
        self._active: dict[str, list[str]] = {}
        self._opened: dict[
            str, tuple[str | None, str | None, float | None]
        ] = {}  # (password, engine, seg s)

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
        """Run `call`; if the server forgot a recording this client opened (it was idle for
        hours, or the server restarted), open it again and retry once.
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
        """Open a recording on the server; returns its description (channels, rates, gaps, annotations)."""
        info = info_from_proto(
            self._call(
                "Open", pb.OpenRequest(path=str(path), password=password or "", engine=engine or "")
            )
        )
        self._opened[str(path)] = (password, engine, None)
        return info

    def list_recordings(self, folder: str = "") -> list[tuple[str, bool]]:
        """What the server serves: ``(name, is_recording)`` for its roots (`folder` empty) or for
        the sessions and folders in `folder` (a name from an earlier listing).
        """
        return [
            (e.name, e.recording) for e in self._call("List", pb.ListRequest(folder=folder)).entries
        ]

    def info(self, path: str) -> SessionInfo:
        return info_from_proto(self._call("Info", pb.RecordingRequest(path=str(path))))

    def close_file(self, path: str, timeout: float | None = None) -> bool:
        self._opened.pop(str(path), None)
        return self._call("Close", pb.RecordingRequest(path=str(path)), timeout).closed

    def list_open_files(self, timeout: float | None = None) -> list[str]:
        """This client's open recordings (also a cheap way to check the server answers)."""
        return list(self._call("ListOpen", pb.ListOpenRequest(), timeout).paths)

    # -- segments -------------------------------------------------------------------------
    def set_signal_chunk_size(self, path: str, seconds: float) -> pb.SegmentGrid:
        """Cut the recording into segments of `seconds` (for this client only)."""
        grid = self._call("SetSegmentSize", pb.SegmentSizeRequest(path=str(path), seconds=seconds))
        if str(path) in self._opened:
            self._opened[str(path)] = self._opened[str(path)][:2] + (seconds,)
        return grid

    def segment_grid(self, path: str) -> pb.SegmentGrid:
        return self._call("GetSegmentGrid", pb.RecordingRequest(path=str(path)))

    def set_active_channels(self, path: str, channels: Sequence[str]) -> list[str]:
        """Remember the channels `get_signal_segment` returns when it names none (for this client)."""
        self._active[str(path)] = list(self.info(path).check_channels(channels))
        return self._active[str(path)]

    def get_signal_segment(
        self,
        path: str,
        chunk_idx: int,
        channels: Sequence[str] | None = None,
        dtype: str = "float32",
    ) -> np.ndarray:
        """Segment `chunk_idx` as a (channels, samples) array, rows in the order asked for."""
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
        """Samples in ``[start_uutc, end_uutc)`` on the channels' grid; NaN in gaps."""
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
        """Grid samples ``[start, stop)`` of the channels' rate group (what an xarray chunk is)."""
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
        """Stored int32 counts of grid samples ``[start, stop)`` plus each channel's conversion factor."""
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
        """Per-bin (min, max) for display: shape (2, channels, bins), float32."""
        req = pb.EnvelopeRequest(
            path=str(path),
            channels=channels or [],
            bins=bins,
            time=pb.TimeWindow(start_uutc=int(start_uutc), end_uutc=int(end_uutc)),
        )
        return self._stream("ReadEnvelope", req)[1]

    def block_index(self, path: str, channel: str) -> dict[str, np.ndarray]:
        """Every stored block of `channel`: start_uutc, end_uutc, min, max, from the block index (nothing decoded)."""
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
        """Ask the server to decode grid samples ``[start, stop)`` in the background; how many segments it queued."""
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
        """Like `prefetch`, without waiting: the call's future (its outcome is only advice)."""
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

    def stats(self) -> dict[str, int]:
        msg = self._call("GetStats", pb.StatsRequest())
        return {f.name: getattr(msg, f.name) for f in msg.DESCRIPTOR.fields}

    def healthy(self, timeout: float = 5.0) -> bool:
        """Whether the server's gRPC health check says SERVING within `timeout` s (False if unreachable)."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: PLC0415 - only the extension asks

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
