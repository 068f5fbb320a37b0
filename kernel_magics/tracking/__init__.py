"""Tracking: a notebook cell becomes a complete MLflow run.

    magics.py ──► capture.TrackedCell.begin() ─► spool (RUNNING record, durable)
                  user's cell runs
                  capture.TrackedCell.finish() ─► spool (final record + files)
                  daemon.ensure_writer() ─► writer process ─► writer.RecordWriter ─► MLflow

Reading runs back (the REST API's view): catalog.py lists them (spool + MLflow),
detail.py shows one, compare.py puts several side by side; mlflow_store.reader_for picks
how to read the store (sqlite_store: plain SQL on a sqlite file; client_store: MlflowClient),
both answering in stored.py's types.

Nothing in this package imports IPython. MLflow is imported by writer.py and
models.log_model, and by the readers only for stores that are not a sqlite file
(and for artifacts that are not local files).
"""
