from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SampleType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SAMPLE_TYPE_UNSPECIFIED: _ClassVar[SampleType]
    FLOAT32: _ClassVar[SampleType]
    FLOAT64: _ClassVar[SampleType]
    INT32: _ClassVar[SampleType]
SAMPLE_TYPE_UNSPECIFIED: SampleType
FLOAT32: SampleType
FLOAT64: SampleType
INT32: SampleType

class OpenRequest(_message.Message):
    __slots__ = ("path", "password", "engine")
    PATH_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    path: str
    password: str
    engine: str
    def __init__(self, path: _Optional[str] = ..., password: _Optional[str] = ..., engine: _Optional[str] = ...) -> None: ...

class RecordingRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class CloseResponse(_message.Message):
    __slots__ = ("path", "closed")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    path: str
    closed: bool
    def __init__(self, path: _Optional[str] = ..., closed: _Optional[bool] = ...) -> None: ...

class ListOpenRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListOpenResponse(_message.Message):
    __slots__ = ("paths",)
    PATHS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, paths: _Optional[_Iterable[str]] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("folder",)
    FOLDER_FIELD_NUMBER: _ClassVar[int]
    folder: str
    def __init__(self, folder: _Optional[str] = ...) -> None: ...

class ListEntry(_message.Message):
    __slots__ = ("name", "recording")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RECORDING_FIELD_NUMBER: _ClassVar[int]
    name: str
    recording: bool
    def __init__(self, name: _Optional[str] = ..., recording: _Optional[bool] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ListEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[ListEntry, _Mapping]]] = ...) -> None: ...

class Channel(_message.Message):
    __slots__ = ("name", "fs", "start_uutc", "end_uutc", "n_samples", "units", "conversion_factor", "acquisition_number", "units_text")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FS_FIELD_NUMBER: _ClassVar[int]
    START_UUTC_FIELD_NUMBER: _ClassVar[int]
    END_UUTC_FIELD_NUMBER: _ClassVar[int]
    N_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    ACQUISITION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    UNITS_TEXT_FIELD_NUMBER: _ClassVar[int]
    name: str
    fs: float
    start_uutc: int
    end_uutc: int
    n_samples: int
    units: str
    conversion_factor: float
    acquisition_number: int
    units_text: str
    def __init__(self, name: _Optional[str] = ..., fs: _Optional[float] = ..., start_uutc: _Optional[int] = ..., end_uutc: _Optional[int] = ..., n_samples: _Optional[int] = ..., units: _Optional[str] = ..., conversion_factor: _Optional[float] = ..., acquisition_number: _Optional[int] = ..., units_text: _Optional[str] = ...) -> None: ...

class Span(_message.Message):
    __slots__ = ("start_uutc", "end_uutc")
    START_UUTC_FIELD_NUMBER: _ClassVar[int]
    END_UUTC_FIELD_NUMBER: _ClassVar[int]
    start_uutc: int
    end_uutc: int
    def __init__(self, start_uutc: _Optional[int] = ..., end_uutc: _Optional[int] = ...) -> None: ...

class ChannelSpans(_message.Message):
    __slots__ = ("channel", "spans")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    channel: str
    spans: _containers.RepeatedCompositeFieldContainer[Span]
    def __init__(self, channel: _Optional[str] = ..., spans: _Optional[_Iterable[_Union[Span, _Mapping]]] = ...) -> None: ...

class Annotation(_message.Message):
    __slots__ = ("time_uutc", "type", "text", "duration_us", "channel")
    TIME_UUTC_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DURATION_US_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    time_uutc: int
    type: str
    text: str
    duration_us: int
    channel: str
    def __init__(self, time_uutc: _Optional[int] = ..., type: _Optional[str] = ..., text: _Optional[str] = ..., duration_us: _Optional[int] = ..., channel: _Optional[str] = ...) -> None: ...

class RecordingInfo(_message.Message):
    __slots__ = ("path", "channels", "spans", "annotations", "encrypted", "engine", "damaged", "factor_changes", "gmt_offset_s", "deidentified")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    DAMAGED_FIELD_NUMBER: _ClassVar[int]
    FACTOR_CHANGES_FIELD_NUMBER: _ClassVar[int]
    GMT_OFFSET_S_FIELD_NUMBER: _ClassVar[int]
    DEIDENTIFIED_FIELD_NUMBER: _ClassVar[int]
    path: str
    channels: _containers.RepeatedCompositeFieldContainer[Channel]
    spans: _containers.RepeatedCompositeFieldContainer[ChannelSpans]
    annotations: _containers.RepeatedCompositeFieldContainer[Annotation]
    encrypted: bool
    engine: str
    damaged: _containers.RepeatedCompositeFieldContainer[DamagedChannel]
    factor_changes: _containers.RepeatedCompositeFieldContainer[ChannelFactors]
    gmt_offset_s: int
    deidentified: bool
    def __init__(self, path: _Optional[str] = ..., channels: _Optional[_Iterable[_Union[Channel, _Mapping]]] = ..., spans: _Optional[_Iterable[_Union[ChannelSpans, _Mapping]]] = ..., annotations: _Optional[_Iterable[_Union[Annotation, _Mapping]]] = ..., encrypted: _Optional[bool] = ..., engine: _Optional[str] = ..., damaged: _Optional[_Iterable[_Union[DamagedChannel, _Mapping]]] = ..., factor_changes: _Optional[_Iterable[_Union[ChannelFactors, _Mapping]]] = ..., gmt_offset_s: _Optional[int] = ..., deidentified: _Optional[bool] = ...) -> None: ...

class ChannelFactors(_message.Message):
    __slots__ = ("channel", "changes")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    channel: str
    changes: _containers.RepeatedCompositeFieldContainer[FactorChange]
    def __init__(self, channel: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[FactorChange, _Mapping]]] = ...) -> None: ...

class FactorChange(_message.Message):
    __slots__ = ("start_uutc", "conversion_factor")
    START_UUTC_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    start_uutc: int
    conversion_factor: float
    def __init__(self, start_uutc: _Optional[int] = ..., conversion_factor: _Optional[float] = ...) -> None: ...

class DamagedChannel(_message.Message):
    __slots__ = ("channel", "reason")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    channel: str
    reason: str
    def __init__(self, channel: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SegmentSizeRequest(_message.Message):
    __slots__ = ("path", "seconds")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    path: str
    seconds: float
    def __init__(self, path: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class RateGrid(_message.Message):
    __slots__ = ("fs", "channels", "start_uutc", "n_samples", "segment_samples", "n_segments")
    FS_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    START_UUTC_FIELD_NUMBER: _ClassVar[int]
    N_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    N_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    fs: float
    channels: _containers.RepeatedScalarFieldContainer[str]
    start_uutc: int
    n_samples: int
    segment_samples: int
    n_segments: int
    def __init__(self, fs: _Optional[float] = ..., channels: _Optional[_Iterable[str]] = ..., start_uutc: _Optional[int] = ..., n_samples: _Optional[int] = ..., segment_samples: _Optional[int] = ..., n_segments: _Optional[int] = ...) -> None: ...

class SegmentGrid(_message.Message):
    __slots__ = ("path", "seconds", "groups")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    path: str
    seconds: float
    groups: _containers.RepeatedCompositeFieldContainer[RateGrid]
    def __init__(self, path: _Optional[str] = ..., seconds: _Optional[float] = ..., groups: _Optional[_Iterable[_Union[RateGrid, _Mapping]]] = ...) -> None: ...

class ReadSegmentRequest(_message.Message):
    __slots__ = ("path", "index", "channels", "dtype", "no_prefetch")
    PATH_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    NO_PREFETCH_FIELD_NUMBER: _ClassVar[int]
    path: str
    index: int
    channels: _containers.RepeatedScalarFieldContainer[str]
    dtype: SampleType
    no_prefetch: bool
    def __init__(self, path: _Optional[str] = ..., index: _Optional[int] = ..., channels: _Optional[_Iterable[str]] = ..., dtype: _Optional[_Union[SampleType, str]] = ..., no_prefetch: _Optional[bool] = ...) -> None: ...

class ReadRangeRequest(_message.Message):
    __slots__ = ("path", "channels", "dtype", "time", "samples", "no_prefetch")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    NO_PREFETCH_FIELD_NUMBER: _ClassVar[int]
    path: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    dtype: SampleType
    time: TimeWindow
    samples: IndexWindow
    no_prefetch: bool
    def __init__(self, path: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., dtype: _Optional[_Union[SampleType, str]] = ..., time: _Optional[_Union[TimeWindow, _Mapping]] = ..., samples: _Optional[_Union[IndexWindow, _Mapping]] = ..., no_prefetch: _Optional[bool] = ...) -> None: ...

class TimeWindow(_message.Message):
    __slots__ = ("start_uutc", "end_uutc")
    START_UUTC_FIELD_NUMBER: _ClassVar[int]
    END_UUTC_FIELD_NUMBER: _ClassVar[int]
    start_uutc: int
    end_uutc: int
    def __init__(self, start_uutc: _Optional[int] = ..., end_uutc: _Optional[int] = ...) -> None: ...

class IndexWindow(_message.Message):
    __slots__ = ("start", "stop")
    START_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    start: int
    stop: int
    def __init__(self, start: _Optional[int] = ..., stop: _Optional[int] = ...) -> None: ...

class EnvelopeRequest(_message.Message):
    __slots__ = ("path", "channels", "time", "samples", "bins")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    path: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    time: TimeWindow
    samples: IndexWindow
    bins: int
    def __init__(self, path: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., time: _Optional[_Union[TimeWindow, _Mapping]] = ..., samples: _Optional[_Union[IndexWindow, _Mapping]] = ..., bins: _Optional[int] = ...) -> None: ...

class BlockIndexRequest(_message.Message):
    __slots__ = ("path", "channel")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    path: str
    channel: str
    def __init__(self, path: _Optional[str] = ..., channel: _Optional[str] = ...) -> None: ...

class BlockIndex(_message.Message):
    __slots__ = ("start_uutc", "end_uutc", "min", "max")
    START_UUTC_FIELD_NUMBER: _ClassVar[int]
    END_UUTC_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    start_uutc: _containers.RepeatedScalarFieldContainer[int]
    end_uutc: _containers.RepeatedScalarFieldContainer[int]
    min: _containers.RepeatedScalarFieldContainer[float]
    max: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, start_uutc: _Optional[_Iterable[int]] = ..., end_uutc: _Optional[_Iterable[int]] = ..., min: _Optional[_Iterable[float]] = ..., max: _Optional[_Iterable[float]] = ...) -> None: ...

class SampleChunk(_message.Message):
    __slots__ = ("dtype", "shape", "channels", "fs", "start_index", "first_sample_uutc", "conversion_factors", "data")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    FS_FIELD_NUMBER: _ClassVar[int]
    START_INDEX_FIELD_NUMBER: _ClassVar[int]
    FIRST_SAMPLE_UUTC_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_FACTORS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    dtype: SampleType
    shape: _containers.RepeatedScalarFieldContainer[int]
    channels: _containers.RepeatedScalarFieldContainer[str]
    fs: float
    start_index: int
    first_sample_uutc: int
    conversion_factors: _containers.RepeatedScalarFieldContainer[float]
    data: bytes
    def __init__(self, dtype: _Optional[_Union[SampleType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., channels: _Optional[_Iterable[str]] = ..., fs: _Optional[float] = ..., start_index: _Optional[int] = ..., first_sample_uutc: _Optional[int] = ..., conversion_factors: _Optional[_Iterable[float]] = ..., data: _Optional[bytes] = ...) -> None: ...

class PrefetchRequest(_message.Message):
    __slots__ = ("path", "channels", "samples", "dtype")
    PATH_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    path: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    samples: IndexWindow
    dtype: SampleType
    def __init__(self, path: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., samples: _Optional[_Union[IndexWindow, _Mapping]] = ..., dtype: _Optional[_Union[SampleType, str]] = ...) -> None: ...

class PrefetchResponse(_message.Message):
    __slots__ = ("queued",)
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    queued: int
    def __init__(self, queued: _Optional[int] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerStats(_message.Message):
    __slots__ = ("cache_bytes", "cache_budget_bytes", "cache_entries", "hits", "misses", "prefetches", "prefetch_hits", "workers", "worker_restarts", "open_recordings", "clients", "decoded_samples", "version", "configured_workers", "worker_pids", "prefetch_depth")
    CACHE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CACHE_BUDGET_BYTES_FIELD_NUMBER: _ClassVar[int]
    CACHE_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    PREFETCHES_FIELD_NUMBER: _ClassVar[int]
    PREFETCH_HITS_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    WORKER_RESTARTS_FIELD_NUMBER: _ClassVar[int]
    OPEN_RECORDINGS_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    DECODED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONFIGURED_WORKERS_FIELD_NUMBER: _ClassVar[int]
    WORKER_PIDS_FIELD_NUMBER: _ClassVar[int]
    PREFETCH_DEPTH_FIELD_NUMBER: _ClassVar[int]
    cache_bytes: int
    cache_budget_bytes: int
    cache_entries: int
    hits: int
    misses: int
    prefetches: int
    prefetch_hits: int
    workers: int
    worker_restarts: int
    open_recordings: int
    clients: int
    decoded_samples: int
    version: str
    configured_workers: int
    worker_pids: _containers.RepeatedScalarFieldContainer[int]
    prefetch_depth: int
    def __init__(self, cache_bytes: _Optional[int] = ..., cache_budget_bytes: _Optional[int] = ..., cache_entries: _Optional[int] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., prefetches: _Optional[int] = ..., prefetch_hits: _Optional[int] = ..., workers: _Optional[int] = ..., worker_restarts: _Optional[int] = ..., open_recordings: _Optional[int] = ..., clients: _Optional[int] = ..., decoded_samples: _Optional[int] = ..., version: _Optional[str] = ..., configured_workers: _Optional[int] = ..., worker_pids: _Optional[_Iterable[int]] = ..., prefetch_depth: _Optional[int] = ...) -> None: ...
