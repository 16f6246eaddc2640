"""The project's error types and the words they carry; ground floor, imported from anywhere.

Code a user can misuse raises :class:`UserError` (its message names the file or value and says
what to do); the command line (:mod:`lipnb.cli.errors`) prints it as one ``error: ...`` line.
Messages never pass on torch's advice to load with ``weights_only=False``.
"""

from __future__ import annotations

import math
import numbers


class UserError(Exception):
    """A bad input the user can fix: the message names the file or value and says what to do."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 2):
    """Raise :class:`UserError` (``lipnb`` prints ``error: <message>`` and exits with ``code``)."""
    raise UserError(message, code)


def raise_all(problems: list) -> None:
    """Raise one :class:`UserError` whose text is one ``error:`` line per problem (none: return)."""
    problems = [p for p in problems if p]
    if problems:
        raise UserError("\nerror: ".join(problems))


def first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def checkpoint_load_reason(error: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in words, without torch's unsafe advice."""
    text = str(error)
    if "weights_only" in text or "Weights only load failed" in text or type(error).__name__ == "UnpicklingError":
        return ("the file is damaged, or is not a PyTorch checkpoint, or holds objects other than tensors "
                "and plain values (refused for safety)")
    if "zip archive" in text or "PytorchStreamReader" in text:
        return "the file is damaged or truncated (not a complete PyTorch zip archive)"
    if isinstance(error, EOFError) or "Ran out of input" in text:
        return "the file is empty or truncated"
    return first_line(text) or type(error).__name__


# ----------------------------------------------------------------------------- value checks: the message, or None


def count_problem(label: str, value, minimum: int) -> str | None:
    """``None`` if ``value`` is an integer >= ``minimum``, else the message."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return f"{label} {value!r}: must be an integer >= {minimum}"
    if value < minimum:
        return f"{label} {value}: must be >= {minimum}"
    return None


def positive_problem(label: str, value) -> str | None:
    """``None`` if ``value`` is a finite number > 0, else the message."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or not value > 0:
        return f"{label} {value!r}: must be a finite number > 0"
    return None


def count_problems(checks) -> list[str]:
    """``[(label, value, minimum), ...]`` -> the messages of the bad ones."""
    return [m for m in (count_problem(*c) for c in checks) if m]
