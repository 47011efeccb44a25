"""The base of every spikebatch model."""

from typing import TypeVar

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown fields are errors (a typo in a YAML config names the field instead of
    being ignored), and assignments are validated like construction."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


M = TypeVar("M", bound=BaseModel)


def with_changes(model: M, **changes: object) -> M:
    """A validated copy of ``model`` with ``changes`` applied.

    The fields the user set explicitly stay "set" (nested models too), plus the changed
    ones: profile and namespace-hook merges read ``model_fields_set`` to know what the
    user chose, so a copy must not mark every field as chosen (``model_dump`` without
    ``exclude_unset`` would) nor skip validation (``model_copy`` would).
    """
    return type(model).model_validate({**model.model_dump(exclude_unset=True), **changes})
