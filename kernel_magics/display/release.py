"""`%ship deploy NAME ...`: the release as HTML in a notebook, text elsewhere (the
release stage renders both from ``release_view``'s dictionary)."""

from __future__ import annotations

from typing import Any

from IPython.display import display

RELEASE_MIME = "application/vnd.ship.release+json"


def show_release(view: dict[str, Any]) -> None:
    """Display the release: HTML, text, and the data under its own MIME type."""
    from ..release.report import render_html, render_text

    display({"text/plain": render_text(view), "text/html": render_html(view),
             RELEASE_MIME: {"service": view["service"], "champion": view["champion"],
                            "canary": view["canary"], "shadows": view["shadows"]}},
            raw=True)
