"""`jupyter nbconvert --to ship`: a notebook's serve cells as a service handler.py.

Registered as the nbconvert exporter ``ship`` (entry point in pyproject.toml). The
preprocessor keeps the serve cells (see tracking/serve_cells.py); the template
``templates/ship/index.py.j2`` lays them out as a Python module.
"""

from __future__ import annotations

from typing import Any

from nbconvert.exporters import TemplateExporter
from nbconvert.preprocessors import Preprocessor
from traitlets import default

from ..tracking.serve_cells import is_serve_cell, serve_source
from .templates import templates_dir


class ShipServePreprocessor(Preprocessor):
    """Keep only serve cells, without their `%%ship serve` line."""

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        kept: list[Any] = []
        for cell in nb.cells:
            if is_serve_cell(cell):
                cell.source = serve_source(cell)
                cell.metadata.setdefault("ship", {})["index"] = len(kept) + 1
                kept.append(cell)
        nb.cells = kept
        resources.setdefault("ship", {})["serve_cells"] = len(kept)
        return nb, resources


class ShipExporter(TemplateExporter):
    """Exports a notebook's serve cells as handler.py."""

    export_from_notebook = "Ship service handler"
    output_mimetype = "text/x-python"

    @default("file_extension")
    def _file_extension_default(self) -> str:
        return ".py"

    @default("template_name")
    def _template_name_default(self) -> str:
        return "ship"

    @default("extra_template_basedirs")
    def _extra_template_basedirs_default(self) -> list[str]:
        return [str(templates_dir())]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.register_preprocessor(ShipServePreprocessor, enabled=True)  # type: ignore[no-untyped-call]
