"""``python -m shapedemo``: plans, bucket tuning, embeddings and comparisons, JSON for scripts.

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

from shapedemo.planning.edges import padding_fraction_for, parse_int_list, powers_of_two, tuned
from shapedemo.planning.plan import MAX_POSITIONS, PlanError
from shapedemo.measure.report import compact, document, format_config, format_plan, format_table
from shapedemo.settings import CALIBRATIONS, CLI_LIMITS, DEFAULT_STRATEGIES, SERVE_MAX_WAIT_MS, SERVE_STRATEGY, WEIGHTS, RunSettings, split_texts, with_config
from shapedemo.shapes import DEFAULT_BATCH_SIZES, FLAGS, MAX_SEQ_STEPS, SAMPLE_FLAGS, SAMPLE_SIZE, SERVE_SEQ_BUCKETS, ShapeSet
from shapedemo.planning.strategies import STRATEGY_NAMES, make_plan
from shapedemo.planning.workloads import WORKLOADS, sample_lengths

MAX_BUDGET = 16
"""``tune --budget``: compiled shapes at most (each costs compile time and memory)."""

__all__ = [
    "add_lengths_arguments",
    "add_plan_arguments",
    "build_parser",
    "lengths_from_args",
    "main",
    "parse_int_list",
    "settings_from_args",
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
        print(("\r\x1b[K" if sys.stderr.isatty() else "") + f"shapedemo: error: {message}", file=sys.stderr)  # progress line cleared
        return 2
    except BrokenPipeError:  # `... | head` closed stdout: stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


# ---- shared argument groups (reused by other subcommands) ----------------------------------


def add_lengths_arguments(parser: argparse.ArgumentParser, *, texts: bool = False, draws: int = 8) -> None:
    """Where the lengths come from: a list, a file, or a built-in workload (exactly one), of
    ``draws`` lengths by default; with ``texts``, also a file of texts (one per line) to tokenize."""
    source = parser.add_mutually_exclusive_group(required=True)
    if texts:
        source.add_argument("--texts-file", metavar="FILE", help="texts, one per line ('-' reads stdin)")
    source.add_argument("--lengths", metavar="N,N,...", help="token lengths, e.g. 12,40,7")
    source.add_argument("--lengths-file", metavar="FILE", help="file of lengths separated by whitespace, commas or newlines ('-' reads stdin)")
    source.add_argument("--workload", metavar="NAME", help=f"built-in distribution: {', '.join(WORKLOADS)}")
    parser.add_argument("--batch", type=int, default=draws, metavar="N", help=f"with --workload: how many (default {draws})")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="with --workload: seed (default 0)")


def lengths_from_args(args: argparse.Namespace) -> list[int]:
    """The lengths named by ``add_lengths_arguments``; a ``PlanError`` for a bad source."""
    if args.lengths is not None:
        return list(parse_int_list(args.lengths, what="--lengths"))
    if args.lengths_file is not None:
        text = _read_text(args.lengths_file)
        return list(parse_int_list(text, what=f"lengths file {args.lengths_file}"))
    max_len = getattr(args, "max_seq", None) or MAX_POSITIONS
    return sample_lengths(args.workload, args.batch, seed=args.seed, max_len=max_len)


def _read_text(path: str, *, what: str = "lengths file") -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PlanError(f"cannot read {what} {path}: {reason}") from None


SPELLINGS = "a list (32,64,128) or a preset: pow2, pow2:MIN, linear[:STEP], tuned:K"  # ShapeSet.parse's


def add_plan_arguments(parser: argparse.ArgumentParser, *, serve: bool = False) -> None:
    """The shape flags (a ``ShapeSet``), with the defaults ``ShapeSet.resolve`` applies: on
    ``serve`` traffic of any length up to the model's limit, elsewhere the input's lengths."""
    steps = "/".join(map(str, MAX_SEQ_STEPS))
    buckets = (f"{SPELLINGS} (default {SERVE_SEQ_BUCKETS}: 32..the model's limit; tuned:K tunes on {SAMPLE_FLAGS})"
               if serve else f"{SPELLINGS} (default pow2; tuned:K tunes on the input)")
    top = ("longest compiled seq (default: the top bucket)" if serve else f"longest compiled seq (default: the "
           f"smallest of {steps} that fits the longest input, raised to the largest bucket of a typed list)")
    parser.add_argument("--seq-buckets", metavar="N,N,...", help=buckets)
    sizes = f"compiled batch sizes (default {','.join(map(str, DEFAULT_BATCH_SIZES))})"
    parser.add_argument("--batch-sizes", metavar="N,N,...", help=sizes + ("; the largest closes a batch" if serve else ""))
    parser.add_argument("--max-seq", type=int, metavar="N", help=top)
    parser.add_argument("--pack-seq", type=int, metavar="N", help="packing row capacity (default max_seq)")
    if not serve:  # serve's start-up set is bounded by its memory budget check instead
        parser.add_argument("--max-shapes", type=int, metavar="N", help="refuse a run that would compile or time more shapes than this (default 256)")


def shapes_from_args(args: argparse.Namespace) -> ShapeSet:
    """The shape flags as typed, parsed (one line naming the flag if malformed)."""
    return ShapeSet.parse(**{key: getattr(args, key, None) for key in FLAGS}, names=CLI_LIMITS.shape_names)


def settings_from_args(args: argparse.Namespace, **fields: Any) -> RunSettings:
    """The validated ``RunSettings`` of a parsed command line: input source, plan options and,
    for commands that run a model, the model, device, precision and timing options."""
    texts_file = getattr(args, "texts_file", None)
    source: dict[str, Any]
    if texts_file is not None:
        source = {"texts": tuple(_read_texts(texts_file))}
    elif args.lengths is not None or args.lengths_file is not None:
        source = {"lengths": tuple(lengths_from_args(args))}
    else:
        source = {"workload": args.workload, "batch": args.batch, "seed": args.seed}
    names = getattr(args, "strategies", None)
    if names is not None:
        fields["strategies"] = tuple(n.strip() for n in names.split(",") if n.strip())
    for key in ("model", "device", "static_only", "precision", "repeats", "max_seconds", "warmup", "jobs", "cost_table", "weights", "calibration", "calibration_file", "ov_config"):
        if getattr(args, key, None) is not None:
            fields[key] = getattr(args, key)
    if getattr(args, "concurrent", False):
        fields["calls"] = "concurrent"
    fields.setdefault("shapes", shapes_from_args(args))
    fields.setdefault("max_shapes", getattr(args, "max_shapes", None))
    return RunSettings(**source, limits=CLI_LIMITS, **fields).validate()


def _read_json(path: str, *, what: str) -> Any:
    try:
        return json.loads(_read_text(path, what=what))
    except ValueError as exc:
        raise PlanError(f"{what} {path}: not JSON ({exc})") from None


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
    parser.add_argument(
        "--cost-table", metavar="FILE",
        help="JSON {\"4x128\": ms, ...}: partitioning strategies and auto choose by predicted latency",
    )
    parser.add_argument("--json", action="store_true", help="print plan.to_dict() as JSON")
    parser.set_defaults(handler=_run_plan)


def _run_plan(args: argparse.Namespace) -> int:
    from shapedemo.runner import read_cost_table

    if args.cost_table == "measure":
        raise PlanError("plan loads no model, so it cannot measure: give --cost-table a JSON file (compare --cost-table measure times shapes)")
    settings = settings_from_args(args)
    lengths = settings.input_lengths()
    table = read_cost_table(args.cost_table) if args.cost_table else None
    plan = make_plan(args.strategy, lengths, **settings.plan_options(lengths), cost_table=table)
    if args.json:
        _print_json(plan.to_dict())
    else:
        print(format_plan(plan))
    return 0


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
    parser.add_argument("--max-seq", type=int, metavar="N", help="make N the top bucket (default: longest length)")
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
        print(f"buckets (k={args.k}): {compact(edges)}")
        print(
            f"padding: {result['padding_fraction']:.1%} over {len(lengths)} lengths "
            f"(powers of two {compact(baseline)}: {result['powers_of_two_padding_fraction']:.1%})"
        )
    return 0


# ---- tune --------------------------------------------------------------------------------


@subcommand
def _add_tune(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="the K compiled shapes that serve a traffic sample cheapest (a deployable config)",
        description="Choose sequence buckets and batch sizes (at most --budget shapes) that minimise "
        "the predicted cost of serving a traffic sample with `auto`; print the configuration that "
        "`compare --config` and `serve --config` run.",
    )
    add_lengths_arguments(parser, texts=True, draws=SAMPLE_SIZE)  # a traffic sample, as serve's tuned:K draws
    parser.add_argument("--budget", type=int, required=True, metavar="K", help="how many compiled shapes at most")
    parser.add_argument(
        "--measure", action="store_true",
        help="time a few shapes on the device and fit the cost model (else: computed token slots); "
        "also compiles the chosen shapes to report compile time and memory",
    )
    parser.add_argument("--curve", action="store_true", help="also the predicted cost for every budget 1..8 ('curve')")
    parser.add_argument("--max-seq", type=int, metavar="N", help="the top bucket (default: the longest length, rounded up to 8)")
    parser.add_argument("--seq-buckets", metavar="N,N,...", help=f"{SPELLINGS}: keep these buckets, choose only the batch sizes")
    _add_model_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print {seq_buckets, batch_sizes, shapes, predicted} as JSON")
    parser.set_defaults(handler=_run_tune)


def _run_tune(args: argparse.Namespace) -> int:
    from shapedemo.runner import tune

    if not 1 <= args.budget <= MAX_BUDGET:
        raise PlanError(f"--budget {args.budget}: choose 1 to {MAX_BUDGET} compiled shapes")
    settings = settings_from_args(args)
    config = tune(settings, budget=args.budget, measure=args.measure, curve=args.curve, progress=_progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        _print_json(config)
    else:
        print(format_config(config))
    return 0


# ---- commands that run a model -------------------------------------------------------------


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=None, metavar="SPEC",
        help="minilm (default), synthetic:<tiny|mini|small|medium|base|large>, a Hugging Face id, a folder, or an .xml IR",
    )
    parser.add_argument(
        "--precision", default="auto", choices=["auto", "f32", "bf16"],
        help="inference precision (auto: the device default; f32 to check fidelity)",
    )
    parser.add_argument(
        "--device", default="CPU", metavar="NAME",
        help="OpenVINO device to run on: CPU (default), GPU, NPU, AUTO, HETERO:..., MULTI:...",
    )
    parser.add_argument("--weights", default=None, choices=WEIGHTS, help="f32 (default), f16, int8-weights (NNCF weight-only), int8 (NNCF quantized, calibrated)")
    parser.add_argument("--calibration", default=None, choices=CALIBRATIONS, help="int8: calibrate on exact lengths (default) or the plan's padded static shapes")
    parser.add_argument("--calibration-file", metavar="FILE", help="int8: calibrate on these texts, one per line (default: the input)")
    parser.add_argument("--ov-config", default=None, metavar="JSON", help='OpenVINO properties passed to compile_model, e.g. \'{"NUM_STREAMS": 2}\' (as optimum-intel\'s ov_config)')


def _read_texts(path: str) -> list[str]:
    texts = split_texts(_read_text(path, what="texts file"))
    if not texts:
        raise PlanError(f"texts file {path} holds no text (one text per line)")
    return texts


def _progress(fraction: float, what: str) -> None:
    """A one-line progress display on stderr, only where a person watches it."""
    if sys.stderr.isatty():
        print(f"\r[{fraction:4.0%}] {what[:70]:<70}", end="", file=sys.stderr, flush=True)


@subcommand
def _add_embed(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "embed",
        help="sentence embeddings of texts (native dynamic shapes)",
        description="Embed one text per line: mean-pooled, L2-normalised sentence embeddings.",
    )
    _add_model_arguments(parser)
    parser.add_argument("--texts-file", required=True, metavar="FILE", help="one text per line ('-' reads stdin)")
    parser.add_argument("--json", action="store_true", help="print [{text, tokens, embedding}] as JSON")
    parser.set_defaults(handler=_run_embed)


def _run_embed(args: argparse.Namespace) -> int:
    from shapedemo.measure.compare import embed
    from shapedemo.runner import engine_for

    texts = _read_texts(args.texts_file)
    settings = RunSettings(
        texts=tuple(texts), model=args.model, device=args.device, precision=args.precision, limits=CLI_LIMITS,
        weights=args.weights or "f32", calibration=args.calibration or "exact", calibration_file=args.calibration_file, ov_config=args.ov_config,
    ).validate()
    engine = engine_for(settings)
    encoded, embeddings = embed(engine, list(settings.texts or ()), truncate=True)
    for i, n in sorted(encoded.truncated.items()):  # stdout stays pure JSON: the note goes to stderr
        print(
            f"shapedemo: text {i + 1} has {'at least ' if i in encoded.at_least else ''}{n} tokens: truncated to the model's max_seq_length "
            f"{engine.loaded.embed_max_length}, as sentence-transformers does",
            file=sys.stderr,
        )
    rows = [
        {"text": t, "tokens": n, "embedding": [float(x) for x in e]}
        for t, n, e in zip(texts, encoded.lengths, embeddings)
    ]
    if args.json:
        _print_json(rows)
    else:
        for r in rows:
            head = ", ".join(f"{x:+.4f}" for x in r["embedding"][:4])
            print(f"{r['tokens']:4d} tokens  [{head}, ...] ({len(r['embedding'])} dims)  {r['text'][:60]}")
    return 0


_CAPS = (
    f"Caps (over one is an error, never a clamp): at most {CLI_LIMITS.texts} texts or lengths, "
    f"--batch {CLI_LIMITS.batch}, batch sizes up to {CLI_LIMITS.batch_size}, --repeats "
    f"{CLI_LIMITS.repeats}, --warmup {CLI_LIMITS.warmup}."
)


@subcommand
def _add_compare(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="run strategies on the same inputs: latency, costs, fidelity",
        description="Plan, compile, warm up and time every strategy on the same inputs, in one "
        "process; fidelity against one dynamic-shape call per sequence.",
        epilog=_CAPS,
    )
    _add_model_arguments(parser)
    add_lengths_arguments(parser, texts=True)
    parser.add_argument(
        "--strategies", default=None, metavar="A,B,...",
        help=f"comma list of {', '.join(STRATEGY_NAMES)} (default: {', '.join(DEFAULT_STRATEGIES)})",
    )
    add_plan_arguments(parser)
    parser.add_argument("--repeats", type=int, metavar="R", help="exactly R timed rounds (default: until every ratio's interval is tight)")
    parser.add_argument("--max-seconds", type=float, metavar="S", help=f"without --repeats: stop the rounds after S s (default {CLI_LIMITS.seconds:g})")
    parser.add_argument("--warmup", type=int, default=1, metavar="W", help="warm-up runs (default 1)")
    parser.add_argument("--concurrent", action="store_true", help="run a plan's calls at once (AsyncInferQueue)")
    parser.add_argument("--jobs", type=int, default=2, metavar="N", help="with --concurrent: requests in flight at once, the same for every strategy (default 2)")
    parser.add_argument(
        "--static-only", action="store_true",
        help="refuse dynamic shapes on the device, as an NPU does: dynamic strategies are reported, not run",
    )
    parser.add_argument(
        "--cost-table", metavar="measure|FILE",
        help="choose partitions by latency, not padding: 'measure' times every batch size x bucket "
        "first; FILE is JSON {\"4x128\": ms, ...}",
    )
    parser.add_argument("--config", metavar="FILE", help="run a deployable configuration from `tune --json` (its buckets, batch sizes and cost model)")
    parser.add_argument("--json", nargs="?", const="-", metavar="OUT", help="write the results as JSON to OUT ('-' or no value: stdout)")
    parser.set_defaults(handler=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    from shapedemo.runner import run

    settings = settings_from_args(args)
    if args.config:
        if args.seq_buckets or args.batch_sizes:
            raise PlanError("--config sets the buckets and batch sizes: leave out --seq-buckets and --batch-sizes")
        doc, flags = _read_json(args.config, what="--config"), {"weights": args.weights} if args.weights else {}
        settings = with_config(settings, {**doc, **flags} if isinstance(doc, dict) else doc, what=f"--config {args.config}")  # flags win
    if args.json not in (None, "-") and not _writable(args.json):
        raise PlanError(f"--json {args.json}: cannot write there (no such folder, or not writable)")
    comparison, _ = run(settings, progress=_progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    payload = document(comparison)
    if args.json == "-":
        _print_json(payload)
        return 0
    print(format_table(payload))
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=2))
        print(f"results written to {args.json}")
    return 0


def _writable(path: str) -> bool:
    """Whether a file can be written at ``path`` (checked before a long run, not after it)."""
    target = Path(path)
    return not target.is_dir() and target.parent.is_dir() and os.access(target.parent, os.W_OK)


# ---- serve (the HTTP embeddings server; logic in shapedemo.serving.server) --------------------------


@subcommand
def _add_serve(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="an embeddings server (OpenAI and TEI routes) that batches traffic with a strategy",
        description="Serve sentence embeddings over HTTP: requests are grouped (what queued while "
        "the last batch ran; --max-wait-ms to wait for more), planned by the strategy and run on "
        "one engine; every shape is compiled at start-up. Routes: POST /v1/embeddings (OpenAI), "
        "POST /embed (TEI), GET /health, /info, /metrics. The request's 'model' field is echoed, never loaded.",
    )
    _add_model_arguments(parser)
    parser.add_argument("--strategy", default=None, metavar="NAME", help=f"{', '.join(STRATEGY_NAMES)} (default {SERVE_STRATEGY})")
    add_plan_arguments(parser, serve=True)
    sample = parser.add_mutually_exclusive_group()
    sample.add_argument("--lengths-file", metavar="FILE", help="a traffic sample of token lengths, for --seq-buckets tuned:K")
    sample.add_argument("--texts-file", metavar="FILE", help="a traffic sample of texts, one per line, for --seq-buckets tuned:K")
    sample.add_argument("--workload", metavar="NAME", help=f"a built-in traffic sample ({', '.join(WORKLOADS)}; {SAMPLE_SIZE} draws), for --seq-buckets tuned:K")
    parser.add_argument("--config", metavar="FILE", help="a configuration from `tune --json` (flags given here win)")
    parser.add_argument("--max-wait-ms", type=float, default=SERVE_MAX_WAIT_MS, metavar="MS", help=f"longest a request waits for others (default {SERVE_MAX_WAIT_MS:g}: a batch is what queued while the last one ran)")
    parser.add_argument("--max-batch-tokens", type=int, default=4096, metavar="N", help="a batch closes at this many real tokens (default 4096)")
    parser.add_argument("--max-texts", type=int, default=256, metavar="N", help="texts per request, more is refused with 413 (default 256, at most 4096)")
    parser.add_argument("--max-queue", type=int, default=1024, metavar="N", help="texts waiting at most, more is refused with 503 + Retry-After (default 1024)")
    parser.add_argument("--truncate", action="store_true", help="cut texts over the longest compiled length instead of refusing them (413)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one, printed on stderr)")
    ray = parser.add_argument_group("Ray Serve (pip install 'shapedemo[ray]'): replicas, each its own engine and shapes")
    ray.add_argument(
        "--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
        help="serve as replicas on a Ray cluster (ADDRESS: 'auto', HOST:6379 or ray://HOST:10001); "
        "no ADDRESS: a Ray instance of this command on 127.0.0.1",
    )
    ray.add_argument("--replicas", type=int, default=None, metavar="N", help="replicas (default 1; with --min/--max-replicas: the initial count)")
    ray.add_argument("--min-replicas", type=int, default=None, metavar="N", help="autoscaling: fewest replicas")
    ray.add_argument("--max-replicas", type=int, default=None, metavar="N", help="autoscaling: most replicas")
    ray.add_argument("--target-in-flight", type=int, default=None, metavar="N", help="autoscaling target: requests in flight per replica (default 16; a replica holds 4x)")
    ray.add_argument("--replica-cpus", type=float, default=None, metavar="N", help="CPUs reserved per replica, its inference threads and pinned cores (default 1)")
    parser.set_defaults(handler=_run_serve, lengths=None, batch=SAMPLE_SIZE, seed=0)


def _serve_sample(args: argparse.Namespace) -> list[int] | list[str] | None:
    """``serve``'s traffic sample: lengths, texts (tokenized once the model is loaded) or None."""
    if args.texts_file is not None:
        return _read_texts(args.texts_file)
    return lengths_from_args(args) if args.lengths_file or args.workload else None


def _run_serve(args: argparse.Namespace) -> int:
    from shapedemo.serving.server import ServeSettings, run_server

    settings = ServeSettings.build(
        model=args.model, device=args.device, precision=args.precision, strategy=args.strategy,
        seq_buckets=args.seq_buckets, batch_sizes=args.batch_sizes, max_seq=args.max_seq,
        pack_seq=args.pack_seq, sample=_serve_sample(args), max_wait_ms=args.max_wait_ms, max_batch_tokens=args.max_batch_tokens,
        max_texts=args.max_texts, max_queue=args.max_queue, truncate=args.truncate,
        host=args.host, port=args.port, config_file=args.config,
        weights=args.weights, calibration=args.calibration, calibration_file=args.calibration_file, ov_config=args.ov_config,
    )
    ray_flags = {"replicas": args.replicas, "min_replicas": args.min_replicas, "max_replicas": args.max_replicas,
                 "target_in_flight": args.target_in_flight, "replica_cpus": args.replica_cpus}
    given = {k: v for k, v in ray_flags.items() if v is not None}
    if args.ray is None:
        if given:
            raise PlanError(f"--{next(iter(given)).replace('_', '-')} needs --ray (replicas run on Ray Serve)")
        return run_server(settings)
    from shapedemo.serving.ray_serve import RayOptions, run_ray

    return run_ray(settings, RayOptions.build(address=args.ray, **given))


# ---- loadtest (open-loop Poisson arrivals on loopback; logic in shapedemo.serving.loadtest) --------


@subcommand
def _add_loadtest(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "loadtest",
        help="open-loop Poisson load against a server on loopback: p50/p95/p99",
        description="Send requests at Poisson arrival times (open loop, bounded in count and "
        "time) to a shapedemo serve on loopback; print requests, errors, throughput and "
        "latency percentiles.",
    )
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000 (loopback only)")
    parser.add_argument("--rate", type=float, required=True, metavar="R", help="requests per second offered")
    parser.add_argument("--duration", type=float, required=True, metavar="S", help="seconds of arrivals (then up to --timeout for the last answers)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--texts-file", metavar="FILE", help="texts, one per line ('-' reads stdin)")
    source.add_argument("--workload", metavar="W", help="texts of a built-in length distribution (default sst2-like)")
    parser.add_argument("--texts-per-request", type=int, default=1, metavar="N", help="texts in each request (default 1)")
    parser.add_argument("--route", default="/v1/embeddings", help="/v1/embeddings (default, base64 like the openai client) or /embed")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S", help="per request (default 30)")
    parser.add_argument("--max-in-flight", type=int, default=512, metavar="N", help="open requests at most; arrivals beyond count as errors (default 512)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="arrival and text seed (default 0)")
    parser.add_argument("--json", metavar="OUT", help="also write the result as JSON to OUT ('-': stdout only)")
    parser.set_defaults(handler=_run_loadtest)


def _run_loadtest(args: argparse.Namespace) -> int:
    from shapedemo.serving.loadtest import check_loopback, format_result, run_loadtest, server_text_limit, workload_texts, write_json

    check_loopback(args.url)
    if args.texts_file:
        texts = _read_texts(args.texts_file)
    else:  # texts the server takes: lengths capped at the limit its /info states
        limit = server_text_limit(args.url) or MAX_POSITIONS
        texts = workload_texts(args.workload or "sst2-like", 256, seed=args.seed, max_len=limit)
    result = run_loadtest(
        args.url, rate=args.rate, duration_s=args.duration, texts=texts,
        texts_per_request=args.texts_per_request, route=args.route, timeout_s=args.timeout,
        max_in_flight=args.max_in_flight, seed=args.seed,
    ).to_dict()
    if args.json == "-":
        write_json(result, "-")
        return 0
    print(format_result(result))
    if args.json:
        write_json(result, args.json)
    return 0 if result["ok"] else 1


# ---- export (peers) --------------------------------------------------------------------------


@subcommand
def _add_export(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write the model for another runtime (genai: OpenVINO GenAI's TextEmbeddingPipeline)",
        description="Write the model, its OpenVINO tokenizer and its config files into DIR "
        "(needs the extra: pip install -e \".[peers]\").",
    )
    parser.add_argument("dir", metavar="DIR", help="the folder to write (created; must be new or empty)")
    parser.add_argument("--format", default="genai", choices=["genai"], help="genai (the default)")
    parser.add_argument("--model", default=None, metavar="SPEC", help="a model spec as for compare (default minilm)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty DIR")
    parser.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from shapedemo.model.export import export

    done = export(args.dir, format=args.format, spec=args.model, overwrite=args.overwrite)
    print(f"exported {done.model} for OpenVINO GenAI to {done.folder}: {', '.join(done.files)}")
    print(f"load it: {done.usage}")
    return 0
