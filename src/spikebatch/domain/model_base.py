"""The base of every spikebatch model."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown fields are errors (a typo in a YAML config names the field instead of
    being ignored), and assignments are validated like construction."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
