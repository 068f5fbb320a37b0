"""Notebook display: what the magics show in a notebook, drawn from the stages' data.

    summary.py   a tracked cell's run summary: a widget, updated once the run is written
    drift.py     `%ship drift`: the drift report as a widget (bars, feature picker,
                 histograms)

An adapter like magics.py, and with it the only code that imports IPython's display or
ipywidgets: the core stages return plain data (records, ``DriftReport.to_json()``) and
text or HTML; this package renders them. Each view carries text and HTML fallbacks for
front ends without widgets (papermill, nbconvert, a terminal).
"""
