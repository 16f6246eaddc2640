"""Nothing lost, nothing mixed: where a command may write, and how its output replaces older output.

- :func:`check_out_apart`: an output folder that is, contains or lies inside an input is refused
  before any work (a command must never write over its frames, masks, data or results). Paths
  are compared resolved (symbolic links followed at every component), and so are the symbolic
  links inside an input folder (a DAVIS root whose ``Annotations`` is a link to another disk).
- :func:`out_lock`: an advisory lock (``flock``) on an output folder, held for the whole run in
  ``<out>.lock`` beside it (which records the holder's pid); a second run into the same folder
  is refused naming that pid, and a lock file left by a killed process is taken over with a note.
- :func:`check_out_free`: a non-empty output folder is replaced only with ``--overwrite``.
- :class:`StagedFolder`: outputs are written to a hidden staging folder beside ``out`` and swapped
  in when the run succeeds; a failed or interrupted run (an exception, Ctrl-C, SIGTERM) leaves
  ``<out>.partial/`` with a ``FAILED.txt`` mark, and the previous ``out`` untouched.
  :func:`recover_stagings` turns the hidden staging folder of a killed run (``kill -9``: no
  chance to clean up) into that visible partial folder.
- :func:`signals_as_exceptions`: SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``,
  as Ctrl-C does), so that every ``with`` block unwinds: partial outputs are marked, locks freed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import sys
from pathlib import Path

from lipnb.errors import UserError

FAILED_MARK = "FAILED.txt"
LINK_WALK_LIMIT = 200_000  # entries looked at for symbolic links inside one input folder


# ----------------------------------------------------------------------------- outputs apart from inputs


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _resolve(path) -> Path:
    try:
        return Path(path).expanduser().resolve()
    except (OSError, RuntimeError):  # a symbolic link loop: compared as written
        return Path(path).expanduser().absolute()


def linked_paths(folder: str | os.PathLike, limit: int = LINK_WALK_LIMIT) -> list[tuple[Path, Path]]:
    """``(link, resolved target)`` of every symbolic link under ``folder``, linked folders walked too
    (each real folder once, so loops end); stops after ``limit`` entries."""
    found, seen, stack, looked = [], {_resolve(folder)}, [Path(folder)], 0
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                looked += 1
                if looked > limit:
                    return found
                try:
                    if entry.is_symlink():
                        target = _resolve(entry.path)
                        found.append((Path(entry.path), target))
                        if target.is_dir() and target not in seen:
                            seen.add(target)
                            stack.append(Path(entry.path))
                    elif entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                except OSError:
                    continue
    return found


def _protected(path) -> list[tuple[Path, Path | None]]:
    """``(resolved path, link or None)``: an input, resolved, and the targets of the links inside it."""
    resolved = _resolve(path)
    out = [(resolved, None)]
    if resolved.is_dir():
        out += [(target, link) for link, target in linked_paths(path)]
    return out


def check_out_apart(out: str | os.PathLike, inputs: dict, flag: str = "--out", contains: bool = True) -> Path:
    """Refuse ``out`` if it is, contains or lies inside one of ``inputs`` ({option: path}), or a
    folder a symbolic link inside an input leads to; files count by themselves (``out`` may not be
    them nor hold them). ``contains=False``: an ``out`` holding an input is allowed (a command that
    only adds files to ``out`` and never replaces it). Returns ``out`` resolved."""
    out_r = _resolve(out)
    for option, path in inputs.items():
        if path is None:
            continue
        for target, link in _protected(path):
            via = f" (through its link {link} -> {target})" if link is not None else ""
            if out_r == target or (target.is_dir() and _inside(out_r, target)):
                raise UserError(f"{flag} {out} is inside the {option} input {path}{via}: writing there would "
                                f"overwrite the inputs; choose an {flag} folder outside {path}")
            if contains and _inside(target, out_r):
                raise UserError(f"{flag} {out} contains the {option} input {path}{via}: replacing {out} would "
                                f"delete it; choose an {flag} folder that holds none of the inputs")
    return out_r


def data_folders(option: str, value) -> dict:
    """``{label: folder}`` of a data value (``procedural``, ``coco_tiny``, ``davis2016``, a path, or
    several joined with ``+``): the folders it reads, for :func:`check_out_apart`."""
    from lipnb import paths

    folders = {}
    for name in str(value).split("+") if isinstance(value, str) and value else []:
        if name == "procedural":
            from lipnb.data.procedural import DEFAULT_CACHE

            folders[f"{option} procedural"] = DEFAULT_CACHE if DEFAULT_CACHE.exists() else None
        elif name in ("coco_tiny", "davis2016"):
            root = paths.coco_root() if name == "coco_tiny" else paths.davis2016_root()
            folders[f"{option} {name}"] = root if root.exists() else None
        else:
            path = Path(name).expanduser()
            path = path if path.exists() else paths.REPO_ROOT / path
            folders[f"{option} {name}" if "+" in value else option] = path if path.exists() else None
    return folders


def check_out_free(out: str | os.PathLike, overwrite: bool, flag: str = "--out", resume_hint: str = "") -> None:
    """Refuse an ``out`` that is a file, or a non-empty folder unless ``overwrite``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag} {out} is a file, not a folder; choose a folder")
    if overwrite or not out.is_dir():
        return
    entries = sorted(p.name for p in out.iterdir())
    if entries:
        shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
        raise UserError(f"{flag} {out} already holds an earlier run ({shown}); pass --overwrite to replace it"
                        f"{resume_hint}, or choose an empty folder")


# ----------------------------------------------------------------------------- one run per output


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def lock_path(out: str | os.PathLike) -> Path:
    """Where the lock of ``out`` lives: ``<out>.lock`` beside it (never inside the output)."""
    out = _resolve(out)
    return out.with_name(f"{out.name}.lock")


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        return int(text.split()[0]) if text else None
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def out_lock(out: str | os.PathLike, flag: str = "--out"):
    """``with out_lock(out): ...``: hold an exclusive ``flock`` on ``<out>.lock`` (which holds this
    pid) for the block, or raise :class:`UserError` naming the pid of the run that holds it. A lock
    file naming a process that no longer holds it (killed) is taken over, with one ``note:`` line.
    The lock file is removed when the block ends. Yields ``out`` resolved."""
    import fcntl

    out_r = _resolve(out)
    lock = lock_path(out_r)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_pid(fd)
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise UserError(f"{flag} {out} is in use by another lipnb run (process {holder or 'unknown'}, lock "
                            f"{lock}); wait for it to end, or choose another {flag}") from None
        try:  # the file may have been removed by the run that held it just before: lock the new one
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        earlier = _read_pid(fd)
        if earlier is not None and earlier != os.getpid():
            state = "no longer running" if not pid_alive(earlier) else "no longer holding it"
            print(f"note: took over the stale lock {lock} of process {earlier} ({state}: a killed run); "
                  f"check {out_r} and any {out_r.name}.partial beside it", file=sys.stderr)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield out_r
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


# ----------------------------------------------------------------------------- interrupted runs


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP), raised like Ctrl-C's KeyboardInterrupt so that the run unwinds."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def interrupt_name(error: BaseException) -> str:
    if isinstance(error, Terminated):
        return f"terminated by {signal.Signals(error.signum).name}"
    return "interrupted by Ctrl-C (SIGINT)"


def interrupt_code(error: BaseException) -> int:
    return 128 + (error.signum if isinstance(error, Terminated) else signal.SIGINT)


@contextlib.contextmanager
def signals_as_exceptions():
    """Within the block SIGTERM and SIGHUP raise :class:`Terminated` (the main thread only;
    elsewhere a no-op). Earlier handlers come back afterwards."""
    def raise_terminated(signum, frame):
        raise Terminated(signum)

    saved = {}
    try:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is not signal.SIG_IGN:
                saved[signum] = signal.signal(signum, raise_terminated)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def partial_path(out: Path) -> Path:
    return out.with_name(f"{out.name}.partial")


def _free_name(path: Path) -> Path:
    n = 2
    while path.with_name(f"{path.name}-{n}").exists():
        n += 1
    return path.with_name(f"{path.name}-{n}")


def recover_stagings(out: str | os.PathLike, resume_hint: str = "") -> Path | None:
    """Run while holding ``out``'s lock, before a run into ``out``: the hidden staging folders
    ``.<out>.staging-<pid>`` whose process is gone (``kill -9``, out of memory, power loss) become
    visible: the newest unfinished run (they and ``<out>.partial``) is ``<out>.partial``, marked
    ``FAILED.txt``, older ones ``<out>.partial-2``, ... Each is named in a ``note:`` line; nothing is
    deleted. Returns ``<out>.partial`` if it exists."""
    out = _resolve(out)
    partial = partial_path(out)
    dead = []
    for folder in out.parent.glob(f".{out.name}.staging-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if folder.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            dead.append(folder)
    if not dead:
        if partial.is_dir():
            print(f"note: {partial} holds an unfinished earlier run ({_mark_text(partial)}){resume_hint}",
                  file=sys.stderr)
        return partial if partial.is_dir() else None
    found = sorted(dead + ([partial] if partial.is_dir() else []), key=lambda p: p.stat().st_mtime, reverse=True)
    if partial.is_dir() and found[0] != partial:
        aside = _free_name(partial)
        os.rename(partial, aside)
        print(f"note: moved the older unfinished run {partial} to {aside}", file=sys.stderr)
        found = [aside if p == partial else p for p in found]
    for i, folder in enumerate(found):
        if folder.name.startswith("."):
            pid = folder.name.rsplit("-", 1)[-1]
            mark = folder / FAILED_MARK
            if not mark.exists():
                mark.write_text(f"this run was killed (process {pid} ended without cleaning up: kill -9, out of "
                                "memory or power loss) and is incomplete\n")
            target = partial if i == 0 else _free_name(partial)
            os.rename(folder, target)
            print(f"note: found {folder}, left by process {pid} that was killed; kept it as {target} (marked "
                  f"{FAILED_MARK})" + (resume_hint if i == 0 else ""), file=sys.stderr)
    return partial


def _mark_text(folder: Path) -> str:
    try:
        return (folder / FAILED_MARK).read_text().strip().splitlines()[0]
    except (OSError, IndexError):
        return f"no {FAILED_MARK}"


class StagedFolder:
    """``with StagedFolder(out) as stage: ...write into stage...``: on success ``stage`` replaces
    ``out`` (old ``out`` moved aside, new one renamed in, old one deleted); on an exception, Ctrl-C
    or SIGTERM it becomes ``<out>.partial/`` (an older partial folder is replaced) with ``FAILED.txt``
    naming the error, and the exception's message is extended with where the partial output is
    (for an interruption, its ``partial_note`` attribute holds that text).

    ``resume_from``: a folder (``<out>.partial``) whose content the run continues from."""

    def __init__(self, out: str | os.PathLike, resume_from: Path | None = None):
        self.out = Path(out).absolute()
        self.staging = self.out.with_name(f".{self.out.name}.staging-{os.getpid()}")
        self.partial = partial_path(self.out)
        self.resume_from = resume_from

    def __enter__(self) -> Path:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.resume_from is not None:
            os.rename(self.resume_from, self.staging)
            (self.staging / FAILED_MARK).unlink(missing_ok=True)
        else:
            self.staging.mkdir()
        return self.staging

    def __exit__(self, kind, error, tb) -> bool:
        if error is None:
            old = self.out.with_name(f".{self.out.name}.previous-{os.getpid()}")
            if self.out.exists():
                os.rename(self.out, old)
            os.rename(self.staging, self.out)
            shutil.rmtree(old, ignore_errors=True)
            return False
        if self.staging.exists():
            shutil.rmtree(self.partial, ignore_errors=True)
            if isinstance(error, KeyboardInterrupt):
                what = f"this run was {interrupt_name(error)} and is incomplete"
            else:
                what = f"this run failed and is incomplete: {type(error).__name__}: {error}"
            (self.staging / FAILED_MARK).write_text(what + "\n")
            os.rename(self.staging, self.partial)
            note = (f"; partial output kept in {self.partial} (marked {FAILED_MARK})"
                    + (f", earlier output left untouched in {self.out}" if self.out.exists() else ""))
            if isinstance(error, Exception) and error.args and isinstance(error.args[0], str):
                error.args = (error.args[0] + note, *error.args[1:])
            else:
                with contextlib.suppress(AttributeError, TypeError):
                    error.partial_note = note
        return False
