"""MkDocs hooks for the docs build: the CLI reference is generated from the real parser.

A page line ``<!-- cli-help -->`` becomes the output of ``langchain-fusion --help``, and
``<!-- cli-help: search -->`` the output of ``langchain-fusion search --help``, so the reference
in ``docs/cli.md`` can never drift from the code. A marker naming a command the CLI does not
have fails the build.

Loaded by ``mkdocs.yml`` (``hooks:``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
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
    """Replace each ``<!-- cli-help[: command] -->`` line by that help text in a code block."""

    def expand(match: re.Match[str]) -> str:
        return "```text\n" + cli_help(match["command"]) + "\n```"

    return _MARKER.sub(expand, markdown)
