"""mef3lab.v1 on the wire: messages <-> Python objects, and sample arrays <-> streams.

Shared by the server's service and the client so the two can never disagree on a
field, a dtype code or how an array is split into messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ..model import Annotation, ChannelInfo, SessionInfo, Span
from . import mef3lab_pb2 as pb

#: Largest payload per streamed message: gRPC Python streams arrays faster in 1 MiB messages
#: than in one big one.
MAX_MESSAGE_BYTES = 1 << 20

DTYPE_OF = {
    pb.SAMPLE_TYPE_UNSPECIFIED: "float32",
    pb.FLOAT32: "float32",
    pb.FLOAT64: "float64",
    pb.INT32: "int32",
}
CODE_OF = {"float32": pb.FLOAT32, "float64": pb.FLOAT64, "int32": pb.INT32}
NUMPY_OF = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8"), "int32": np.dtype("<i4")}

CLIENT_ID_KEY = "x-mef3lab-client-id"
ERROR_KEY = "x-mef3lab-error"


def info_to_proto(info: SessionInfo, engine: str = "") -> pb.RecordingInfo:
    """A recording's description as its wire message.

    Parameters
    ----------
    info : SessionInfo
        The description.
    engine : str
        The decoder the server reads it with (empty: not said).

    Returns
    -------
    RecordingInfo
        The message; `info_from_proto` turns it back into an equal `SessionInfo`.
    """
    return pb.RecordingInfo(
        path=info.path,
        channels=[
            pb.Channel(
                name=c.name,
                fs=c.fs,
                start_uutc=c.start_uutc,
                end_uutc=c.end_uutc,
                n_samples=c.n_samples,
                units=c.units,
                conversion_factor=c.conversion_factor,
                acquisition_number=c.acquisition_number,
                units_text=c.units_text,
            )
            for c in info.channels
        ],
        spans=[
            pb.ChannelSpans(
                channel=name,
                spans=[pb.Span(start_uutc=s.start_uutc, end_uutc=s.end_uutc) for s in spans],
            )
            for name, spans in info.spans.items()
        ],
        annotations=[
            pb.Annotation(
                time_uutc=a.time_uutc,
                type=a.type,
                text=a.text,
                duration_us=a.duration_us,
                channel=a.channel,
            )
            for a in info.annotations
        ],
        encrypted=info.encrypted,
        engine=engine,
        damaged=[pb.DamagedChannel(channel=name, reason=why) for name, why in info.damaged.items()],
        factor_changes=[
            pb.ChannelFactors(
                channel=name,
                changes=[pb.FactorChange(start_uutc=t, conversion_factor=f) for t, f in runs],
            )
            for name, runs in info.factor_changes.items()
        ],
        gmt_offset_s=info.gmt_offset_s,
        deidentified=info.deidentified,
    )


def info_from_proto(msg: pb.RecordingInfo) -> SessionInfo:
    """A recording's description from its wire message (the inverse of `info_to_proto`).

    Parameters
    ----------
    msg : RecordingInfo
        The message.

    Returns
    -------
    SessionInfo
        The description.
    """
    return SessionInfo(
        path=msg.path,
        channels=tuple(
            ChannelInfo(
                c.name,
                c.fs,
                c.start_uutc,
                c.end_uutc,
                c.n_samples,
                c.units,
                c.conversion_factor,
                c.acquisition_number if c.HasField("acquisition_number") else None,
                c.units_text,
            )
            for c in msg.channels
        ),
        spans={
            cs.channel: tuple(Span(s.start_uutc, s.end_uutc) for s in cs.spans) for cs in msg.spans
        },
        annotations=tuple(
            Annotation(
                a.time_uutc,
                a.type,
                a.text,
                a.duration_us if a.HasField("duration_us") else None,
                a.channel if a.HasField("channel") else None,
            )
            for a in msg.annotations
        ),
        encrypted=msg.encrypted,
        damaged={d.channel: d.reason for d in msg.damaged},
        factor_changes={
            cf.channel: tuple((c.start_uutc, c.conversion_factor) for c in cf.changes)
            for cf in msg.factor_changes
        },
        gmt_offset_s=msg.gmt_offset_s if msg.HasField("gmt_offset_s") else None,
        deidentified=msg.deidentified,
    )


def pieces_to_chunks(
    shape: tuple[int, ...], pieces: Iterable[bytes], header: pb.SampleChunk
) -> Iterator[pb.SampleChunk]:
    """Stream an array given as consecutive byte pieces.

    Parameters
    ----------
    shape : tuple of int
        The array's shape.
    pieces : iterable of bytes
        The array's bytes in order, at least one piece (each at most `MAX_MESSAGE_BYTES`).
    header : SampleChunk
        The first message, with everything but the data set; it carries the first piece.

    Yields
    ------
    SampleChunk
        `header`, then one plain message per further piece.
    """
    header.shape[:] = shape
    first = True
    for piece in pieces:
        msg = header if first else pb.SampleChunk()
        msg.data = piece
        first = False
        yield msg


def chunks_to_array(chunks: Iterable[pb.SampleChunk]) -> tuple[pb.SampleChunk, np.ndarray]:
    """Reassemble a stream made by `pieces_to_chunks` into one preallocated array.

    Parameters
    ----------
    chunks : iterable of SampleChunk
        The stream.

    Returns
    -------
    header : SampleChunk
        The first message, its data cleared.
    array : numpy.ndarray
        The array.

    Raises
    ------
    ValueError
        If the stream carried a different number of bytes than its shape and dtype need.
    """
    it = iter(chunks)
    header = next(it)
    dtype = NUMPY_OF[DTYPE_OF[header.dtype]]
    out = np.empty(tuple(header.shape), dtype)
    flat = memoryview(out).cast("B") if out.size else memoryview(bytearray())
    pos = len(header.data)
    flat[:pos] = header.data
    for msg in it:
        n = len(msg.data)
        flat[pos : pos + n] = msg.data
        pos += n
    if pos != out.nbytes:
        raise ValueError(f"stream carried {pos} bytes for an array of {out.nbytes}")
    header.ClearField("data")
    return header, out
