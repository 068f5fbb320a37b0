"""Retraining: the loop closes (DESIGN.md, "Retraining").

- data.py       the prediction log's labelled rows as a training set (``ship_new_data``)
- gate.py       champion vs challenger: recent rows and historical holdout, paired
                bootstrap intervals, the decision
- scoring.py    both versions scored as they are served
- retrain.py    `ship retrain NAME`: data → notebook run → build → gate → canary
- watch.py      `ship watch NAME`: drift / accuracy → retrain, with back-off
- events.py     the loop's events (``loop.jsonl``), for the sidebar and ``--status``
- settings.py   ``[loop]`` of ship.toml
"""
