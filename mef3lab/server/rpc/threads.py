"""The services' handlers on a thread pool behind an asyncio gRPC server: no client holds a thread.

The services are plain synchronous handlers. `ThreadedHandlers` runs each step of one on a
thread (a unary call's work, the making of one stream message) and sends replies from the
event loop, so a client that stops reading a stream holds no thread, only a coroutine and
the one message it has not taken, and only until the stream's write deadline. It also
checks tokens (on the pool: a slow hub delays only those waiting for it) and caps the
calls one identity has in flight. The health service, asynchronous itself, bypasses all of
it. Why: docs/serving.md ("A shared server").
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import grpc

from ...errors import Mef3LabError
from ...protocol.wire import ERROR_KEY
from ..core.inflight import BytesInFlight, attach
from .auth import (
    OPEN_PREFIXES,
    Authenticator,
    admit,
    admit_known,
    bearer_token,
    identity_of,
    running_as,
)

_END = object()


class SyncContext:
    """What a synchronous handler sees of an asyncio call: the `grpc.ServicerContext` it uses.

    Metadata and the peer are read when the call starts; trailing metadata and an abort are
    kept and applied by the event loop when the handler's step returns.

    Parameters
    ----------
    context : grpc.aio.ServicerContext
        The call.
    """

    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._metadata = tuple(context.invocation_metadata() or ())
        self._peer = context.peer()
        self.trailing: tuple = ()
        self.aborted: tuple[grpc.StatusCode, str] | None = None
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self._done = False

    def invocation_metadata(self) -> tuple:
        """The call's metadata, as the client sent it."""
        return self._metadata

    def peer(self) -> str:
        """The client's address (``ipv4:1.2.3.4:5678``, ``unix:``...)."""
        return self._peer

    def set_trailing_metadata(self, metadata) -> None:
        """Send `metadata` with the call's status."""
        self.trailing = tuple(metadata)

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        """End the call with `code` and `details` (raises, as gRPC's own `abort` does)."""
        if self.aborted is None:
            self.aborted = (code, details)
        raise _Aborted(details)

    def add_callback(self, callback: Callable[[], None]) -> bool:
        """Call `callback` when the call ends; False (not added) when it has ended already."""
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return True
        return False

    def ended(self) -> None:
        """The call ended (the event loop's done-callback): run the callbacks."""
        with self._lock:
            self._done, callbacks = True, list(self._callbacks)
        for callback in callbacks:
            callback()


class _Aborted(Exception):
    """Raised by `SyncContext.abort`, as gRPC's own abort raises."""


class ThreadedHandlers(grpc.aio.ServerInterceptor):
    """Every synchronous handler on `executor`, its replies sent from the event loop.

    Tokens are checked before: a token the authenticator knows at once on the loop, one
    it must ask about (the hub) on threads of their own.

    Parameters
    ----------
    executor : concurrent.futures.Executor
        Where handlers run.
    authenticator : Authenticator or None
        Checks each call's bearer token (None: no authentication).
    write_timeout_s : float
        A stream message its client has not taken after this long ends the stream
        (DEADLINE_EXCEEDED); 0: never.
    max_calls_per_client : int
        Calls one identity (the authenticated user, else the peer's host) may have in
        flight; more are refused (RESOURCE_EXHAUSTED). 0: no limit.
    redact : callable or None
        ``redact(text)``: an error message without the server's own paths (served roots:
        `ServedRoots.redact`); None: messages as they are.
    bytes_in_flight : BytesInFlight or None
        The reply bytes each identity's calls hold: each call's reads are charged to it
        (`mef3lab.server.core.inflight`) until the call ends; None: not counted.
    """

    def __init__(
        self,
        executor: Executor,
        authenticator: Authenticator | None = None,
        write_timeout_s: float = 60.0,
        max_calls_per_client: int = 0,
        redact: Callable[[str], str] | None = None,
        bytes_in_flight: BytesInFlight | None = None,
    ) -> None:
        self.executor = executor
        self.bytes_in_flight = bytes_in_flight
        self.authenticator = authenticator
        self.write_timeout_s = write_timeout_s
        self.max_calls_per_client = max_calls_per_client
        self.redact = redact
        self._in_flight: Counter[str] = Counter()
        self._checks = ThreadPoolExecutor(8, thread_name_prefix="mef3lab-auth")

    async def intercept_service(self, continuation, handler_call_details):
        """The method's handler on the pool; the (asynchronous) health service's as it is."""
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_PREFIXES):
            return handler
        token = bearer_token(handler_call_details.invocation_metadata)
        if handler.response_streaming:
            behavior = handler.unary_stream

            async def stream(request, context):
                await self._call(token, context, self._stream, behavior, request)

            make = grpc.unary_stream_rpc_method_handler
        else:
            behavior = handler.unary_unary

            async def stream(request, context):
                return await self._call(token, context, self._unary, behavior, request)

            make = grpc.unary_unary_rpc_method_handler
        return make(
            stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _call(self, token: str, context, run, behavior, request) -> Any:
        """Admit the call, count it against its identity, and `run` it as its caller."""
        sync = SyncContext(context)
        context.add_done_callback(lambda _call: sync.ended())
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        identity = identity_of(sync.peer(), None)
        if self.authenticator is not None:
            try:
                # A token known already is answered here; one to ask about waits on the
                # checks' own threads, so a flood of them takes none of the work's.
                caller = admit_known(self.authenticator, token) or await loop.run_in_executor(
                    self._checks, admit, self.authenticator, token
                )
            except Mef3LabError as exc:
                await _abort(context, exc)
            ctx = running_as(caller)
            identity = identity_of(sync.peer(), caller)
        if self.max_calls_per_client and self._in_flight[identity] >= self.max_calls_per_client:
            context.set_trailing_metadata(((ERROR_KEY, "Mef3LabError"),))
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"you have {self._in_flight[identity]} calls in progress on this server, its "
                "limit per user; wait for some to finish",
            )
        self._in_flight[identity] += 1
        held = None
        if self.bytes_in_flight is not None:
            held = self.bytes_in_flight.call(identity)
            ctx.run(attach, held)  # the call's reads are charged to it (engine.read_index)
        try:
            return await run(loop, ctx, sync, context, behavior, request)
        finally:
            if held is not None:
                held.release()
            self._in_flight[identity] -= 1
            if not self._in_flight[identity]:
                del self._in_flight[identity]

    async def _unary(self, loop, ctx, sync, context, behavior, request) -> Any:
        try:
            reply = await loop.run_in_executor(self.executor, ctx.run, behavior, request, sync)
        except _Aborted:
            reply = None
        await self._finish(context, sync)
        return self._redacted(reply)

    async def _stream(self, loop, ctx, sync, context, behavior, request) -> None:
        replies: list[Iterator] = []  # the handler's stream, once its first step made it
        step: Future | None = None
        ended = False
        try:
            while not ended:
                step = self.executor.submit(ctx.run, _step, replies, behavior, request, sync)
                try:
                    reply = await asyncio.wrap_future(step)
                except _Aborted:
                    ended = True
                    break
                if reply is _END:
                    ended = True
                    break
                await self._write(context, self._redacted(reply))
        finally:
            if not ended:
                # The last step may still run (the call was cancelled): close the stream after.
                self.executor.submit(_close_after, step, ctx, replies)
        await self._finish(context, sync)

    async def _finish(self, context, sync: SyncContext) -> None:
        """Apply what the handler set: trailing metadata, and its abort if it aborted."""
        if sync.trailing:
            context.set_trailing_metadata(sync.trailing)
        if sync.aborted is not None:
            code, details = sync.aborted
            await context.abort(code, self.redact(details) if self.redact else details)

    def _redacted(self, reply: Any) -> Any:
        """`reply` with the server's paths taken out of its `error_message` (the lab's API)."""
        if self.redact is not None and getattr(reply, "error_message", ""):
            reply.error_message = self.redact(reply.error_message)
        return reply

    async def _write(self, context, reply) -> None:
        timeout = self.write_timeout_s or None
        try:
            async with asyncio.timeout(timeout):  # no task of its own, unlike wait_for
                await context.write(reply)
        except TimeoutError:
            context.set_trailing_metadata(((ERROR_KEY, "Mef3LabError"),))
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"the reply stream was not read for {self.write_timeout_s:g} s: ended so that "
                "it holds no server memory; read streams as they arrive",
            )


async def _abort(context, exc: Mef3LabError) -> None:
    """End the call with the status of `exc` (authentication failed, or could not be checked)."""
    context.set_trailing_metadata(((ERROR_KEY, type(exc).__name__),))
    await context.abort(getattr(grpc.StatusCode, exc.grpc_status), str(exc))


def _step(replies: list[Iterator], behavior, request, sync: SyncContext) -> Any:
    """The stream's next message, or `_END`; its first step also makes the stream."""
    if not replies:
        replies.append(behavior(request, sync))
    return next(replies[0], _END)


def _close_after(step: Future | None, ctx: contextvars.Context, replies: list[Iterator]) -> None:
    if step is not None and not step.cancelled():
        step.exception()  # waits for it; what it raised was the stream's to handle
    close = getattr(replies[0], "close", None) if replies else None
    if close is not None:
        ctx.run(close)
