"""Tracking: a notebook cell becomes a complete MLflow run.

    magics.py ──► capture.TrackedCell.begin() ─► spool (RUNNING record, durable)
                  user's cell runs
                  capture.TrackedCell.finish() ─► spool (final record + files)
                  daemon.ensure_writer() ─► writer process ─► writer.RecordWriter ─► MLflow

Nothing in this package imports IPython; only writer.py and models.log_model import MLflow.
"""
