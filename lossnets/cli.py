"""The `lossnets` command line: it only parses arguments and calls the API.

Each command is a ``_cmd_<name>(args)`` function plus its parser in ``build_parser``.
"""
from __future__ import annotations

import argparse
import sys


def _add_grid_args(p: argparse.ArgumentParser) -> None:
    """--archs/--layers, shared by every command that runs over the grid."""
    p.add_argument("--archs", nargs="+", default=None, help="architectures (default: all 14)")
    p.add_argument("--layers", nargs="+", default=["E", "S", "M", "L"], help="taps: letters or module paths")


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    """Weights and runtime options of the LossNetwork."""
    p.add_argument("--weights", default="imagenet", help="imagenet | random | PATH to a state_dict")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--amp", choices=["bf16", "fp16"], default=None)
    p.add_argument("--compile", action="store_true", help="torch.compile the loss networks")


def _cmd_list(args) -> None:
    import pandas as pd

    from lossnets.engine.profiler import tap_table
    with pd.option_context("display.max_rows", None, "display.width", 200):
        print(tap_table(args.archs).to_string(index=False))


# --- commands added by each room go below this line, one function each ---


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lossnets", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="print the grid: architecture, tap, module path, channels")
    p.add_argument("--archs", nargs="+", default=None)
    p.set_defaults(func=_cmd_list)

    # --- parsers added by each room go below this line ---

    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as e:
        print(f"lossnets {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
