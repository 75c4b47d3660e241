"""What every spec section shares: strict models, the seed range, and names checked against
a registry."""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationInfo,
    field_validator,
)
from pydantic_core import core_schema

from ablate.spec.limits import reject_booleans

# Seeds must suit every generator they feed (numpy's legacy seeding takes 0..2**32-1).
MAX_SEED = 2**32 - 1
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Split = Literal["train", "val", "test"]


class _Strict(BaseModel):
    # attribute docstrings: every key's meaning (Field.description; docs/spec.md lists them)
    model_config = ConfigDict(extra="forbid", validate_assignment=True,
                              use_attribute_docstrings=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        assert info.field_name is not None
        reject_booleans(cls.model_fields[info.field_name].annotation, value)
        return value


@dataclass(frozen=True)
class Registry:
    """Annotates a text key whose value must name an entry of a registry in a layer above
    the spec (``module``'s dict ``attribute``). The registry is read when a value is
    validated, never when the spec is imported, so the spec's layer stays below it."""

    module: str
    attribute: str
    what: str  # the entries, in words ("design kind")

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(getattr(importlib.import_module(self.module), self.attribute))

    def check(self, value: str) -> str:
        names = self.names()
        if value not in names:
            close = difflib.get_close_matches(value, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"'{value}' is not a {self.what}{hint}; choose one of: "
                             f"{', '.join(names)}")
        return value

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))
