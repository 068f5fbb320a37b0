"""Human review: uncertain and unfamiliar predictions go to a person within a budget, and
their labels come back as feedback (docs/review.md).

- serving/review.py   per-row scores computed in the service for every prediction
                      (confidence, margin, entropy, out-of-distribution), in the log
- policy.py           ``[review]`` of ship.toml, and which rows a day's budget routes
- queue.py            the queue, built from the log (routed rows without a label)
- labels.py           a person's labels, written as the request's feedback
- labelstudio.py      the queue as Label Studio tasks, and its export read back
"""
