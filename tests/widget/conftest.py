"""Scroller fixtures: widgets on the shared recordings, what they send to the front end captured.

`Wire` stands in for the kernel's comm (``comm.create_comm`` is the hook for that): it keeps
every state update a front end would get, buffers put back at their paths, from the widget's
opening on. `Replies` reads a widget's pages and overview bars from them, decoded into arrays
per trace. Messages from the front end go in through ipywidgets' own entry point,
``widget._handle_custom_msg(content, buffers)``, as a comm delivers them.
"""

from __future__ import annotations

import comm
import numpy as np
import pytest
from _widget_helpers import Wire, sent

import mef3lab
from mef3lab.widget import Scroller


@pytest.fixture
def wire(monkeypatch):
    """Every widget made in the test talks through a `Wire`."""
    monkeypatch.setattr(comm, "create_comm", Wire)


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


@pytest.fixture
def scroll(wire):
    """`scroll(path_or_rec, **kwargs)` -> (widget, Replies).

    Widgets and recordings are closed after the test.
    """
    made = []

    def make(what, address=None, **kwargs):
        rec = mef3lab.open_recording(what, address=address) if not hasattr(what, "mef3") else what
        widget = Scroller(rec, **kwargs)
        made.append((widget, rec))
        widget.wait(30)
        return widget, Replies(widget)

    yield make
    for widget, rec in made:
        widget.close()
        rec.close()
