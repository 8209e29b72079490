"""What several scroller tests compute the same way."""

from __future__ import annotations

import comm
import numpy as np


def column_minmax(x: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of each of `columns` slices ``[c*n//columns, (c+1)*n//columns)`` of a row.

    NaN is ignored. Written out here on purpose, not with mef3lab's own decimation.
    """
    n = x.size
    lo, hi = np.full(columns, np.nan, np.float32), np.full(columns, np.nan, np.float32)
    for c in range(columns):
        part = x[c * n // columns : (c + 1) * n // columns]
        part = part[~np.isnan(part)]
        if part.size:
            lo[c], hi[c] = part.min(), part.max()
    return lo, hi


class Wire(comm.DummyComm):
    """A comm that keeps each state update it carries: ``updates``, a list of state dicts."""

    def __init__(self, *args, **kwargs) -> None:
        self.updates: list[dict] = []
        super().__init__(*args, **kwargs)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys) -> None:
        if msg_type == "comm_msg" and data and data.get("method") == "update":
            state = data["state"]
            for path, buffer in zip(data.get("buffer_paths", []), buffers or [], strict=True):
                *parents, last = path
                node = state
                for key in parents:
                    node = node[key]
                node[last] = buffer
            self.updates.append(state)


def sent(wire: Wire) -> list[tuple[dict, list]]:
    """What went through `wire` (a widget's ``comm``), in order: ``({"type": "page" |
    "overview", ...}, [data])`` for each page (the `reply` trait) and bar (``overview_bar``)."""
    out = []
    for state in list(wire.updates):
        for trait, kind in (("reply", "page"), ("overview_bar", "overview")):
            if state.get(trait):
                content = dict(state[trait])
                data = content.pop("data")
                out.append(({"type": kind, **content}, [data]))
    return out


class Replies:
    """The replies one widget sent, in order (pages, and the overview bar once per width)."""

    def __init__(self, widget) -> None:
        self.widget = widget
        self.wire = widget.comm  # closing the widget drops its comm

    @property
    def messages(self) -> list:
        """Pages and bars as sent (content, buffers), in order."""
        return sent(self.wire)

    def key(self, key: str, shift: bool = False) -> None:
        """A key press in the browser, as the front end reports it."""
        self.widget._handle_custom_msg({"type": "key", "key": key, "shift": shift}, [])

    @property
    def pages(self) -> list:
        """The page replies (content, buffers), without the overview bar."""
        return [m for m in self.messages if m[0]["type"] == "page"]

    def last(self) -> dict:
        """The newest reply (after waiting for the newest request), traces decoded.

        ``{"traces": {name: trace dict + values}, ...}``.
        """
        assert self.widget.wait(30), "the page never arrived"
        content, buffers = self.pages[-1]
        assert content["id"] == self.widget.view_id, (
            "the newest reply is not for the newest request"
        )
        data = np.frombuffer(buffers[0], np.float32)
        out = {
            "start": content["start"],
            "seconds": content["seconds"],
            "id": content["id"],
            "state": content["state"],
            "traces": {},
        }
        for tr in content["traces"]:
            size = tr["n"] * (2 if tr["kind"] == "minmax" else 1)
            out["traces"][tr["name"]] = {**tr, "values": data[tr["offset"] : tr["offset"] + size]}
        return out
