"""Which dask scheduler computes a recording's arrays when nobody chose one.

On every compute without a chosen scheduler, dask looks for a dask.distributed client,
importing dask.distributed to do so: most of a second of a first look, for a client that
cannot exist when dask.distributed was never imported. A read of one chunk (a page, a
jump) is computed on the calling thread: handing a single task to a pool thread and
waiting for it costs more than the task itself on a busy machine. docs/xarray.md
("Schedulers").
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Mapping
from typing import Any

#: A graph of at most this many keys (one chunk's task and the array it reads) is computed
#: on the calling thread.
SMALL_GRAPH_KEYS = 2


def local_get(dsk: Mapping[Hashable, Any], keys: Any, **kwargs: Any) -> Any:
    """The threaded scheduler of dask, or its synchronous one for a graph of a single chunk.

    Parameters
    ----------
    dsk : mapping or dask expression
        The (optimized) task graph, or what dask hands a scheduler that holds one.
    keys : object
        The keys to compute, as dask passes them.
    **kwargs
        Passed to the scheduler (callbacks, ``num_workers`` ...).

    Returns
    -------
    object
        The computed values, as `dask.threaded.get` returns them.
    """
    import dask.local
    import dask.threaded

    if not isinstance(dsk, Mapping):  # an expression: its graph (what both schedulers run)
        dsk = dsk.__dask_graph__()
    if len(dsk) <= SMALL_GRAPH_KEYS:
        return dask.local.get_sync(dsk, keys, **kwargs)
    return dask.threaded.get(dsk, keys, **kwargs)


def local_unless_distributed() -> None:
    """Compute on `local_get`, unless a distributed client may be in use.

    Only when no scheduler was chosen and dask.distributed was never imported, so no
    client exists; a `distributed.Client` made later sets itself as dask's scheduler, as
    it always does, and computes go to it.
    """
    if "distributed" in sys.modules:
        return
    import dask

    if dask.config.get("scheduler", None) is None:
        # The function itself: dask looks for a client even for a scheduler named "threads".
        dask.config.set(scheduler=local_get)
