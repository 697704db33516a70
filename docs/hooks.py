"""MkDocs hooks for the docs build: reference text generated from the code itself.

* A page line ``<!-- cli-help -->`` becomes the output of ``langchain-fusion --help``, and
  ``<!-- cli-help: search -->`` the output of ``langchain-fusion search --help``, so the
  reference in ``docs/cli.md`` can never drift from the code. A marker naming a command the CLI
  does not have fails the build.
* A page line ``<!-- error-index -->`` becomes the list of every exception and warning message
  in the package's source, one table per module (read with ``ast``, nothing is imported).

Loaded by ``mkdocs.yml`` (``hooks:``); ``tests/unit_tests/test_docs.py`` imports it too.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import html
import io
import os
import re
from pathlib import Path
from typing import Any

_MARKER = re.compile(r"^<!-- cli-help(?::\s*(?P<command>[\w-]+))? -->$", re.MULTILINE)
_HELP_WIDTH = "88"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_help(command: str | None = None) -> str:
    """Return the ``--help`` text of the CLI or of one of its commands, wrapped at 88 columns."""
    from langchain_fusion.cli import build_parser

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = _HELP_WIDTH  # argparse wraps at the terminal width
    try:
        parser = build_parser()
        if command is not None:
            commands = _subparsers(parser)
            if command not in commands:
                raise ValueError(
                    f"docs/cli.md documents a command {command!r} that the CLI does not have; "
                    f"its commands are {sorted(commands)}"
                )
            parser = commands[command]
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            parser.print_help()
        return buffer.getvalue().rstrip()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Expand the ``cli-help`` and ``error-index`` markers of a page."""

    def expand(match: re.Match[str]) -> str:
        return "```text\n" + cli_help(match["command"]) + "\n```"

    markdown = _MARKER.sub(expand, markdown)
    if _ERROR_INDEX.search(markdown):
        index = error_index_markdown(error_messages())
        markdown = _ERROR_INDEX.sub(lambda _: index, markdown)
    return markdown


# ------------------------------------------------------------------------------ error index

_EXCEPTIONS = {
    "ValueError",
    "TypeError",
    "KeyError",
    "ImportError",
    "FileNotFoundError",
    "FileExistsError",
    "NotADirectoryError",
    "PermissionError",
    "OSError",
    "RuntimeError",
    "CorruptIndexError",
    "CLIError",
    "LLMError",
    "ToolException",
}
_MESSAGE_HELPERS = {"fail": "CLIError", "cli_error": "CLIError"}  # cli/_common.py
_ERROR_INDEX = re.compile(r"^<!-- error-index -->$", re.MULTILINE)
# Characters Markdown would interpret inside <code> (links, emphasis, table cells), as entities.
_MARKDOWN_ESCAPES = str.maketrans({c: f"&#{ord(c)};" for c in "|[]*_`\\"})


@dataclasses.dataclass(frozen=True)
class Message:
    """One user-facing message found in the package's source."""

    module: str
    line: int
    kind: str
    text: str


def _readable(expression: str) -> str:
    """Shorten common idioms of inserted values: ``type(x).__name__`` -> ``type(x)``..."""
    expression = re.sub(r"type\((.+?)\)\.__name__", r"type(\1)", expression)
    return re.sub(r"^str\((\w+)\)$", r"\1", expression)


def _template(node: ast.expr, assigned: dict[str, ast.expr]) -> str | None:
    """Render a message expression: literal text kept, ``{expression}`` for inserted values."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                parts.append("{" + _readable(ast.unparse(value.value)) + "}")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left, assigned), _template(node.right, assigned)
        if left is None and right is None:
            return None
        return (left if left is not None else "{…}") + (right if right is not None else "{…}")
    if isinstance(node, ast.Name) and node.id in assigned:
        return _template(assigned[node.id], {})
    return None


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _messages_in(tree: ast.AST, module: str) -> list[Message]:
    found: list[Message] = []

    def visit(scope: ast.AST) -> None:
        assigned: dict[str, ast.expr] = {}
        for node in _walk_in_order(scope):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    assigned[target.id] = node.value
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = _call_name(node)
            if name in _EXCEPTIONS or name in _MESSAGE_HELPERS:
                kind = _MESSAGE_HELPERS.get(name or "", name or "")
            elif name == "warn" and len(node.args) >= 1:
                category = node.args[1] if len(node.args) > 1 else None
                kind = ast.unparse(category) if category is not None else "UserWarning"
            else:
                continue
            text = _template(node.args[0], assigned)
            if text and len(text.strip()) > 3:
                found.append(Message(module, node.lineno, kind, " ".join(text.split())))

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            visit(node)
    return found


def _walk_in_order(scope: ast.AST) -> list[ast.AST]:
    """Nodes of a function body in source order, without descending into nested functions."""
    out: list[ast.AST] = []

    def rec(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            out.append(child)
            rec(child)

    rec(scope)
    return sorted(out, key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))


def error_messages(package: Path | None = None) -> list[Message]:
    """Every exception and warning message raised by the package, from its source (AST).

    ``{...}`` in a message stands for a value inserted at run time (the expression's source).
    """
    root = package or Path(__file__).resolve().parents[1] / "langchain_fusion"
    messages: list[Message] = []
    for path in sorted(root.rglob("*.py")):
        module = path.relative_to(root.parent).with_suffix("").as_posix().replace("/", ".")
        module = module.removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        messages.extend(_messages_in(tree, module))
    unique = {(m.module, m.kind, m.text): m for m in messages}
    return sorted(unique.values(), key=lambda m: (m.module, m.line))


def error_index_markdown(messages: list[Message]) -> str:
    """Render the messages as one table per module, HTML-escaped (``|`` and backticks are safe)."""
    lines: list[str] = []
    module = None
    for m in messages:
        if m.module != module:
            module = m.module
            lines += ["", f"### `{module}`", "", "| raised | message |", "|---|---|"]
        text = html.escape(m.text).translate(_MARKDOWN_ESCAPES)
        lines.append(f"| `{m.kind}` | <code>{text}</code> |")
    return "\n".join(lines).strip()
