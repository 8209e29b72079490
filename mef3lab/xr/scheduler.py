"""Which dask scheduler computes a recording's arrays when nobody chose one.

On every compute without a chosen scheduler, dask looks for a dask.distributed client,
importing dask.distributed to do so: most of a second of a first look, for a client that
cannot exist when dask.distributed was never imported. docs/xarray.md ("Schedulers").
"""

from __future__ import annotations

import sys


def local_unless_distributed() -> None:
    """Compute on dask's threaded scheduler, unless a distributed client may be in use.

    Only when no scheduler was chosen and dask.distributed was never imported, so no
    client exists; a `distributed.Client` made later sets itself as dask's scheduler, as
    it always does, and computes go to it.
    """
    if "distributed" in sys.modules:
        return
    import dask
    import dask.threaded

    if dask.config.get("scheduler", None) is None:
        # The function itself: dask looks for a client even for a scheduler named "threads".
        dask.config.set(scheduler=dask.threaded.get)
