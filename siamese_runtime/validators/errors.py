"""The exceptions the generated validators raise, so that running them needs no fastjsonschema import."""

from __future__ import annotations


class JsonSchemaValueException(ValueError):
    """A value that breaks its schema: `message`, and `name`, the path to it (data.a.b)."""

    def __init__(self, message: str, value: object = None, name: str | None = None, definition: object = None,
                 rule: str | None = None) -> None:
        super().__init__(message)
        self.message, self.value, self.name, self.definition, self.rule = message, value, name, definition, rule


class JsonSchemaValuesException(ValueError):
    """Several broken values (fastjsonschema's fast_fail=False, which the generated validators do not use)."""
