"""The wire: the generated gRPC modules of both APIs, and how Python values cross them (`wire`).

The generated modules live in ``_proto/`` and are never edited by hand (``make proto``
rewrites them from ``proto/``); they are handed on here under their own names, each imported
on first use: a process that loads the seed API's own generated modules (the lab's clients)
must not also load ours, whose message names are the same.
"""

import importlib
from types import ModuleType

__all__ = ["gRPCMef3Server_pb2", "gRPCMef3Server_pb2_grpc", "mef3lab_pb2", "mef3lab_pb2_grpc"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}._proto.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
