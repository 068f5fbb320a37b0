"""Run one notebook with papermill, in a process of its own.

`ship run` starts ``python -m kernel_magics.batch.execute`` per notebook so each
gets its own environment (the SHIP_* variables its kernel reads) and grid points
can run in parallel. The magics are loaded into the kernel with ``--ext``, so a
notebook using `%%ship` runs even where the kernel config does not load them.
Exit status: 0 success, 1 a cell failed (the output notebook shows where), 2 the
notebook could not be run at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernel_magics.batch.execute")
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--parameters", default="{}", help="JSON object")
    parser.add_argument("--kernel", default=None)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--result", type=Path, default=None,
                        help="Write {'error': ...} here as JSON for the caller.")
    args = parser.parse_args(argv)

    def fail(message: str, code: int) -> int:
        print(message, file=sys.stderr)
        if args.result is not None:
            args.result.write_text(json.dumps({"error": message}), encoding="utf-8")
        return code

    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(args.input), str(args.output), parameters=json.loads(args.parameters),
            kernel_name=args.kernel, progress_bar=not args.no_progress,
            cwd=str(args.input.parent), extra_arguments=["--ext=kernel_magics"])
    except PapermillExecutionError as exc:
        return fail(f"cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}", 1)
    except Exception as exc:  # noqa: BLE001 - reported to `ship run`, which explains it
        return fail(f"could not run the notebook: {type(exc).__name__}: {exc}", 2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
