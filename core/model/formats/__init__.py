"""One module per model file format, each defining ``load(context) -> ModelDescription``.

Which file is which format (by its extension), and which module loads it, is the table in
:mod:`core.file_formats`; :func:`loader` imports a format's module on first use only, so a
format's library is never loaded for a model of another format.
"""

from __future__ import annotations

import importlib

from core.file_formats import ModelFormat


def loader(fmt: ModelFormat):
    """The module that loads ``fmt``; imported on first use only."""
    return importlib.import_module(f"core.model.formats.{fmt.module}")
