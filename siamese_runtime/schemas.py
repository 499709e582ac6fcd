"""The package's JSON schemas (model manifest, bench report) and their validators.

fastjsonschema compiles each schema into Python once, at development time, into `validators/`: checking a
manifest at start-up then costs a fraction of a millisecond and no validator library. After changing a
schema, regenerate with `python -m tests.test_schemas` (needs the [test] extra); a test compares.
"""

from __future__ import annotations

import importlib
from typing import Any

from .validators.errors import JsonSchemaValueException

SCHEMAS = {"manifest": "manifest.schema.json", "bench": "bench/report.schema.json"}  # paths in the package


class SchemaError(ValueError):
    """A document that does not match its schema: where (a/b/c) and what is wrong."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"at {where}: {message}")
        self.where, self.message = where, message


def validate(document: Any, schema: str) -> None:
    """Raise SchemaError unless `document` matches the package's schema `schema` ('manifest' or 'bench')."""
    validator = importlib.import_module(f"{__package__}.validators.{schema}")
    try:
        validator.validate(document)
    except JsonSchemaValueException as error:
        name = error.name or "data"
        where = name.removeprefix("data").removeprefix(".").replace(".", "/") or "(top level)"
        raise SchemaError(where, error.message.removeprefix(f"{name} ")) from None
