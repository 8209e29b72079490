"""The lab's clients reading a channel whose MEF segments store different conversion factors:
GetSignalSegment's float64 and GetSignalRange's float32 scale each sample by its own segment's
factor, sample for sample as a direct mef3io read, in segments that hold a change and not."""

from __future__ import annotations

import numpy as np
import pytest

from mef3lab.readers import open_reader

SEG_S = (
    15  # 3840 samples: the change at sample 10240 lies inside segment 2, the gap inside segment 5
)


@pytest.fixture(scope="module")
def direct(factor_change_recording):
    with open_reader(factor_change_recording, engine="mef3io") as r:
        yield r


def test_float64_segments_and_float32_ranges(make_client, factor_change_recording, direct):
    c = make_client("factor-change")
    path = str(factor_change_recording)
    assert not c.open(path).error_message
    assert (
        c.SetSignalSegmentSize(
            c.pb.SetSignalSegmentRequest(file_path=path, seconds=SEG_S)
        ).number_of_segments
        == 8
    )
    names = list(direct.info.names)  # the active channels: all
    seg = SEG_S * 256
    for index in range(8):
        rep = c.segment(path, index)
        assert not rep.error
        np.testing.assert_array_equal(
            rep.array, direct.read_index(names, index * seg, (index + 1) * seg, "float64")
        )
    g = direct.info.group_of(["gain"]).grid
    for k0, k1 in [(9000, 12_000), (12_000, 15_000), (19_000, 23_000)]:
        rep = c.range(path, ["gain"], g.uutc_of(k0), g.uutc_of(k1))
        assert not rep.error
        np.testing.assert_array_equal(rep.array, direct.read_index(["gain"], k0, k1, "float32"))
