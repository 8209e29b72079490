"""`Connection` in this process: a misspelt MEF3LAB_SERVER is explained, not raised; reads stay
in-process.
"""

from __future__ import annotations

from mef3lab import sources as source
from mef3lab.jupyter.connection import NONE, Connection


def test_a_misspelt_server_address_is_explained_and_reads_stay_here():
    c = Connection({"MEF3LAB_SERVER": "not-an-address"}).connect()
    assert c.kind == NONE and c.address is None and source.get_default_address() is None
    assert "MEF3LAB_SERVER='not-an-address' is not a usable server address" in c.problem
    assert "unix:/path/to/socket" in c.summary() and "read in this process" in c.summary()
    assert c._repr_html_().startswith("<p>mef3lab: none")
