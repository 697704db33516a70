"""Griffe extension for the docs build: Sphinx cross-reference roles become autorefs links.

Some docstrings use reStructuredText roles (``:class:`~langchain_fusion.HybridIndex```,
``:meth:`compact```). Markdown has no such syntax, so mkdocstrings would print them verbatim.
This extension rewrites each role into an *optional* autorefs link: a link when the target is
rendered somewhere on the site, plain code otherwise (never a broken link, never a build
failure). Relative targets (``compact``, ``BM25Retriever.delete``) are resolved from the object
that owns the docstring outwards, then through the module's imports. A reST literal-block marker
(a paragraph ending in ``::``) becomes a single colon; the indented block after it is already a
Markdown code block. The package writes ``Example:`` sections (singular); Griffe only renders
doctests as code in an ``Examples:`` section, so the header is renamed.

Loaded by ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|data|attr|exc|obj|const):`(?P<target>[^`]+)`")
_LITERAL_MARKER = re.compile(r"(?<=\S)::$", re.MULTILINE)
_EXAMPLE_SECTION = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


def _lookup(collection: Any, path: str) -> griffe.Object | griffe.Alias | None:
    try:
        found = collection.get_member(path)
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    return found if isinstance(found, (griffe.Object, griffe.Alias)) else None


def _canonical(found: griffe.Object | griffe.Alias) -> str:
    try:
        return str(found.final_target.path) if isinstance(found, griffe.Alias) else found.path
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return found.path


def _resolve(obj: griffe.Object, target: str, collection: Any) -> str | None:
    """Return the full path ``target`` designates from ``obj``'s scope, or None."""
    if "." in target and (found := _lookup(collection, target)) is not None:
        return _canonical(found)
    scope: griffe.Object | None = obj
    while scope is not None:
        if (found := _lookup(collection, f"{scope.path}.{target}")) is not None:
            return _canonical(found)
        head, _, rest = target.partition(".")
        try:
            base = scope.resolve(head)
        except (griffe.NameResolutionError, AttributeError):
            base = None
        if base and (found := _lookup(collection, f"{base}.{rest}" if rest else base)):
            return _canonical(found)
        scope = scope.parent
    return None


def _rewrite(obj: griffe.Object, text: str, collection: Any) -> str:
    def link(match: re.Match[str]) -> str:
        raw = match["target"].strip()
        short = raw.startswith("~")
        target = raw.lstrip("~.")
        title = target.rsplit(".", 1)[-1] if short else target
        path = _resolve(obj, target, collection)
        code = f"<code>{html.escape(title)}</code>"
        if path is None:
            return code
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'

    text = _EXAMPLE_SECTION.sub(r"\g<indent>Examples:", text)
    return _LITERAL_MARKER.sub(":", _ROLE.sub(link, text))


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles and ``::`` markers in every docstring once the package is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        """Walk the loaded package and rewrite each docstring in place."""
        collection = loader.modules_collection
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None and obj.docstring.value:
                obj.docstring.value = _rewrite(obj, obj.docstring.value, collection)
            stack.extend(m for m in obj.members.values() if isinstance(m, griffe.Object))
