"""Field paths and field errors shaped like Kubernetes' own (k8s.io/apimachinery/pkg/util/validation/field).

Users read these in ``kubectl apply``; keeping Kubernetes' wording makes them look like every other
API error they know: ``spec.disks[1].size: Forbidden: disk "data" cannot shrink ...``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class Path:
    text: str = ""

    def child(self, name: str) -> Path:
        return Path(f"{self.text}.{name}" if self.text else name)

    def index(self, i: int) -> Path:
        return Path(f"{self.text}[{i}]")

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


_SHOWS_VALUE = {ErrorType.INVALID, ErrorType.DUPLICATE, ErrorType.NOT_SUPPORTED}
_CAUSE_TYPES = {
    ErrorType.REQUIRED: "FieldValueRequired",
    ErrorType.FORBIDDEN: "FieldValueForbidden",
    ErrorType.INVALID: "FieldValueInvalid",
    ErrorType.DUPLICATE: "FieldValueDuplicate",
    ErrorType.NOT_SUPPORTED: "FieldValueNotSupported",
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
            shown = REDACTED if is_secret(self.path) else self.value
            body += f": {json.dumps(shown) if not isinstance(shown, Path) else shown}"
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


MAX_ERRORS_SHOWN = 20
MAX_ERROR_LENGTH = 1024


def aggregate(errors: list[FieldError]) -> str:
    """One message for all errors, as Kubernetes' ToAggregate prints them; at most ``MAX_ERRORS_SHOWN`` of them,
    each at most ``MAX_ERROR_LENGTH`` characters, so a hostile object cannot make a huge answer or log line."""
    shown = [_bounded(str(e)) for e in errors[:MAX_ERRORS_SHOWN]]
    if len(errors) > MAX_ERRORS_SHOWN:
        shown.append(f"and {len(errors) - MAX_ERRORS_SHOWN} more errors")
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
    if len(errors) > MAX_ERRORS_SHOWN:
        rest = errors[MAX_ERRORS_SHOWN]
        shown.append(
            {
                "reason": rest.cause_type,
                "message": f"and {len(errors) - MAX_ERRORS_SHOWN} more errors",
                "field": _bounded(str(rest.path)),
            }
        )
    return shown


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 15] + "... (truncated)"


def quoted(value: Any) -> str:
    """A value as Kubernetes messages quote it: "data", not Python's 'data'."""
    return json.dumps(value)
