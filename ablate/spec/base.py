"""What every spec section shares: strict models and the seed range."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ablate.spec.limits import reject_booleans

# Seeds must suit every generator they feed (numpy's legacy seeding takes 0..2**32-1).
MAX_SEED = 2**32 - 1
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Split = Literal["train", "val", "test"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        assert info.field_name is not None
        reject_booleans(cls.model_fields[info.field_name].annotation, value)
        return value
