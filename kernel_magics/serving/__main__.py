"""``python -m ship_runtime serve|score|check|compact ...``: the runtime without Ship's CLI.

    serve BUNDLE [--host H] [--port P] [--grpc-port G] [--workers W]
          [--log-dir DIR | --no-log]
    score BUNDLE INPUT OUTPUT           Parquet or CSV in, Parquet or CSV out
    check BUNDLE                        load, validate and warm up; exit 1 with the reason
    compact LOG [--older-than 1h] [--missing-ok]
                                        merge each closed hour's log segments into one file

Exit status 1 with ``error: ...`` on a broken bundle or bad input file.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .errors import RuntimeServingError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ship_runtime",
                                     description="Serve or score a Ship bundle.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a bundle over HTTP")
    serve.add_argument("bundle")
    serve.add_argument("--host", default=os.environ.get("SHIP_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("SHIP_PORT", "8080")))
    serve.add_argument("--grpc-port", type=int,
                       default=int(os.environ.get("SHIP_GRPC_PORT") or 0) or None,
                       help="also serve V2 over gRPC (inference.GRPCInferenceService) on "
                            "this port (default: $SHIP_GRPC_PORT; none)")
    serve.add_argument("--workers", type=int, default=int(os.environ.get("SHIP_WORKERS", "1")))
    serve.add_argument("--log-dir", default=None,
                       help="prediction log folder or URL (default: $SHIP_LOG_DIR, else "
                            "log/ beside the bundle)")
    serve.add_argument("--no-log", action="store_true", help="turn the prediction log off")
    serve.add_argument("--log-level", default="warning",
                       choices=["debug", "info", "warning", "error"])
    score = commands.add_parser("score", help="score a Parquet or CSV file")
    score.add_argument("bundle")
    score.add_argument("input")
    score.add_argument("output")
    check = commands.add_parser("check", help="validate a bundle and run its warm-up")
    check.add_argument("bundle")
    compact = commands.add_parser(
        "compact", help="merge each closed hour's prediction-log segments into one file")
    compact.add_argument("log", help="the log folder or URL (as --log-dir of serve)")
    compact.add_argument("--older-than", default="1h",
                         help="only hours that ended at least this long ago (default 1h)")
    compact.add_argument("--missing-ok", action="store_true",
                         help="no log there yet (nothing served so far) is not an error")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from .server import serve

            serve(args.bundle, host=args.host, port=args.port, workers=args.workers,
                  log_dir="" if args.no_log else args.log_dir, log_level=args.log_level,
                  grpc_port=args.grpc_port)
        elif args.command == "score":
            from .batch import score_file

            result = score_file(args.bundle, args.input, args.output)
            print(f"{result.rows} rows scored in {result.seconds:.2f}s -> {result.output}")
        elif args.command == "compact":
            from .predlog import compact_log

            print(compact_log(args.log, older_than=args.older_than,
                              missing_ok=args.missing_ok).summary())
        else:
            from .bundle import Bundle
            from .pipeline import Pipeline

            bundle = Bundle.load(args.bundle)
            Pipeline(bundle).warm_up()
            print(f"ok: {bundle.manifest.name} version {bundle.manifest.version}")
    except RuntimeServingError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
