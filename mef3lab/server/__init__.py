"""The mef3lab server: one engine of reader processes and a segment cache behind two gRPC APIs.

`app` assembles a running server (`Server`, `serve`), `config` holds its settings
(`ServerConfig`), `process` runs one in a child process (`ServerProcess`) and `discovery`
announces where it listens. The engine is in `core`, the gRPC services in `rpc`, the status
page and metrics in `http`, the reader processes in `pool`. See ``docs/serving.md``.
"""
