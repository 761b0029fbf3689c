"""Griffe extension: the reStructuredText roles of paycore's docstrings as cross-references.

The docstrings name other objects the Sphinx way (``:class:`~paycore.errors.PaymentBusy```,
``:meth:`settle```); this turns each role into a link to the object's entry in the API
reference, shown as code, or into plain code when the object is not documented there.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|const):`(?P<short>~?)(?P<target>[\w.]+)`")


def _identifier(obj: griffe.Object, target: str) -> str:
    """The full path of ``target`` as seen from ``obj`` (itself if it cannot be resolved)."""
    if target.startswith("paycore"):
        return target
    head, _, rest = target.partition(".")
    scopes = [obj, *([obj.parent] if obj.parent is not None else [])]
    for scope in scopes:
        try:
            resolved = scope.resolve(head)
        except (griffe.NameResolutionError, AttributeError, KeyError):
            continue
        return f"{resolved}.{rest}" if rest else resolved
    return target


def _rewrite(obj: griffe.Object) -> None:
    docstring = obj.docstring
    if docstring is None or ":" not in docstring.value:
        return

    def link(match: re.Match[str]) -> str:
        target = match.group("target")
        title = target.rsplit(".", 1)[-1] if match.group("short") else target
        identifier = _identifier(obj, target)
        return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'

    docstring.value = ROLE.sub(link, docstring.value)


def _walk(obj: griffe.Object, seen: set[str]) -> None:
    if obj.path in seen:
        return
    seen.add(obj.path)
    _rewrite(obj)
    for member in obj.members.values():
        if not member.is_alias:
            _walk(member, seen)  # type: ignore[arg-type]


class RstRoles(griffe.Extension):
    """Rewrites every docstring of a loaded package (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Called once the package is loaded: every member's docstring is final."""
        _walk(pkg, set())
