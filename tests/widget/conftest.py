"""Scroller fixtures: widgets on the shared recordings, what they send to the front end captured.

`Wire` stands in for the kernel's comm (``comm.create_comm`` is the hook for that): it keeps
every state update a front end would get, buffers put back at their paths, from the widget's
opening on. `Replies` reads a widget's pages and overview bars from them, decoded into arrays
per trace. Messages from the front end go in through ipywidgets' own entry point,
``widget._handle_custom_msg(content, buffers)``, as a comm delivers them.
"""

from __future__ import annotations

import comm
import pytest
from _widget_helpers import Replies, Wire

import mef3lab
from mef3lab.widget import Scroller


@pytest.fixture
def wire(monkeypatch):
    """Every widget made in the test talks through a `Wire`."""
    monkeypatch.setattr(comm, "create_comm", Wire)


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
