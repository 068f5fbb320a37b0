"""The prediction log: every request a service answers, as Parquet anywhere.

    format.py    the contract: the record, file layout, schema and its version
    storage.py   where a log lives (any filesystem pyarrow or fsspec knows)
    writer.py    PredictionLog: requests in memory, segments off the request path
    reader.py    the one reader: ship logs, traffic, feedback, usage, drift's version
    compact.py   an hour's segments merged into one file
    requests.py  which request ids feedback may name

Nothing here imports the rest of the runtime but its input and schema types, so the
log can be read without serving (DuckDB is imported by the reader when it runs).
"""

from __future__ import annotations

from .compact import CompactResult, compact_log
from .format import SCHEMA_VERSION, Prediction
from .reader import (
    Answer,
    LogEntry,
    parse_duration,
    parse_since,
    read_answers,
    read_feedback,
    read_log,
    read_outcomes,
    read_timeline,
    read_usage,
)
from .requests import RequestIndex
from .storage import LogLocation, register_filesystem
from .writer import PredictionLog

__all__ = ["SCHEMA_VERSION", "Answer", "CompactResult", "LogEntry", "LogLocation", "Prediction",
           "PredictionLog", "RequestIndex", "compact_log", "parse_duration", "parse_since",
           "read_answers", "read_feedback", "read_log", "read_outcomes", "read_timeline",
           "read_usage",
           "register_filesystem"]
