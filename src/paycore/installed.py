"""The entry points installed distributions declare, read once per state of the installation.

Reading every distribution's metadata costs about 10 ms, which a process that
builds a flow per event loop (Django's async views under WSGI) would otherwise
pay per request. Like Python's own import system, which lists a folder again
once it changes, a scan is kept until ``sys.path`` or the distributions'
metadata in one of its folders change (:func:`_path_stamps`): a ``pip
install``, ``upgrade`` or ``uninstall`` into a folder on the path, a legacy
editable install rewriting its ``entry_points.txt``, a zip on the path
replaced. Other files coming and going beside them change nothing.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeAlias

from attrs import frozen

if TYPE_CHECKING:
    import importlib.metadata

__all__ = ["Declared", "PathStamp", "declared_entry_points"]


def _distribution_key(entry_point: importlib.metadata.EntryPoint) -> str:
    """Who declared ``entry_point``: its distribution's normalized name, or its value if unknown."""
    name = getattr(getattr(entry_point, "dist", None), "name", None)
    if not isinstance(name, str) or not name:
        return f"module {entry_point.value}"
    return re.sub(r"[-_.]+", "-", name).lower()


@frozen
class Declared:
    """One entry point, with what its distribution's metadata says about it."""

    entry_point: importlib.metadata.EntryPoint
    distribution: str | None
    """The name of the distribution that declares it; ``None`` when unknown."""
    version: str | None
    """That distribution's version; ``None`` when unknown."""
    key: str
    """Who declares it: the distribution's normalized name (``acme-pay``), or ``module <value>`` when unknown; two
    entry points of one name and one key are one plugin seen twice (a ``sys.path`` entry listed twice)."""


PathStamp: TypeAlias = tuple[str, int | None, frozenset[tuple[str, int | None]]]
"""A ``sys.path`` entry: its text; for a file (a zip) its time; the distributions' metadata found in it."""


@frozen
class _Scan:
    """What one scan of the installed distributions found, and what it was read from."""

    group: str
    source: Callable[..., object]
    """``importlib.metadata.entry_points`` as it was when scanned (a test may put another in its place)."""
    paths: tuple[PathStamp, ...]
    """:func:`_path_stamps` when scanned."""
    declared: tuple[Declared, ...]


_last_scan: _Scan | None = None
_METADATA: Final = (".dist-info", ".egg-info")


def _path_stamps() -> tuple[PathStamp, ...]:
    """``sys.path``, each entry stamped by what an install, upgrade or uninstall changes there.

    A folder is stamped by its ``*.dist-info`` and ``*.egg-info`` folders, each by name and by the time of its
    ``entry_points.txt`` (what the scan reads; a legacy editable install rewrites it in place), never by the
    folder's own time: other files come and go there (a SQLite journal beside ``manage.py``). A file (a zip)
    is stamped by its time and size.
    """
    stamps: list[PathStamp] = []
    for entry in sys.path:
        found: frozenset[tuple[str, int | None]] = frozenset()
        try:
            status = os.stat(entry or ".")
        except (OSError, ValueError):
            stamps.append((entry, None, found))
            continue
        if stat.S_ISDIR(status.st_mode):
            try:
                with os.scandir(entry or ".") as listing:
                    found = frozenset(_metadata_stamp(item) for item in listing if item.name.endswith(_METADATA))
            except OSError:
                pass
            stamps.append((entry, None, found))
        else:
            stamps.append((entry, status.st_mtime_ns, frozenset({("", status.st_size)})))
    return tuple(stamps)


def _metadata_stamp(item: os.DirEntry[str]) -> tuple[str, int | None]:
    """A metadata folder's name, with the time of its ``entry_points.txt`` (``None``: it has none)."""
    try:
        return item.name, os.stat(os.path.join(item.path, "entry_points.txt")).st_mtime_ns
    except OSError:
        return item.name, None


def declared_entry_points(group: str) -> tuple[Declared, ...]:
    """The entry points of ``group``, read again only once the installation changed (the module docstring)."""
    global _last_scan
    import importlib.metadata  # at discovery only: it costs a tenth of paycore's import

    source, paths = importlib.metadata.entry_points, _path_stamps()
    scan = _last_scan
    if scan is not None and scan.source is source and scan.group == group and scan.paths == paths:
        return scan.declared
    declared = []
    for entry_point in source(group=group):
        distribution = getattr(entry_point, "dist", None)
        name = version = None
        if distribution is not None:
            name, version = distribution.name, distribution.version
        declared.append(Declared(entry_point, name, version, _distribution_key(entry_point)))
    _last_scan = _Scan(group, source, paths, tuple(declared))
    return _last_scan.declared
