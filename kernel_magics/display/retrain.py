"""`%ship retrain NAME` and `%ship watch NAME --status`: the retraining's decision with the
gate's checks as HTML in a notebook (text elsewhere), and the loop's status as text
(``retrain/report.py`` renders both from the `--json` documents)."""

from __future__ import annotations

from typing import Any

from IPython.display import display

from ..jsonable import plain

RETRAIN_MIME = "application/vnd.ship.retrain+json"
LOOP_MIME = "application/vnd.ship.loop+json"


def show_retrain(doc: dict[str, Any]) -> None:
    """Display a retraining (``RetrainResult.to_json()``): HTML, text, and the document
    under its own MIME type."""
    from ..retrain.report import render_html, render_text

    display({"text/plain": render_text(doc), "text/html": render_html(doc),
             RETRAIN_MIME: plain(doc)}, raw=True)


def show_loop_status(doc: dict[str, Any]) -> None:
    """Display ``watch_status``'s document: text, and the document under its own MIME type."""
    from ..retrain.report import render_status

    display({"text/plain": render_status(doc), LOOP_MIME: plain(doc)}, raw=True)
