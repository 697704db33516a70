"""The ``langchain-fusion`` command line: index documents, search, ask, chat.

Run ``langchain-fusion --help`` or ``langchain-fusion COMMAND --help``. User mistakes end with a
one-line ``error: ...`` on stderr and exit code 1 (2 for bad usage), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from langchain_fusion.cli import answers, evaluate, finetune, search
from langchain_fusion.cli._common import CLIError

__all__ = ["CLIError", "build_parser", "main"]

EPILOG = """examples:
  langchain-fusion ask --sample "What does error E-217 mean?"
  langchain-fusion index docs/ --out my-index
  langchain-fusion search my-index "read_csv encoding error" --k 5 --explain
  langchain-fusion ask my-index "How do I reset the battery?" --llm openai:gpt-4o-mini
  langchain-fusion chat my-index
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser (exposed for docs and tests).

    Example:
        >>> build_parser().prog
        'langchain-fusion'

    """
    parser = argparse.ArgumentParser(
        prog="langchain-fusion",
        description="Hybrid (dense + BM25) search and question answering over your documents.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from langchain_fusion import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    for group in (search, evaluate, finetune, answers):
        group.add_commands(sub)
    from langchain_fusion.cli.postgres import add_commands as add_postgres_commands

    add_postgres_commands(sub)
    return parser


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    """Print a warning as one ``warning: ...`` line, like the errors (no source line)."""
    print(f"warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``langchain-fusion`` command.

    Example:
        >>> main(["--version"])  # doctest: +SKIP

    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.func(args))
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except (FileNotFoundError, NotADirectoryError, PermissionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except json.JSONDecodeError as exc:
        print(f"error: --filter is not valid JSON: {exc}", file=sys.stderr)
    except (ValueError, ImportError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1
