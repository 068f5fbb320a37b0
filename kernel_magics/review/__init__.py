"""Human review (issue 23, work in progress): uncertain and unfamiliar predictions go to
a person within a budget, and their labels come back as feedback.

- serving/review.py   per-row scores computed in the service (confidence, margin,
                      entropy, out-of-distribution)
- policy.py           ``[review]`` of ship.toml, and which rows a day's budget routes
"""
