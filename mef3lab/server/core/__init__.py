"""The server's core: open recordings, the segment cache, prefetch, and what a read returns.

Nothing here knows gRPC or HTTP; the services in `rpc` and `http` call the `Engine`.
"""
