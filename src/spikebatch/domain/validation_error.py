"""JobSpecValidationError: a job spec that failed validation, as both our ConfigError
(one line, exit 2) and pydantic's ValidationError (what the reference's
``validate_job_spec`` raises). Kept apart from ``errors`` so that importing the other
error classes loads no pydantic."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from .errors import ConfigError


class JobSpecValidationError(ConfigError, ValidationError):
    """A job spec payload failed validation; ``problems`` has one line per field.

    Also a pydantic ``ValidationError`` (what the reference's ``validate_job_spec``
    raises): ``errors()`` lists each problem with its ``loc`` and ``msg`` (field paths
    as a user reads them, input values never included), ``title`` names the model.
    ``str()`` stays our one line.
    """

    def __new__(cls, problems: Any, *args: Any, **kwargs: Any) -> "JobSpecValidationError":
        if isinstance(problems, str):
            # pydantic's own construction (from_exception_data below): (title, line errors, ...).
            return ValidationError.__new__(cls, problems, *args, **kwargs)
        details: Optional[List[Tuple[Tuple[Any, ...], str, str]]] = kwargs.get("details", args[0] if args else None)
        title: str = kwargs.get("title", args[1] if len(args) > 1 else "JobSpec")
        if details is None:
            details = [((), "value_error", problem) for problem in problems]
        line_errors = [
            # No context is given, so pydantic keeps braces in the message as they are.
            {"type": PydanticCustomError(kind, message),
             "loc": tuple(loc), "input": None}
            for loc, kind, message in details
        ]
        return cls.from_exception_data(title, line_errors, hide_input=True)

    def __init__(self, problems: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(problems, str):
            return  # pydantic's own construction; the outer call sets the message
        self.problems = list(problems)
        ConfigError.__init__(self, "; ".join(self.problems) if self.problems else "invalid job spec")

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"
