"""An asyncio gRPC server on an event loop of its own thread, driven from synchronous code.

`Server` starts and stops it like the thread-pool server it replaced; the handlers' work
runs on the executor given (`ThreadedHandlers`), the replies are sent by the loop, and the
health service answers on the loop itself, whatever the handlers are doing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Executor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


class AioServer:
    """A `grpc.aio` server with the health service, on a thread of its own.

    Parameters
    ----------
    executor : concurrent.futures.Executor
        Where the handlers run; shut down when the server stops.
    interceptors : sequence of grpc.aio.ServerInterceptor
        In front of every service but health (see `ThreadedHandlers`).
    options : sequence of (str, object)
        gRPC channel options.
    """

    def __init__(
        self,
        executor: Executor,
        interceptors: Sequence[grpc.aio.ServerInterceptor],
        options: Sequence[tuple[str, Any]],
    ) -> None:
        self.executor = executor
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="mef3lab-grpc-loop", daemon=True
        )
        self._thread.start()
        self._stopped = threading.Event()
        self._server: grpc.aio.Server
        self._server, self.health = self._run(_make(list(interceptors), list(options)))
        self.add(health_pb2_grpc.add_HealthServicer_to_server, self.health)

    def _run(self, coro: Coroutine, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _call(self, fn: Callable, *args) -> Any:
        async def call():
            return fn(*args)

        return self._run(call())

    def add(self, register: Callable[[Any, Any], None], servicer: Any) -> None:
        """Add a service: ``register(servicer, server)``, as the generated ``add_..._to_server``."""
        self._call(register, servicer, self._server)

    def add_insecure_port(self, address: str) -> int:
        """Listen on `address` in plain text; the port (0: it cannot)."""
        return self._call(self._server.add_insecure_port, address)

    def add_secure_port(self, address: str, credentials: grpc.ServerCredentials) -> int:
        """Listen on `address` with TLS; the port (0: it cannot)."""
        return self._call(self._server.add_secure_port, address, credentials)

    def start(self, serving: Sequence[str] = ("",)) -> None:
        """Start serving; the health service reports `serving` names SERVING."""

        async def start():
            await self._server.start()
            for name in serving:
                await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

        self._run(start())

    def stop(self, grace: float | None) -> None:
        """Health says NOT_SERVING, calls drain for `grace` seconds, then everything stops.

        Stopping a stopped server does nothing.
        """
        if self._stopped.is_set():
            return

        async def stop():
            await self.health.enter_graceful_shutdown()
            await self._server.stop(grace)

        try:
            self._run(stop())
        finally:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10.0)
            if not self._thread.is_alive():
                self._loop.close()
            self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops or `timeout` passes; whether it has stopped."""
        return self._stopped.wait(timeout)


async def _make(interceptors, options) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """The server and its health service, made on the loop that will run them."""
    return grpc.aio.server(interceptors=interceptors, options=options), health.aio.HealthServicer()
