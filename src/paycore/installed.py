"""The entry points installed distributions declare, read once per state of the installation.

Reading every distribution's metadata costs about 10 ms, which a process that
builds a flow per event loop (Django's async views under WSGI) would otherwise
pay per request. Like Python's own import system, which lists a folder again
once its modification time changes, a scan is kept until ``sys.path``, the
modification time of one of its folders or the distributions' metadata
folders (``*.dist-info``, ``*.egg-info``) in one of them change: a ``pip
install``, ``upgrade`` or ``uninstall`` into a folder on the path changes them.
A legacy editable install's ``*.egg-info/entry_points.txt`` rewritten in
place, and a zip file on the path replaced, are seen by their own times.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from attrs import frozen

if TYPE_CHECKING:
    import importlib.metadata

__all__ = ["Declared", "declared_entry_points"]


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
    version: str | None
    key: str
    """:func:`_distribution_key`."""


@frozen
class _Scan:
    """What one scan of the installed distributions found, and what it was read from."""

    group: str
    source: Callable[..., object]
    """``importlib.metadata.entry_points`` as it was when scanned (a test may put another in its place)."""
    paths: tuple[tuple[str, int | None, frozenset[tuple[str, int | None]]], ...]
    """:func:`_path_stamps` when scanned: an install or uninstall changes a folder's time and listing."""
    declared: tuple[Declared, ...]


_last_scan: _Scan | None = None
_METADATA: Final = (".dist-info", ".egg-info")


def _path_stamps() -> tuple[tuple[str, int | None, frozenset[tuple[str, int | None]]], ...]:
    """``sys.path``: each entry with its modification time and the distributions' metadata in it.

    A folder's metadata is its ``*.dist-info`` and ``*.egg-info`` folders by name, an ``*.egg-info`` with the time
    of its ``entry_points.txt`` too (a legacy editable install rewrites it in place); a file (a zip) is stamped
    by its time and size.
    """
    stamps: list[tuple[str, int | None, frozenset[tuple[str, int | None]]]] = []
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
        else:
            found = frozenset({("", status.st_size)})
        stamps.append((entry, status.st_mtime_ns, found))
    return tuple(stamps)


def _metadata_stamp(item: os.DirEntry[str]) -> tuple[str, int | None]:
    """A metadata folder's name, with the time of its ``entry_points.txt`` for an ``*.egg-info``."""
    if not item.name.endswith(".egg-info"):
        return item.name, None
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
