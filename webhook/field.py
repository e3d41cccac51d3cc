"""Field paths and field errors shaped like Kubernetes' own (k8s.io/apimachinery/pkg/util/validation/field).

Users read these in ``kubectl apply``; keeping Kubernetes' wording makes them look like every other
API error they know: ``spec.disks[1].size: Forbidden: disk "data" cannot shrink ...``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from itertools import islice
from typing import Any


@dataclass(frozen=True)
class Path:
    text: str = ""

    def child(self, name: str) -> Path:
        return Path(f"{self.text}.{name}" if self.text else name)

    def index(self, i: int) -> Path:
        return Path(f"{self.text}[{i}]")

    @classmethod
    def of(cls, steps: Iterable[str | int]) -> Path:
        path = cls()
        for step in steps:
            path = path.index(step) if isinstance(step, int) else path.child(step)
        return path

    def __str__(self) -> str:
        return self.text


SPEC = Path("spec")
REDACTED = "(redacted)"


def is_secret(path: Path) -> bool:
    """Whether a field holds a secret (``password``, ``passwordHash``, any field named after a password)."""
    return "password" in str(path).rpartition(".")[2].lower()


DISKS = SPEC.child("disks")


class ErrorType(Enum):
    REQUIRED = "Required value"
    FORBIDDEN = "Forbidden"
    INVALID = "Invalid value"
    DUPLICATE = "Duplicate value"
    NOT_SUPPORTED = "Unsupported value"
    TOO_MANY = "Too many"
    TOO_LONG = "Too long"


_SHOWS_VALUE = {ErrorType.INVALID, ErrorType.DUPLICATE, ErrorType.NOT_SUPPORTED, ErrorType.TOO_MANY}
_CAUSE_TYPES = {
    ErrorType.REQUIRED: "FieldValueRequired",
    ErrorType.FORBIDDEN: "FieldValueForbidden",
    ErrorType.INVALID: "FieldValueInvalid",
    ErrorType.DUPLICATE: "FieldValueDuplicate",
    ErrorType.NOT_SUPPORTED: "FieldValueNotSupported",
    ErrorType.TOO_MANY: "FieldValueTooMany",
    ErrorType.TOO_LONG: "FieldValueTooLong",
}


@dataclass(frozen=True)
class FieldError:
    type: ErrorType
    path: Path
    detail: str = ""
    value: Any = None

    @property
    def message(self) -> str:
        """What follows the path: ``Forbidden: disk "data" cannot shrink ...`` (a StatusCause's message). The value
        of a password field is never shown: denials reach kubectl, logs and audit logs."""
        body = self.type.value
        if self.type in _SHOWS_VALUE:
            body += f": {_shown(REDACTED if is_secret(self.path) else self.value)}"
        return f"{body}: {self.detail}" if self.detail else body

    @property
    def cause_type(self) -> str:
        """metav1.CauseType of this error, as Kubernetes' own field errors report it."""
        return _CAUSE_TYPES[self.type]

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def required(path: Path, detail: str) -> FieldError:
    return FieldError(ErrorType.REQUIRED, path, detail)


def forbidden(path: Path, detail: str) -> FieldError:
    return FieldError(ErrorType.FORBIDDEN, path, detail)


def invalid(path: Path, value: Any, detail: str) -> FieldError:
    return FieldError(ErrorType.INVALID, path, detail, value)


def duplicate(path: Path, value: Any, detail: str = "") -> FieldError:
    return FieldError(ErrorType.DUPLICATE, path, detail, value)


def not_supported(path: Path, value: Any, allowed: Iterable[Any]) -> FieldError:
    supported = ", ".join(quoted(v) for v in allowed)
    return FieldError(ErrorType.NOT_SUPPORTED, path, f"supported values: {supported}", value)


def too_many(path: Path, actual: int, limit: int) -> FieldError:
    """Kubernetes' ``field.TooMany``: ``spec.disks: Too many: 300000: must have at most 16 items``."""
    return FieldError(ErrorType.TOO_MANY, path, f"must have at most {limit} item{'s' if limit != 1 else ''}", actual)


def too_long(path: Path, limit: int, unit: str = "characters") -> FieldError:
    """Kubernetes' ``field.TooLong``, which never repeats the value: ``Too long: may not be more than 64 ...``."""
    return FieldError(ErrorType.TOO_LONG, path, f"may not be more than {limit} {unit}")


MAX_ERRORS_SHOWN = 20
MAX_ERRORS_KEPT = MAX_ERRORS_SHOWN + 1  # the first one not shown names where the rest begin
MAX_ERROR_LENGTH = 1024
MAX_VALUE_SHOWN = 256  # characters of a string value an error quotes


class FieldErrors(list[FieldError]):
    """Field errors as they are gathered: the first ``MAX_ERRORS_KEPT`` are kept and the rest only counted
    (``omitted``), so an object that breaks a rule a million times costs a counter, not a million messages. A
    plain list of field errors reads as one with nothing omitted."""

    def __init__(self, errors: Iterable[FieldError] = ()) -> None:
        super().__init__()
        self.omitted = 0
        self.extend(errors)

    def append(self, error: FieldError) -> None:
        self.extend((error,))

    def extend(self, errors: Iterable[FieldError]) -> None:
        remaining = iter(errors)
        super().extend(islice(remaining, max(0, MAX_ERRORS_KEPT - len(self))))
        self.omitted += sum(1 for _ in remaining)

    def __iadd__(self, errors: Iterable[FieldError]) -> FieldErrors:  # type: ignore[override, misc]
        self.extend(errors)
        return self


def count(errors: list[FieldError]) -> int:
    """How many errors were found, kept or not."""
    return len(errors) + (errors.omitted if isinstance(errors, FieldErrors) else 0)


def aggregate(errors: list[FieldError]) -> str:
    """One message for all errors, as Kubernetes' ToAggregate prints them; at most ``MAX_ERRORS_SHOWN`` of them,
    each at most ``MAX_ERROR_LENGTH`` characters, so a hostile object cannot make a huge answer or log line."""
    shown = [_bounded(str(e)) for e in errors[:MAX_ERRORS_SHOWN]]
    if count(errors) > MAX_ERRORS_SHOWN:
        shown.append(f"and {count(errors) - MAX_ERRORS_SHOWN} more errors")
    if len(shown) == 1:
        return shown[0]
    return "[" + ", ".join(shown) + "]"


def causes(errors: list[FieldError]) -> list[dict[str, str]]:
    """metav1.StatusCauses for a 422 Invalid status: kubectl prints them as ``path: message`` lines. Bounded
    like ``aggregate``."""
    shown = [
        {"reason": e.cause_type, "message": _bounded(e.message), "field": _bounded(str(e.path))}
        for e in errors[:MAX_ERRORS_SHOWN]
    ]
    if count(errors) > MAX_ERRORS_SHOWN:
        rest = errors[MAX_ERRORS_SHOWN]
        shown.append(
            {
                "reason": rest.cause_type,
                "message": f"and {count(errors) - MAX_ERRORS_SHOWN} more errors",
                "field": _bounded(str(rest.path)),
            }
        )
    return shown


def kubectl_message(kind: str, name: str, errors: list[FieldError]) -> str:
    """What ``kubectl apply`` prints for a 422 Invalid with these errors as causes (kubectl's
    ``StandardErrorMessage`` and ``MultilineError``): one line for one error, else the prefix and a ``*`` line per
    cause. So the offline checker's verdict reads as the one the pipeline's later ``kubectl apply`` meets."""
    prefix = f"The {kind} {quoted(name)} is invalid: "
    lines = [f"{c['field']}: {c['message']}" for c in causes(errors)]
    if len(lines) == 1:
        return prefix + lines[0]
    return "\n".join([prefix, *(f"* {line}" for line in lines)])


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 15] + "... (truncated)"


def _shown(value: Any) -> str:
    """A value as an error quotes it; a long string only in part, saying how long it is (quoting megabytes to
    keep a line is work and memory for nothing, and a line to read)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str) and len(value) > MAX_VALUE_SHOWN:
        return f"{json.dumps(value[:MAX_VALUE_SHOWN])}... ({len(value)} characters)"
    return json.dumps(value)


def quoted(value: Any) -> str:
    """A value as Kubernetes messages quote it: "data", not Python's 'data'."""
    return json.dumps(value)
