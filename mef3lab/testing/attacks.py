"""What a hostile user of a shared server does, as code that runs each attack against a real one.

The attack tests and the soak (a benchmark table, and its short form in CI) run the same
attacks: streams started and never read, requests whose cost is out of proportion to what
they ask for, opens under made-up client ids, half-sent requests to the status port and a
flood of made-up tokens. Each attack runs for a while, asserts that the server refused
what it had to refuse, and lets go of everything it held. `take_turns` has several
attackers run them in turn. What the server does about each is in ``docs/serving.md``.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from ..protocol import gRPCMef3Server_pb2 as cpb
from ..protocol import gRPCMef3Server_pb2_grpc as cpb_grpc
from ..protocol import mef3lab_pb2 as pb
from ..protocol import mef3lab_pb2_grpc as pb_grpc
from ..protocol.wire import CLIENT_ID_KEY

#: No bandwidth probing: a stalling client's receive window stays small, so the server waits.
STALLING = [("grpc.http2.bdp_probe", 0), ("grpc.max_receive_message_length", 64 << 20)]
#: What the attacks may hold beyond the same load without them: 8 stalled streams' unsent
#: messages (and gRPC's buffers for them) and one parsed request.
ATTACK_ALLOWANCE_MB = 256.0
#: The statuses a refused attack gets.
REFUSALS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)


@dataclass(frozen=True)
class Target:
    """A server under attack, and what the attacker knows of it.

    Attributes
    ----------
    address : str
        The gRPC address.
    path : str
        A recording the well-behaved clients read too.
    http_url : str or None
        The status port's URL (``http://host:port/``); None: no half-sent HTTP requests.
    token : str or None
        The attacker's own valid token (authentication on); None: no flood of made-up tokens.
    spares : tuple of str
        Other recordings, opened under made-up client ids (more than the server's
        per-identity open limit, so that some opens must be refused).
    """

    address: str
    path: str
    http_url: str | None = None
    token: str | None = None
    spares: tuple[str, ...] = ()

    def metadata(self, client_id: str = "attacker", token: str | None = None) -> list:
        """The call metadata of the attacker under `client_id` (with `token`, default its own)."""
        md = [(CLIENT_ID_KEY, client_id)]
        if token or self.token:
            md.append(("authorization", f"Bearer {token or self.token}"))
        return md


def stall(address: str, path: str, n: int, token: str | None = None) -> list:
    """`n` segment streams, each read one message deep and then left alone.

    Parameters
    ----------
    address : str
        The server's gRPC address.
    path : str
        A recording (opened here) of at least three segments.
    n : int
        Streams to start.
    token : str, optional
        The attacker's token.

    Returns
    -------
    list of (grpc.Channel, stream)
        What `release` lets go of.
    """
    md = Target(address, path, token=token).metadata()
    stalled = []
    for i in range(n):
        channel = grpc.insecure_channel(address, options=STALLING)
        stub = pb_grpc.Mef3LabStub(channel)
        stub.Open(pb.OpenRequest(path=path), metadata=md, timeout=60)
        stream = stub.ReadSegment(
            pb.ReadSegmentRequest(path=path, index=i % 3, no_prefetch=True), metadata=md
        )
        stalled.append((channel, stream))
    for _, stream in stalled:
        next(stream)
    return stalled


def release(stalled: list) -> None:
    """Cancel the streams `stall` started and close their channels."""
    for channel, stream in stalled:
        stream.cancel()
        channel.close()


def refused(call: Callable[[], object], codes=REFUSALS) -> grpc.StatusCode:
    """The status of `call` (a stream drained), which must fail with one of `codes`.

    Raises
    ------
    AssertionError
        The call was served, or failed otherwise.
    """
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
    except grpc.RpcError as err:
        assert err.code() in codes, f"{err.code()}: {err.details()}"
        return err.code()
    raise AssertionError("an attack was served")


def stalled_streams(target: Target, seconds: float, n: int = 8) -> None:
    """`n` segment streams started and left unread for `seconds`, then cancelled."""
    held = stall(target.address, target.path, n, target.token)
    try:
        time.sleep(seconds)
    finally:
        release(held)


def bad_requests(target: Target, seconds: float) -> None:
    """For `seconds`, requests out of proportion to their reply, each of which must be refused.

    Reads naming one channel a million and a hundred thousand times, an envelope of a
    billion bins over the whole recording, segment sizes of 1e300 and 1e9 s (and 2^62 s on
    the legacy API); no refused size may be applied.
    """
    md = target.metadata()
    with grpc.insecure_channel(target.address) as channel:
        stub = pb_grpc.Mef3LabStub(channel)
        info = stub.Open(pb.OpenRequest(path=target.path), metadata=md, timeout=60)
        channel_name = info.channels[0].name
        grid = stub.GetSegmentGrid(pb.RecordingRequest(path=target.path), metadata=md)
        legacy = cpb_grpc.gRPCMef3ServerStub(channel)
        legacy_md = [("x-mef3io-client-id", "legacy-attacker"), *md[1:]]
        legacy.OpenFile(cpb.OpenFileRequest(file_path=target.path), metadata=legacy_md)
        whole = pb.IndexWindow(start=0, stop=int(grid.groups[0].n_samples))
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            for n in (1_000_000, 100_000):  # refused by its size, then by its length
                refused(
                    lambda n=n: stub.ReadRange(
                        pb.ReadRangeRequest(
                            path=target.path,
                            channels=[channel_name] * n,
                            samples=pb.IndexWindow(start=0, stop=10),
                        ),
                        metadata=md,
                        timeout=60,
                    )
                )
            refused(
                lambda: stub.ReadEnvelope(
                    pb.EnvelopeRequest(path=target.path, samples=whole, bins=10**9),
                    metadata=md,
                    timeout=60,
                )
            )
            for s in (1e300, 1e9):
                refused(
                    lambda s=s: stub.SetSegmentSize(
                        pb.SegmentSizeRequest(path=target.path, seconds=s), metadata=md, timeout=60
                    )
                )
            reply = legacy.SetSignalSegmentSize(
                cpb.SetSignalSegmentRequest(file_path=target.path, seconds=2**62),
                metadata=legacy_md,
                timeout=60,
            )
            assert "unchanged" in reply.error_message, reply
        after = stub.GetSegmentGrid(pb.RecordingRequest(path=target.path), metadata=md)
        assert after == grid, "a refused segment size was applied"


def made_up_ids(target: Target, seconds: float, ids: int = 8) -> None:
    """Recordings opened under `ids` made-up client ids, and held for `seconds`.

    The target's recording, then every spare one, under each id, then held as if the
    attacker went away without closing them.
    The open limit counts per identity: some of these opens must be refused
    (RESOURCE_EXHAUSTED), however many ids the attacker makes up. The target's recording
    comes first, so the attacker's other attacks (which open it) keep their place.
    """
    assert target.spares, "made_up_ids needs spare recordings"
    codes: Counter = Counter()
    with grpc.insecure_channel(target.address) as channel:
        stub = pb_grpc.Mef3LabStub(channel)
        for i in range(ids):
            md = target.metadata(f"made-up-{uuid.uuid4().hex[:8]}-{i}")
            for path in (target.path, *target.spares):
                try:
                    stub.Open(pb.OpenRequest(path=path), metadata=md, timeout=60)
                    codes["opened"] += 1
                except grpc.RpcError as err:
                    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.details()
                    codes["refused"] += 1
    assert codes["refused"], f"{codes['opened']} opens under made-up ids, none refused"
    time.sleep(seconds)


def half_sent_http(target: Target, seconds: float, n: int = 64) -> None:
    """`n` requests to the status port (from 127.0.0.2) that stop mid-header, held `seconds`."""
    assert target.http_url, "half_sent_http needs the status port"
    host, port = target.http_url.split("//")[1].rstrip("/").rsplit(":", 1)
    held = []
    try:
        for _ in range(n):
            try:
                s = socket.create_connection((host, int(port)), source_address=("127.0.0.2", 0))
            except OSError:  # refused at the connection limit: what it is for
                continue
            held.append(s)
            s.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\nAuthoriz")  # never the rest
        time.sleep(seconds)
    finally:
        for s in held:
            s.close()


def made_up_tokens(target: Target, seconds: float, threads: int = 4) -> None:
    """For `seconds`, `threads` callers each sending a new made-up token with every call.

    Each must be refused: UNAUTHENTICATED, or UNAVAILABLE while the hub is busy checking
    the others.
    """
    assert target.token, "made_up_tokens needs a server with authentication on"
    codes = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE)
    failures: list[str] = []
    deadline = time.monotonic() + seconds

    def flood() -> None:
        with grpc.insecure_channel(target.address) as channel:
            stub = pb_grpc.Mef3LabStub(channel)
            while time.monotonic() < deadline:
                md = target.metadata(token=uuid.uuid4().hex)
                try:
                    refused(
                        lambda md=md: stub.GetStats(pb.StatsRequest(), metadata=md, timeout=30),
                        codes,
                    )
                except AssertionError as exc:
                    failures.append(str(exc))
                    return

    callers = [threading.Thread(target=flood) for _ in range(threads)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert not failures, failures[:3]


#: An attack: ``attack(target, seconds)`` runs it once for about `seconds`.
Attack = Callable[[Target, float], None]


def attacks_for(target: Target) -> list[Attack]:
    """The attacks that apply to `target` (HTTP ones with a status port, tokens with auth)."""
    out: list[Attack] = [stalled_streams, bad_requests]
    if target.spares:
        out.append(made_up_ids)
    if target.http_url:
        out.append(half_sent_http)
    if target.token:
        out.append(made_up_tokens)
    return out


@dataclass
class Turns:
    """What `take_turns` did: turns run per attack, and what went wrong (an attack served)."""

    runs: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


def take_turns(
    target: Target, attackers: int, turn_s: float, stop: threading.Event
) -> tuple[list[threading.Thread], Turns]:
    """Start `attackers` threads that run `attacks_for(target)` in turn until `stop` is set.

    Attacker k starts at attack k, so that different attacks run at once.

    Parameters
    ----------
    target : Target
        The server and what the attacker knows.
    attackers : int
        Attackers at once.
    turn_s : float
        How long each attack lasts.
    stop : threading.Event
        Set it, then join the threads: each ends after its current turn.

    Returns
    -------
    (list of threading.Thread, Turns)
        The started threads, and their record (filled in as they go).
    """
    turns = Turns()
    lock = threading.Lock()
    attacks = attacks_for(target)

    def attacker(k: int) -> None:
        i = k
        while not stop.is_set():
            attack = attacks[i % len(attacks)]
            try:
                attack(target, turn_s)
            except Exception as exc:  # noqa: BLE001 - every failure is reported
                with lock:
                    turns.errors.append(f"{attack.__name__}: {exc!r}")
            with lock:
                turns.runs[attack.__name__] += 1
            i += 1

    threads = [
        threading.Thread(target=attacker, args=(k,), name=f"attacker-{k}", daemon=True)
        for k in range(attackers)
    ]
    for t in threads:
        t.start()
    return threads, turns
