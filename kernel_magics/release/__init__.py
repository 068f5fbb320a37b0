"""Release: which versions of a service take traffic, changed by hand or by the gate.

    rollout.py     the changes (canary, step, promote, rollback, shadows): release.json,
                   releases.jsonl, MLflow aliases, kserve.yaml and rayserve.py
    gate.py        the statistics: each check with its test and minimum data; decide()
    evidence.py    the prediction log read for the gate, and shadow reports
    controller.py  Gatekeeper (the gate at work inside `ship serve NAME`) and
                   release_view (what `ship deploy NAME` shows)
    report.py      the release as text and HTML

The runtime reads release.json and follows it (serving/release.py, follower.py); this
stage writes it. The services themselves (built versions, the local process) are
kernel_magics/services.py, which monitor/ and cost/ read too. docs/releases.md is the
user's guide.
"""
