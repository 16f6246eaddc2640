"""User-facing errors of the command line: one line on stderr, ``error: ...``, exit code 2.

Code raises :class:`UserError` (or the project's own error types, whose messages name the
file); :func:`report` turns any exception into that one line, with a traceback only under
``--debug``. Messages never pass on torch's advice to load with ``weights_only=False``.
"""

from __future__ import annotations

import sys


class UserError(Exception):
    """A bad input the user can fix: the message names the file or value and says what to do."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 2):
    """Raise :class:`UserError` (``lipnb`` prints ``error: <message>`` and exits with ``code``)."""
    raise UserError(message, code)


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


def first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


# errors whose messages are written for users (they name the file): printed as they are
def _expected_types() -> tuple:
    from lipnb.data.davis import DavisFormatError

    types = [UserError, DavisFormatError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
             PermissionError]
    try:  # torch-free commands (evaluate) do not import the checkpoint module
        from lipnb.online.checkpoint import CheckpointError

        types.append(CheckpointError)
    except Exception:  # noqa: BLE001
        pass
    return tuple(types)


def report(error: BaseException, debug: bool = False) -> int:
    """Print ``error`` as one ``error:`` line on stderr; return the exit code (re-raise under ``debug``)."""
    if debug:
        raise error
    code = getattr(error, "code", None) if isinstance(error, UserError) else None
    if isinstance(error, _expected_types()):
        message = str(error) if isinstance(error, UserError) else _without_advice(str(error))
    elif isinstance(error, (ValueError, OSError, KeyError, RuntimeError)):
        message = _without_advice(first_line(error.args[0] if isinstance(error, KeyError) and error.args
                                             else str(error))) + " (rerun with --debug for the traceback)"
    else:
        message = (f"unexpected {type(error).__name__}: {_without_advice(first_line(str(error)))} "
                   "(rerun with --debug for the traceback)")
    print(f"error: {message}", file=sys.stderr)
    return code or (1 if not isinstance(error, UserError) else 2)


def _without_advice(text: str) -> str:
    if "weights_only" in text:
        head = text.split(":", 1)[0] if "cannot load checkpoint" in text else "cannot load a checkpoint"
        return f"{head}: {checkpoint_load_reason(ValueError(text))}"
    return text
