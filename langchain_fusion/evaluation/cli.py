"""Moved to the `langchain_fusion.cli` package; this alias keeps the old imports working.

The ``eval`` and ``tune`` commands live in `langchain_fusion.cli.evaluate`, ``fine-tune`` in
`langchain_fusion.cli.finetune`.
"""

from __future__ import annotations

from typing import Any

from langchain_fusion.cli import evaluate, finetune
from langchain_fusion.cli.evaluate import cmd_eval, cmd_tune
from langchain_fusion.cli.finetune import cmd_fine_tune

__all__ = ["add_commands", "cmd_eval", "cmd_fine_tune", "cmd_tune"]


def add_commands(subparsers: Any) -> None:
    """Add the ``eval``, ``tune`` and ``fine-tune`` subcommands to a ``langchain-fusion`` parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_commands(parser.add_subparsers(dest="command"))
        >>> parser.parse_args(["eval", "--beir", "x", "--alpha", "0.3"]).alpha
        0.3

    """
    evaluate.add_commands(subparsers)
    finetune.add_commands(subparsers)
