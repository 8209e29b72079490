"""Served roots on a real folder tree: what opens, what is refused, and that a refusal never
says whether a path exists.
"""

from __future__ import annotations

import pytest

from mef3lab.errors import PathNotServedError, RecordingNotFoundError
from mef3lab.server.core.roots import Entry, ServedRoots


@pytest.fixture
def tree(tmp_path):
    """roots eeg/ (sub-01.mefd, sub/sub-02.mefd, a link out, a link in) and ieeg/;
    secret/ outside both.
    """
    eeg, ieeg, secret = tmp_path / "eeg", tmp_path / "ieeg", tmp_path / "secret"
    for d in (
        eeg / "sub-01.mefd",
        eeg / "sub" / "sub-02.mefd",
        ieeg / "pt1.mefd",
        secret / "leak.mefd",
        eeg / ".hidden",
    ):
        d.mkdir(parents=True)
    (eeg / "notes.txt").write_text("not a session")
    (eeg / "out").symlink_to(secret)
    (eeg / "out.mefd").symlink_to(secret / "leak.mefd")
    (eeg / "dangling.mefd").symlink_to(secret / "missing.mefd")
    (eeg / "alias.mefd").symlink_to(eeg / "sub-01.mefd")
    return tmp_path


def refused(roots: ServedRoots, name, groups=None) -> str:
    with pytest.raises(PathNotServedError) as err:
        roots.resolve(name, groups)
    return str(err.value)


def test_names_relative_to_a_root_and_absolute_inside_one(tree):
    roots = ServedRoots.parse([str(tree / "eeg"), f"deep={tree / 'ieeg'}"])
    assert roots.resolve("eeg/sub-01.mefd") == str(tree / "eeg" / "sub-01.mefd")
    assert roots.resolve("eeg/sub/sub-02.mefd") == str(tree / "eeg" / "sub" / "sub-02.mefd")
    assert roots.resolve("deep/pt1.mefd") == str(tree / "ieeg" / "pt1.mefd")
    assert roots.resolve(str(tree / "ieeg" / "pt1.mefd")) == str(tree / "ieeg" / "pt1.mefd")
    assert roots.resolve("eeg/alias.mefd") == str(
        tree / "eeg" / "sub-01.mefd"
    )  # a link that stays inside
    assert roots.resolve("eeg/not-yet.mefd") == str(
        tree / "eeg" / "not-yet.mefd"
    )  # inside: opening says not found
    refused(roots, "sub-01.mefd")  # with two roots, a plain relative name names none


def test_plain_relative_names_with_one_root(tree):
    roots = ServedRoots.parse([f"data={tree / 'eeg'}"])
    assert roots.resolve("sub-01.mefd") == str(tree / "eeg" / "sub-01.mefd")
    assert roots.resolve("data/sub-01.mefd") == str(tree / "eeg" / "sub-01.mefd")


@pytest.mark.parametrize(
    "name",
    [
        "eeg/../secret/leak.mefd",
        "../secret/leak.mefd",
        "eeg/sub/../../secret",
        "..",
        "eeg/%2e%2e/secret/leak.mefd",
        "eeg/%2E%2E%2Fsecret",
        "eeg/sub-01.mefd%00",
        "eeg/sub-01.mefd\0.txt",
        "eeg/out/leak.mefd",
        "eeg/out.mefd",
        "eeg/dangling.mefd",
        "/etc/passwd",
        "/",
        "",
    ],
)
def test_escapes_are_refused(tree, name):
    refused(ServedRoots.parse([str(tree / "eeg")]), name)


def test_absolute_paths_outside_and_traversals_refused_alike_whether_or_not_they_exist(tree):
    roots = ServedRoots.parse([str(tree / "eeg")])
    there = refused(roots, str(tree / "secret" / "leak.mefd"))
    missing = refused(roots, str(tree / "secret" / "nothing.mefd"))
    assert there.replace("leak", "X") == missing.replace(
        "nothing", "X"
    )  # the same words either way
    assert str(tree / "secret") not in refused(
        roots, "eeg/out/leak.mefd"
    )  # never the resolved target
    refused(roots, str(tree / "eeg" / "out" / "leak.mefd"))  # absolute, through a link that leaves


def test_group_limited_roots(tree):
    roots = ServedRoots.parse(
        [str(tree / "eeg"), f"ieeg={tree / 'ieeg'}"], ["ieeg=neuro", "ieeg=admins"]
    )
    assert roots.resolve("ieeg/pt1.mefd", {"neuro"}) == str(tree / "ieeg" / "pt1.mefd")
    assert roots.resolve("ieeg/pt1.mefd", {"admins", "x"})
    outsider = refused(roots, "ieeg/pt1.mefd", {"students"})
    assert outsider == refused(roots, "nonroot/pt1.mefd", {"students"}).replace("nonroot", "ieeg")
    refused(roots, str(tree / "ieeg" / "pt1.mefd"), set())
    assert roots.resolve("eeg/sub-01.mefd", set())  # an unlimited root is everyone's
    assert [e.name for e in roots.list("", {"students"})] == ["eeg"]
    assert [e.name for e in roots.list("", {"neuro"})] == ["eeg", "ieeg"]


def test_listing_shows_sessions_and_folders_inside_only(tree):
    roots = ServedRoots.parse([str(tree / "eeg")])
    assert roots.list() == [Entry("eeg", False)]
    assert roots.list("eeg") == [
        Entry("eeg/alias.mefd", True),
        Entry("eeg/sub", False),
        Entry("eeg/sub-01.mefd", True),
    ]  # no file, hidden folder or link out
    assert roots.list("eeg/sub/") == [Entry("eeg/sub/sub-02.mefd", True)]
    assert roots.list("sub") == [Entry("eeg/sub/sub-02.mefd", True)]  # one root: plain relative
    with pytest.raises(RecordingNotFoundError):
        roots.list("eeg/nothing")
    with pytest.raises(PathNotServedError):
        roots.list("eeg/out")


@pytest.mark.parametrize(
    "specs, groups, message",
    [
        (["a=/nonexistent/folder"], [], "not a folder"),
        (["{t}/eeg", "{t}/eeg"], [], "both named eeg"),
        (["x/y={t}/eeg"], [], "plain folder name"),
        (["{t}/eeg"], ["other=g"], "no served root is named 'other'"),
        (["{t}/eeg"], ["eeg"], "NAME=GROUP"),
    ],
)
def test_bad_root_settings_are_explained(tree, specs, groups, message):
    with pytest.raises(ValueError, match=message):
        ServedRoots.parse([s.format(t=tree) for s in specs], groups)


def test_no_roots_means_any_path():
    assert not ServedRoots.parse([])


def test_confining_some_channels_checks_their_folders(tree):
    roots = ServedRoots.parse([str(tree / "eeg")])
    session = tree / "eeg" / "sub-01.mefd"
    for name in ("ch001", "ch002"):
        (session / f"{name}.timd" / f"{name}-000000.segd").mkdir(parents=True)
    (tree / "secret" / "leak.mefd" / "ch002.timd").mkdir()
    roots.confine(str(session))
    (session / "ch002.timd" / "ch002-000000.segd").rmdir()
    (session / "ch002.timd").rmdir()
    (session / "ch002.timd").symlink_to(tree / "secret" / "leak.mefd" / "ch002.timd")
    roots.confine(str(session), ["ch001"])  # not the swapped one: one folder walked
    for channels in (["ch002"], ["ch001", "ch002"], ["no-such-folder"], None):
        with pytest.raises(PathNotServedError, match="ch002.timd in this recording is a link"):
            roots.confine(str(session), channels)
    with pytest.raises(PathNotServedError):  # a session that is itself a link out
        roots.confine(str(tree / "eeg" / "out.mefd"))
