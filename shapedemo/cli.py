"""``python -m shapedemo``: plans and bucket tuning from the command line, JSON for scripts.

Each subcommand is one function that adds its parser and sets a ``handler``; ``@subcommand``
registers it and ``build_parser`` calls the registered functions in order, so a new command is
one decorated function. A handler takes the parsed namespace and returns the exit code.

Errors in arguments (``PlanError`` / ``ValueError``) print one line ``shapedemo: error: ...`` to
stderr and exit 2, like argparse's own usage errors; never a traceback. Commands that need a
model must import OpenVINO inside their handler, so ``plan`` and ``tune-buckets`` stay pure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence, TypeAlias

from shapedemo.buckets import (
    padding_fraction_for,
    parse_int_list,
    powers_of_two,
    resolve_buckets,
    tuned,
)
from shapedemo.plan import MAX_POSITIONS, Plan, PlanError
from shapedemo.strategies import STRATEGY_NAMES, make_plan
from shapedemo.workloads import WORKLOADS, sample_lengths

__all__ = [
    "add_lengths_arguments",
    "add_plan_arguments",
    "build_parser",
    "lengths_from_args",
    "main",
    "parse_int_list",
    "plan_kwargs",
    "subcommand",
]

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Register = Callable[[Subparsers], None]
"""Adds one subcommand to the subparsers it is given and sets ``handler`` on it."""

_SUBCOMMANDS: list[Register] = []


def subcommand(register: Register) -> Register:
    """Register a function that adds one subcommand (parser + ``handler`` default)."""
    _SUBCOMMANDS.append(register)
    return register


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shapedemo",
        description="Serve inputs of changing shape: padding, buckets, partitioning and "
        "packing next to native dynamic shapes.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; the return value is the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (2) and --help (0), returned instead of raised
        return exc.code if isinstance(exc.code, int) else 0
    try:
        return int(args.handler(args))
    except (PlanError, ValueError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"shapedemo: error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `... | head` closed stdout: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


# ---- shared argument groups (reused by other subcommands) ----------------------------------


def add_lengths_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the lengths come from: a list, a file, or a built-in workload (exactly one)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--lengths", metavar="N,N,...", help="token lengths, e.g. 12,40,7")
    source.add_argument(
        "--lengths-file",
        metavar="FILE",
        help="file of lengths separated by whitespace, commas or newlines ('-' reads stdin)",
    )
    source.add_argument(
        "--workload", metavar="NAME", help=f"built-in distribution: {', '.join(WORKLOADS)}"
    )
    parser.add_argument(
        "--batch", type=int, default=8, metavar="N", help="with --workload: how many (default 8)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="S", help="with --workload: seed (default 0)"
    )


def lengths_from_args(args: argparse.Namespace) -> list[int]:
    """The lengths named by ``add_lengths_arguments``; a ``PlanError`` for a bad source."""
    if args.lengths is not None:
        return list(parse_int_list(args.lengths, what="--lengths"))
    if args.lengths_file is not None:
        text = _read_text(args.lengths_file)
        return list(parse_int_list(text, what=f"lengths file {args.lengths_file}"))
    max_len = getattr(args, "max_seq", None) or MAX_POSITIONS
    return sample_lengths(args.workload, args.batch, seed=args.seed, max_len=max_len)


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PlanError(f"cannot read lengths file {path}: {reason}") from None


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """The plan parameters every strategy takes (defaults are ``make_plan``'s)."""
    parser.add_argument(
        "--seq-buckets",
        metavar="N,N,...",
        help="bucket edges, or a preset: pow2 (the default), linear[:STEP], tuned:K",
    )
    parser.add_argument(
        "--batch-sizes", metavar="N,N,...", help="compiled batch sizes (default 1,2,4,8)"
    )
    parser.add_argument(
        "--max-seq", type=int, metavar="N", help=f"longest compiled seq (default {MAX_POSITIONS})"
    )
    parser.add_argument(
        "--pack-seq", type=int, metavar="N", help="packing row capacity (default max_seq)"
    )


def plan_kwargs(args: argparse.Namespace, lengths: Sequence[int]) -> dict[str, Any]:
    """``make_plan`` keyword arguments from ``add_plan_arguments``' options (a bucket preset
    such as ``tuned:4`` is worked out on ``lengths``)."""
    max_seq = args.max_seq or MAX_POSITIONS
    return {
        "seq_buckets": (
            None
            if args.seq_buckets is None
            else resolve_buckets(args.seq_buckets, lengths, max_seq=max_seq, what="--seq-buckets")
        ),
        "batch_sizes": (
            None
            if args.batch_sizes is None
            else parse_int_list(args.batch_sizes, what="--batch-sizes")
        ),
        "max_seq": args.max_seq,
        "pack_seq": args.pack_seq,
    }


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2))


# ---- plan --------------------------------------------------------------------------------


@subcommand
def _add_plan(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="print a strategy's plan for some lengths (no model loaded)",
        description="Lay out sequence lengths into static-shape calls and print the plan.",
    )
    parser.add_argument("--strategy", required=True, metavar="NAME", help=", ".join(STRATEGY_NAMES))
    add_lengths_arguments(parser)
    add_plan_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print plan.to_dict() as JSON")
    parser.set_defaults(handler=_run_plan)


def _run_plan(args: argparse.Namespace) -> int:
    lengths = lengths_from_args(args)
    plan = make_plan(args.strategy, lengths, **plan_kwargs(args, lengths))
    if args.json:
        _print_json(plan.to_dict())
    else:
        print(format_plan(plan))
    return 0


def format_plan(plan: Plan) -> str:
    """A plan as a few readable lines: parameters, one line per call, totals.

    >>> print(format_plan(make_plan("partition", [12, 40, 7], batch_sizes=[2], max_seq=64)))
    plan: partition  (batch_sizes=2 max_seq=64 chunks=2,2 objective=padding)
    call 1: 2 x 64  rows: [0] [1]
    call 2: 2 x 64  rows: [2] [pad]
    tokens: 59 real of 256 computed, padding 77.0%
    calls: 2, compiled shapes: 2 x 64
    """
    shown = {k: v for k, v in plan.params.items() if k != "shape_set"}
    params = " ".join(f"{k}={_words(v)}" for k, v in shown.items())
    lines = [f"plan: {plan.strategy}  ({params})"]
    for i, call in enumerate(plan.calls, 1):
        rows = " ".join(
            "[" + ("+".join(str(s.seq) for s in row) if row else "pad") + "]" for row in call.rows
        )
        lines.append(f"call {i}: {call.batch} x {call.seq}  rows: {rows}")
    lines.append(
        f"tokens: {plan.real_tokens} real of {plan.computed_tokens} computed, "
        f"padding {plan.padding_fraction:.1%}"
    )
    if plan.dynamic:
        shapes = "none (dynamic); call shapes " + _shapes(plan.call_shapes)
    else:
        shapes = _shapes(plan.compiled_shapes)
    lines.append(f"calls: {plan.num_calls}, compiled shapes: {shapes}")
    return "\n".join(lines)


def _words(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _shapes(shapes: Sequence[tuple[int, int]]) -> str:
    return ", ".join(f"{b} x {s}" for b, s in shapes)


# ---- tune-buckets ------------------------------------------------------------------------


@subcommand
def _add_tune_buckets(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "tune-buckets",
        help="the k bucket edges that pad a length sample least (exact)",
        description="Find the k sequence buckets that minimise padded tokens over a sample.",
    )
    add_lengths_arguments(parser)
    parser.add_argument("--k", type=int, required=True, metavar="K", help="how many buckets")
    parser.add_argument(
        "--max-seq", type=int, metavar="N", help="make N the top bucket (default: longest length)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=_run_tune_buckets)


def _run_tune_buckets(args: argparse.Namespace) -> int:
    lengths = lengths_from_args(args)
    edges = tuned(lengths, args.k, max_seq=args.max_seq)
    baseline = powers_of_two(edges[-1])
    result = {
        "buckets": list(edges),
        "padding_fraction": padding_fraction_for(lengths, edges),
        "k": args.k,
        "num_lengths": len(lengths),
        "powers_of_two": list(baseline),
        "powers_of_two_padding_fraction": padding_fraction_for(lengths, baseline),
    }
    if args.json:
        _print_json(result)
    else:
        print(f"buckets (k={args.k}): {_words(edges)}")
        print(
            f"padding: {result['padding_fraction']:.1%} over {len(lengths)} lengths "
            f"(powers of two {_words(baseline)}: {result['powers_of_two_padding_fraction']:.1%})"
        )
    return 0
