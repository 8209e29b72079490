"""Served roots: the folders a shared server opens recordings from, and how clients name them.

`mef3lab serve --root /data/epilepsy --root ieeg=/data/ieeg` serves only sessions under
those folders, named as ``ROOT/path`` (or by an absolute path inside a root). A traversal
is refused on the name as written, the resolved path must stay inside its root (the most
specific root that holds it decides who may read it), every file of a session too
(`check_session_tree`), and every refusal is the same `PathNotServedError`, whether or not
the path exists. The rules in full are in docs/server.md ("Served roots"). Without roots a
server opens any path it can.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from ...errors import CorruptDataError, PathNotServedError, RecordingNotFoundError

SESSION_SUFFIX = ".mefd"


@dataclass(frozen=True)
class Root:
    """One served folder.

    Parameters
    ----------
    name : str
        The name clients use for it.
    path : str
        Its resolved path (every symlink followed).
    groups : frozenset of str
        The hub groups whose members may read it (empty: every user the server lets in).
    """

    name: str
    path: str
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Entry:
    """One line of a listing.

    Parameters
    ----------
    name : str
        What to pass to open, or to list further (``NAME/sub/x.mefd``).
    recording : bool
        True for a MEF 3.0 session (a .mefd folder), False for a folder to list further.
    """

    name: str
    recording: bool


class ServedRoots:
    """Maps the names clients send to real paths inside the roots, refusing everything else.

    An empty `ServedRoots` is false: the server then serves any path it can read.

    Parameters
    ----------
    roots : sequence of Root
        The served folders.

    Raises
    ------
    ValueError
        When two roots have the same name.
    """

    def __init__(self, roots: Sequence[Root]) -> None:
        names = [r.name for r in roots]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(
                f"two served roots are both named {', '.join(duplicated)}; "
                "name them: --root NAME=DIR"
            )
        self.roots = {r.name: r for r in roots}

    @classmethod
    def parse(cls, specs: Sequence[str], allow_groups: Sequence[str] = ()) -> ServedRoots:
        """The roots of ``--root DIR`` / ``--root NAME=DIR`` and ``--allow-group NAME=GROUP``.

        Parameters
        ----------
        specs : sequence of str
            ``--root`` values: a folder (named after its last component) or ``NAME=DIR``.
        allow_groups : sequence of str
            ``--allow-group`` values, ``NAME=GROUP``: root NAME is served to GROUP only
            (several values for one root: to any of those groups).

        Returns
        -------
        ServedRoots

        Raises
        ------
        ValueError
            For a name that is not one plain folder name, a folder that does not exist,
            or a group for a root that is not served.
        """
        named: list[tuple[str, str]] = []
        for spec in specs:
            name, sep, folder = spec.partition("=")
            if not sep:
                name, folder = os.path.basename(os.path.normpath(spec)), spec
            if not name or "/" in name or name in (".", ".."):
                raise ValueError(f"--root {spec!r}: a root's name must be one plain folder name")
            real = os.path.realpath(os.path.expanduser(folder))
            if not os.path.isdir(real):
                raise ValueError(f"--root {spec!r}: {folder} is not a folder")
            named.append((name, real))
        groups: dict[str, set[str]] = {}
        for spec in allow_groups:
            name, sep, group = spec.partition("=")
            if not sep or not group:
                raise ValueError(f"--allow-group {spec!r}: write NAME=GROUP")
            if name not in dict(named):
                raise ValueError(f"--allow-group {spec!r}: no served root is named {name!r}")
            groups.setdefault(name, set()).add(group)
        return cls([Root(n, p, frozenset(groups.get(n, ()))) for n, p in named])

    def __bool__(self) -> bool:
        return bool(self.roots)

    def visible(self, groups: Collection[str] | None) -> list[Root]:
        """The roots a caller in `groups` may read (None: a caller without groups).

        Parameters
        ----------
        groups : collection of str or None
            The caller's hub groups.

        Returns
        -------
        list of Root
        """
        mine = set(groups or ())
        return [r for r in self.roots.values() if not r.groups or r.groups & mine]

    def resolve(self, name: str, groups: Collection[str] | None = None) -> str:
        """The real path `name` stands for, if it lies inside a root this caller may read.

        Parameters
        ----------
        name : str
            The name as the client wrote it: ``ROOT/path``, plainly relative with a single
            root, or absolute.
        groups : collection of str or None
            The caller's hub groups.

        Returns
        -------
        str
            The resolved path.

        Raises
        ------
        mef3lab.errors.PathNotServedError
            For anything outside the roots this caller may read, and for every name that
            tries to get out (``..``, a NUL byte, a percent escape).
        """
        return self._locate(name, groups)[1]

    def confine(self, path: str, channels: Collection[str] | None = None) -> None:
        """Check that the files and folders of the session `path` lie inside its root.

        Made before a recording is first opened, and by the reader processes right before
        each read (they are given this object), since a link may change while it is open.

        Parameters
        ----------
        path : str
            The session (links in it are resolved here).
        channels : collection of str or None
            Check only these channels' folders (``NAME.timd``); None, or a channel without
            such a folder: every folder and file of the session.

        Raises
        ------
        mef3lab.errors.PathNotServedError
            When the session is not inside a root, or a channel, segment or file of it is
            a link that leaves its root.
        mef3lab.errors.CorruptDataError
            When one is not a regular file or folder (a FIFO, a device).
        """
        real = os.path.realpath(path)
        root = self._owner(real)
        if root is None:
            raise self._denied(os.path.basename(path))
        parts = None if channels is None else {f"{c}.timd" for c in channels}
        check_session_tree(real, root.path, parts)

    def redact(self, text: str) -> str:
        """`text` with every root's real path written as its name, as clients name it.

        Parameters
        ----------
        text : str
            An error message, say.

        Returns
        -------
        str
            ``/data/ieeg/sub-01.mefd: wrong password`` as ``ieeg/sub-01.mefd: wrong password``.
        """
        for root in sorted(self.roots.values(), key=lambda r: -len(r.path)):
            # The root itself or below it; never a longer name that starts the same.
            text = re.sub(re.escape(root.path.rstrip("/")) + r"(?=/|[\s'\":,)]|$)", root.name, text)
        return text

    def list(self, folder: str = "", groups: Collection[str] | None = None) -> list[Entry]:
        """The roots (`folder` empty), or the sessions and folders directly in `folder`.

        Hidden entries, plain files and links that lead out of the root are not listed.

        Parameters
        ----------
        folder : str
            A folder as a client names it (see `resolve`).
        groups : collection of str or None
            The caller's hub groups.

        Returns
        -------
        list of Entry

        Raises
        ------
        mef3lab.errors.PathNotServedError
            As `resolve`.
        mef3lab.errors.RecordingNotFoundError
            When `folder` is not a folder.
        """
        if not folder.strip("/"):
            return [Entry(r.name, _is_session(r.path)) for r in self.visible(groups)]
        root, real = self._locate(folder, groups)
        if not os.path.isdir(real):
            raise RecordingNotFoundError(f"{folder} is not a folder")
        relative = os.path.relpath(real, root.path)
        prefix = root.name if relative == "." else posixpath.join(root.name, relative)
        out = []
        for child in sorted(os.listdir(real)):
            target = os.path.realpath(os.path.join(real, child))
            if child.startswith(".") or not _inside(target, root.path) or not os.path.isdir(target):
                continue  # hidden, escaping the root, or not a folder: not shown
            out.append(Entry(posixpath.join(prefix, child), _is_session(child)))
        return out

    def _locate(self, name: str, groups: Collection[str] | None) -> tuple[Root, str]:
        if (
            not isinstance(name, str)
            or not name
            or "\0" in name
            or unquote(name) != name
            or ".." in name.split("/")
        ):
            raise self._denied(name)
        if os.path.isabs(name):
            real = os.path.realpath(name)
        else:
            first, _, rest = name.partition("/")
            if first in self.roots:
                named, relative = self.roots[first], rest
            elif len(self.roots) == 1:
                named, relative = next(iter(self.roots.values())), name
            else:
                raise self._denied(name)
            real = os.path.realpath(os.path.join(named.path, relative))
            if not _inside(real, named.path):
                raise self._denied(name)
        # Roots may nest (all=/data, ieeg=/data/ieeg): the innermost one decides.
        root = self._owner(real)
        if root is None or root not in self.visible(groups):
            raise self._denied(name)
        return root, real

    def _owner(self, real: str) -> Root | None:
        """The most specific root that holds `real` (None: none does)."""
        holding = [r for r in self.roots.values() if _inside(real, r.path)]
        return max(holding, key=lambda r: len(r.path), default=None)

    def _denied(self, name: object) -> PathNotServedError:
        return PathNotServedError(
            f"{name!r} is not in a folder this server serves you; name a recording as ROOT/path "
            "(Mef3Client.list_recordings() lists them)"
        )


def check_session_tree(
    path: str, root: str | None = None, parts: Collection[str] | None = None
) -> None:
    """Check a session folder's files before a reader opens or reads it.

    Every entry (channels, segments, their files) must be a folder or a regular file (a
    FIFO or device would hang or mislead a reader), and, with a `root`, every link in it
    must lead to somewhere inside `root`. Only links are resolved, so a walk costs one
    directory read per folder.

    Parameters
    ----------
    path : str
        The session's resolved path.
    root : str or None
        The resolved root it must stay inside (None: any place).
    parts : collection of str or None
        Check only these entries of the session folder, and what they hold (None, or one of
        them missing: every entry).

    Raises
    ------
    mef3lab.errors.PathNotServedError
        A link that leaves `root`.
    mef3lab.errors.CorruptDataError
        An entry that is neither a folder nor a regular file.
    """
    if not os.path.isdir(path):
        return  # not a folder: the reader says what it is
    seen, todo = {path}, [path]
    while todo:
        folder = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable: the reader reports it for the channel concerned
        if folder == path and parts is not None:
            wanted = [e for e in entries if e.name in parts]
            entries = wanted if len(wanted) == len(set(parts)) else entries
        for entry in entries:
            where = entry.path
            if entry.is_symlink():
                where = os.path.realpath(entry.path)
                if root is not None and not _inside(where, root):
                    raise PathNotServedError(
                        f"{os.path.relpath(entry.path, path)} in this recording is a link "
                        "that leads out of the folders this server serves: refused"
                    )
            try:
                mode = (
                    os.stat(where).st_mode
                    if where != entry.path
                    else entry.stat(follow_symlinks=False).st_mode
                )
            except OSError:
                continue  # a dangling link or a vanished file: the reader reports it
            if stat.S_ISDIR(mode):
                if where not in seen:
                    seen.add(where)
                    todo.append(where)
            elif not stat.S_ISREG(mode):
                raise CorruptDataError(
                    f"{os.path.relpath(entry.path, path)} in this recording is not a regular "
                    "file (a pipe or a device): refused"
                )


def _inside(real: str, root: str) -> bool:
    return real == root or real.startswith(root.rstrip("/") + "/")


def _is_session(name: str) -> bool:
    return name.endswith(SESSION_SUFFIX)


__all__ = ["Entry", "Root", "ServedRoots", "SESSION_SUFFIX", "check_session_tree"]
