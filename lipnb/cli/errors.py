"""User-facing errors of the command line: one line on stderr, ``error: ...``, exit code 2.

Code raises :class:`~lipnb.errors.UserError` (or the project's own error types, whose messages
name the file); :func:`report` turns any exception into that one line, with a traceback only
under ``--debug``. Messages never pass on torch's advice to load with ``weights_only=False``.
"""

from __future__ import annotations

import sys

from lipnb.errors import UserError, checkpoint_load_reason, first_line


# errors whose messages are written for users (they name the file): printed as they are
def _expected_types() -> tuple:
    from lipnb.data.davis import DavisFormatError

    types = [UserError, DavisFormatError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
             PermissionError]
    try:  # torch-free commands (evaluate) do not import the COCO reader
        from lipnb.data.coco import CocoFormatError

        types.append(CocoFormatError)
    except Exception:  # noqa: BLE001
        pass
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
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        message = os_error_message(error) + getattr(error, "partial_note", "")  # a write failure: the path
    elif isinstance(error, _expected_types()):
        message = str(error) if isinstance(error, UserError) else _without_advice(str(error))
    elif isinstance(error, (ValueError, OSError, KeyError, RuntimeError)):
        message = _without_advice(first_line(error.args[0] if isinstance(error, KeyError) and error.args
                                             else str(error))) + " (rerun with --debug for the traceback)"
    else:
        message = (f"unexpected {type(error).__name__}: {_without_advice(first_line(str(error)))} "
                   "(rerun with --debug for the traceback)")
    print(f"error: {message}", file=sys.stderr)
    return code or (1 if not isinstance(error, UserError) else 2)


def os_error_message(error: OSError) -> str:
    """``cannot write PATH: No space left on device (...)``: an OSError with its path(s) and advice."""
    import errno

    paths = str(error.filename) + (f" -> {error.filename2}" if getattr(error, "filename2", None) else "")
    advice = {errno.ENOSPC: "free space on that disk or choose an output folder on another one",
              errno.EDQUOT: "free space within your quota or choose an output folder on another disk",
              errno.EROFS: "the file system is read-only; choose an output folder on a writable disk",
              errno.EACCES: "you lack the permission; change it or choose another folder",
              errno.EPERM: "the operation is not permitted there; change the permission or choose another folder",
              errno.ENOENT: "check the path",
              errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
              errno.EISDIR: "it is a folder; give a file",
              errno.ELOOP: "it is a symbolic link loop; fix or remove the link",
              errno.ENAMETOOLONG: "choose a shorter path"}.get(error.errno, "check the path and the disk")
    return f"{paths}: {error.strerror} ({advice})"


def _without_advice(text: str) -> str:
    if "weights_only" in text:
        head = text.split(":", 1)[0] if "cannot load checkpoint" in text else "cannot load a checkpoint"
        return f"{head}: {checkpoint_load_reason(ValueError(text))}"
    return text
