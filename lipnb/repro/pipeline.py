"""The reproduction runner: the five notebooks in order, with papermill, into ``results/<profile>/``.

    run_pipeline("smoke")                                   # make reproduce
    run_pipeline("davis-cpu", overrides={"pretrain_iters": 20})

Each run executes into a staging folder ``results/.staging-<profile>/`` (checkpoints under its
``work/``); only when every notebook has succeeded is ``manifest.json`` written and the folder
moved to ``results/<profile>/``, replacing the previous results (two renames: the old folder
is moved aside, the new one into place, then the old one is deleted). A failure leaves the
previous complete results untouched, moves the partial run to ``results/<profile>.failed/``
(its executed notebooks show the error in place) and raises :class:`NotebookFailed` naming the
notebook, the cell and the error.

Nothing resumable is lost in silence: parameters are checked before any work (one message per bad
value); a run records its parameters (``parameters.json``) and ``--resume`` refuses to continue a
run made with other result-shaping parameters (:mod:`lipnb.repro.resume`); a fresh run keeps an
interrupted staging folder as ``<profile>.failed`` (or ``.failed-2``, ...) and, when it fails, keeps
an earlier ``<profile>.failed`` under the next free name, saying so; a successful run removes the
``.failed`` run it supersedes and says so; ``--resume`` with nothing to resume says so.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from lipnb import paths
from lipnb.errors import raise_all
from lipnb.profiles import notebook_parameter_problems, notebook_parameters
from lipnb.report.viewer import HEADLESS
from lipnb.repro.manifest import build_manifest, write_manifest
from lipnb.repro.release import WEIGHTS, export_weights
from lipnb.repro.resume import free_name, record_parameters, resume_problems

NOTEBOOKS_DIR = paths.REPO_ROOT / "notebooks"
NOTEBOOKS = ("01_pretrain.ipynb", "02_finetune_davis.ipynb", "03_online_inference.ipynb",
             "04_ablation_zero_hidden.ipynb", "05_tables_figures.ipynb")
KERNEL = "python3"
# The kernel talks to papermill over loopback TCP; ipykernel warns
# about the missing encryption at every start. Errors still print; its warnings do not.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


class NotebookFailed(RuntimeError):
    """A notebook of the pipeline raised; ``notebook``, ``cell`` (index) and ``executed`` (path)."""

    def __init__(self, message: str, notebook: str, cell, executed: Path):
        super().__init__(message)
        self.notebook, self.cell, self.executed = notebook, cell, executed


# ----------------------------------------------------------------------------- the kernel


def _kernel_python(name: str = KERNEL):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        return KernelSpecManager().get_kernel_spec(name).argv[0]
    except NoSuchKernel:
        return None


def _is_this_python(executable) -> bool:
    if not executable:
        return False
    if executable in ("python", "python3", "{python}"):
        return True  # the native spec launches sys.executable
    return os.path.abspath(executable) == os.path.abspath(sys.executable)


def ensure_kernel(name: str = KERNEL) -> str:
    """Make kernel ``name`` launch this interpreter (the venv's Python), installing a kernelspec
    into ``sys.prefix`` (``ipykernel install --sys-prefix``) if needed; if a user-level spec of
    the same name still shadows it, a private spec is put first on ``JUPYTER_PATH``.
    Returns the interpreter the kernel runs."""
    if _is_this_python(_kernel_python(name)):
        return sys.executable
    from ipykernel.kernelspec import install

    install(kernel_name=name, prefix=sys.prefix)
    if not _is_this_python(_kernel_python(name)):
        private = paths.RESULTS_DIR / ".jupyter"
        install(kernel_name=name, prefix=str(private))
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            [str(private / "share" / "jupyter")] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p])
    found = _kernel_python(name)
    if not _is_this_python(found):
        raise RuntimeError(f"kernel {name!r} runs {found}, not {sys.executable}; check `jupyter kernelspec list`")
    return sys.executable


# ----------------------------------------------------------------------------- one notebook


def execute(notebook: str, dest: Path, params: dict, log_output: bool = False) -> float:
    """Run ``notebooks/<notebook>`` with ``params`` into ``dest/<notebook>``; returns wall seconds.
    Raises :class:`NotebookFailed` (the executed copy shows the error)."""
    import papermill as pm

    executed = dest / notebook
    start = time.perf_counter()
    before = os.environ.get(HEADLESS)
    os.environ[HEADLESS] = "1"  # the kernel inherits it: no live widgets in a batch run
    try:
        pm.execute_notebook(str(NOTEBOOKS_DIR / notebook), str(executed), parameters=params,
                            kernel_name=KERNEL, cwd=str(NOTEBOOKS_DIR), progress_bar=False, log_output=log_output,
                            extra_arguments=KERNEL_ARGUMENTS)
    except pm.PapermillExecutionError as e:
        source = "\n      ".join(e.source.strip().splitlines()[:6])
        raise NotebookFailed(
            f"notebook {notebook} failed in cell {e.cell_index} (execution count {e.exec_count}): "
            f"{e.ename}: {e.evalue}\n    cell source:\n      {source}", notebook, e.cell_index, executed) from e
    except Exception as e:  # noqa: BLE001 - kernel died, timeout, unreadable notebook ...
        raise NotebookFailed(f"notebook {notebook} could not run: {type(e).__name__}: {e}", notebook, None,
                             executed) from e
    finally:
        if before is None:
            os.environ.pop(HEADLESS)
        else:
            os.environ[HEADLESS] = before
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- the pipeline


def _swap_into_place(staging: Path, final: Path) -> None:
    old = final.with_name(f".previous-{final.name}")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.rename(final, old)
    os.rename(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def run_pipeline(profile: str = "smoke", results_dir: str | Path = paths.RESULTS_DIR,
                 overrides: dict | None = None, log=print, log_output: bool = False, resume: bool = False) -> Path:
    """Run the five notebooks for ``profile``; returns ``results_dir/<profile>``.

    ``resume``: continue in the staging folder an interrupted run left (or, after a failure, in
    ``<profile>.failed``): the notebooks run again, but training continues from its last
    checkpoint and online inference keeps the sequences it had finished."""
    results_dir = Path(results_dir).resolve()
    final = results_dir / profile
    staging = results_dir / f".staging-{profile}"
    failed = results_dir / f"{profile}.failed"
    params = notebook_parameters(profile, out_dir=str(staging), **(overrides or {}))
    raise_all(notebook_parameter_problems(params, overrides or {}))
    source = staging if staging.exists() else failed if failed.exists() else None
    if resume and source is not None:
        raise_all(resume_problems(source, params, NOTEBOOKS))
    elif resume:
        log(f"[reproduce] --resume: nothing to resume (neither {staging} nor {failed} exists); "
            "starting a fresh run")
    ensure_kernel()
    resumed = resume and source is not None
    if resumed:
        if source == failed:
            os.rename(failed, staging)
        log(f"[reproduce] resuming in {staging}")
    else:
        if staging.exists():  # an interrupted earlier call: kept, never deleted in silence
            kept = failed if not failed.exists() else free_name(results_dir, failed.name)
            os.rename(staging, kept)
            log(f"[reproduce] kept the interrupted run of an earlier call as {kept}"
                + (" (--resume continues it)" if kept == failed else ""))
        staging.mkdir(parents=True)
        record_parameters(staging, params)
    timings, start = {}, time.perf_counter()
    log(f"[reproduce] profile {profile}: {len(NOTEBOOKS)} notebooks -> {final} (staging in {staging})")
    try:
        for notebook in NOTEBOOKS:
            log(f"[reproduce] {notebook} ...")
            seconds = execute(notebook, staging, params, log_output)
            timings[notebook] = {"wall_s": round(seconds, 1)}
            log(f"[reproduce] {notebook} done in {seconds:.0f} s")
    except NotebookFailed as e:
        older = ""
        if failed.exists():  # an earlier failed run: kept under the next free name
            aside = free_name(results_dir, failed.name)
            os.rename(failed, aside)
            older = f"\n    the earlier failed run was kept as {aside}"
        os.rename(staging, failed)
        e.executed = failed / e.notebook
        kept = f"previous complete results left in place: {final}" if final.exists() else "no previous results"
        e.args = (f"{e.args[0]}\n    executed notebook with the error: {e.executed}\n    {kept}"
                  f"\n    continue it with --resume (same parameters){older}",)
        raise
    wall = time.perf_counter() - start
    recorded = {**params, "out_dir": str(final)}
    manifest = build_manifest(profile, recorded, timings, wall)
    finetuned = staging / "work" / "finetune" / "last.pt"
    if finetuned.is_file():  # the released weights (lipnb.repro.release)
        manifest["weights"] = export_weights(finetuned, staging / WEIGHTS)
    if resumed:
        manifest["resumed"] = True  # wall times are those of the last, resumed pass
    write_manifest(staging / "manifest.json", manifest)
    (staging / "parameters.json").unlink(missing_ok=True)  # the manifest records them
    _swap_into_place(staging, final)
    if failed.exists():
        shutil.rmtree(failed, ignore_errors=True)
        log(f"[reproduce] removed the earlier failed run {failed}: these complete results supersede it")
    log(f"[reproduce] {profile} complete in {wall:.0f} s: " +
        ", ".join(f"{k.split('_')[0]} {v['wall_s']:.0f} s" for k, v in timings.items()))
    return final
