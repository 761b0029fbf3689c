"""MkDocs hook: the workspace's plugin and adapter READMEs as pages of the site.

Each ``plugins/<name>/README.md`` and ``adapters/<name>/README.md`` becomes
``workspace/<name>.md``. Their relative links are rewritten: a link to a page of
``docs/`` or to another README of the workspace points at its page; a link to
any other file of the repository becomes its path in code, since the site
does not hold it.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def _readmes() -> dict[str, str]:
    """Repository path of each workspace README -> its page in the site."""
    pages: dict[str, str] = {"README.md": "index.md"}
    for readme in sorted([*ROOT.glob("plugins/*/README.md"), *ROOT.glob("adapters/*/README.md")]):
        pages[readme.relative_to(ROOT).as_posix()] = f"workspace/{readme.parent.name}.md"
    return pages


def _rewrite(text: str, source: str, pages: dict[str, str]) -> str:
    """``text`` of the README at ``source`` with its relative links fitted to the site."""

    def fit(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        if re.match(r"^[a-z]+:|^#", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
        page = pages.get(resolved)
        if page is None and resolved.startswith("docs/"):
            page = resolved.removeprefix("docs/")
        if page is None:
            return f"{label} (`{resolved}`)"
        relative = posixpath.relpath(page, "workspace")
        return f"[{label}]({relative}{'#' + anchor if anchor else ''})"

    return LINK.sub(fit, text)


def on_files(files: Files, config: Any) -> Files:
    """Add a page for each workspace README."""
    pages = _readmes()
    for source, page in pages.items():
        if source == "README.md":
            continue
        text = (ROOT / source).read_text(encoding="utf-8")
        files.append(File.generated(config, page, content=_rewrite(text, source, pages)))
    return files
