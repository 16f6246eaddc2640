"""Run notebooks 01-05 in a real JupyterLab, in headless Chromium, on the ``smoke`` profile.

    .venv/bin/python tools/browser_check.py                  # all five, screenshots into results/screenshots/
    .venv/bin/python tools/browser_check.py --notebooks 01 02 03   # a notebook needs those before it

Not part of ``make test`` (it needs a browser and a few minutes of CPU). It needs Debian's
``chromium`` (``apt-get install chromium``; no browser is ever downloaded) and ``playwright``
(``pip install -e '.[browser]'``). The notebooks are copied into a temporary folder, so the run writes
nothing into ``notebooks/`` or ``results/smoke/`` (their ``out_dir`` becomes ``<tmp>/results/smoke``).

For each notebook it checks that opening it (paired with its jupytext ``.py``, as in the
repository) leaves the document unmodified (JupyterLab would otherwise autosave into the committed
file), runs every code cell in turn and records its wall time, and fails on any error output. In 03 it moves the viewer's slider and checks that the
frame shown changed. Writes ``results/screenshots/smoke-*.png`` (the viewer after the slider moved,
masks over frames) and ``results/screenshots/browser_check.json`` (cell timings, console errors).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01_pretrain", "02_finetune_davis", "03_online_inference", "04_ablation_zero_hidden",
             "05_tables_figures"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = {  # file -> a string that only the source of the cell to photograph contains
    "smoke-viewer-slider-moved.png": "SequenceViewer(seq2",
    "smoke-masks-over-frames.png": "plot_masks_over_frames(seq1",
}

# JavaScript run in the page (JupyterLab started with expose_app_in_browser).
JS_CELLS = """() => { const nb = window.jupyterapp.shell.currentWidget;
  return nb.content.widgets.map((c, i) => ({index: i, type: c.model.type, source: c.model.sharedModel.getSource()})); }"""
JS_READY = """() => { const nb = window.jupyterapp.shell.currentWidget;
  return !!(nb && nb.content && nb.sessionContext && nb.sessionContext.session && nb.sessionContext.session.kernel
            && nb.sessionContext.session.kernel.status === 'idle'); }"""
JS_DIRTY = "() => window.jupyterapp.shell.currentWidget.context.model.dirty"
JS_RUN_CELL = """async (i) => { const app = window.jupyterapp, nb = app.shell.currentWidget;
  nb.content.activeCellIndex = i; nb.content.deselectAll();
  const t0 = performance.now();
  await app.commands.execute('notebook:run-cell');
  const cell = nb.content.widgets[i];
  const outputs = cell.model.outputs.toJSON();
  const errors = outputs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue);
  return {seconds: (performance.now() - t0) / 1000, errors: errors, count: cell.model.executionCount}; }"""
JS_CLOSE = """async () => { const nb = window.jupyterapp.shell.currentWidget;
  await nb.sessionContext.shutdown(); nb.context.model.dirty = false; nb.dispose(); }"""
JS_SCROLL = """(i) => { const nb = window.jupyterapp.shell.currentWidget; nb.content.activeCellIndex = i;
  nb.content.scrollToItem(i, 'start'); }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(root: Path, port: int, token: str) -> subprocess.Popen:
    """JupyterLab on 127.0.0.1 with its config, runtime, settings and workspaces under ``root``."""
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / ".jupyter"), JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
               IPYTHONDIR=str(root / ".ipython"))
    cmd = ["nice", "-n", "19", str(Path(sys.executable).with_name("jupyter")), "lab", "--no-browser",
           f"--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           f"--LabServerApp.user_settings_dir={root / '.settings'}",
           f"--LabServerApp.workspaces_dir={root / '.workspaces'}", "--LabApp.news_url=", "--allow-root", "--LabApp.extension_manager=readonly",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    labconfig = root / ".jupyter" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)  # no "Jupyter news?" toast over the screenshots
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    log = open(root / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(120):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"JupyterLab did not start; see {root / 'jupyterlab.log'}")


def small_png(src: Path, dest: Path) -> None:
    """Re-save a screenshot as an indexed 256-colour PNG (a fraction of the size)."""
    from PIL import Image

    dest.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as image:
        image.convert("RGB").quantize(256).save(dest, format="PNG", optimize=True)


def move_slider(page, cell_node) -> tuple[str, str]:
    """Drag the viewer's frame slider to about two thirds; returns (readout before, after)."""
    readout = cell_node.locator(".widget-readout").first
    before = readout.inner_text()
    track = cell_node.locator(".widget-slider .noUi-target, .widget-slider").first
    handle = cell_node.locator(".noUi-handle").first
    box, hbox = track.bounding_box(), handle.bounding_box()
    page.mouse.move(hbox["x"] + hbox["width"] / 2, hbox["y"] + hbox["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.66, hbox["y"] + hbox["height"] / 2, steps=8)
    page.mouse.up()
    for _ in range(60):
        if readout.inner_text() != before:
            break
        time.sleep(0.25)
    return before, readout.inner_text()


def check_notebook(page, base: str, name: str, out: Path, shots: Path, report: dict) -> list:
    """Open, check clean, run every cell, photograph; returns a list of problems."""
    problems = []
    page.goto(f"{base}/lab/tree/notebooks/{name}.ipynb")
    page.wait_for_function(JS_READY, timeout=120_000, polling=500)
    time.sleep(3)  # let JupyterLab fill in whatever metadata it would
    opened_clean = not page.evaluate(JS_DIRTY)
    if not opened_clean:
        problems.append(f"{name}: modified as soon as it was opened (JupyterLab would autosave it)")
    cells = page.evaluate(JS_CELLS)
    timings = []
    for cell in cells:
        if cell["type"] != "code":
            continue
        result = page.evaluate(JS_RUN_CELL, cell["index"])
        first = next((line for line in cell["source"].splitlines() if line.strip() and not line.startswith("#")), "")
        timings.append({"cell": cell["index"], "seconds": round(result["seconds"], 2), "first_line": first[:90]})
        print(f"  {name} cell {cell['index']:2d}: {result['seconds']:6.1f} s  {first[:70]}", flush=True)
        if result["errors"]:
            problems.append(f"{name} cell {cell['index']}: {result['errors'][0]}")
            break
    report["notebooks"][name] = {"opened_clean": opened_clean, "cells": timings}
    for shot, marker in SCREENSHOTS.items():
        index = next((c["index"] for c in cells if marker in c["source"]), None)
        if index is None:
            continue
        page.evaluate(JS_SCROLL, index)
        time.sleep(1.5)
        node = page.locator(".jp-Notebook .jp-Cell").nth(index)
        if "viewer" in shot:
            before, after = move_slider(page, node)
            report["slider"] = {"before": before, "after": after}
            if before == after:
                problems.append(f"{name}: the viewer's slider did not move ({before})")
            time.sleep(2.5)  # the redraw
        raw = out / shot
        node.locator(".jp-OutputArea").first.screenshot(path=str(raw))
        small_png(raw, shots / shot)
        print(f"  screenshot {shots / shot}", flush=True)
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", nargs="*", default=[n[:2] for n in NOTEBOOKS], help="numbers, e.g. 01 03")
    parser.add_argument("--screenshots", default=str(REPO / "results" / "screenshots"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (executed notebooks, log)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="lipnb-browser-"))
    (root / "notebooks").mkdir()
    for name in [f"{n}.ipynb" for n in NOTEBOOKS] + [f"{n}.py" for n in NOTEBOOKS] + ["jupytext.toml"]:
        shutil.copy2(REPO / "notebooks" / name, root / "notebooks")  # paired as in the repository, same mtimes
    port, token = free_port(), secrets.token_hex(16)
    shots = Path(args.screenshots)
    lab = start_lab(root, port, token)
    report, problems, console = {"notebooks": {}}, [], []
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(root / ".chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 1000})
            page = context.new_page()
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.goto(f"http://127.0.0.1:{port}/lab?token={token}")
            page.wait_for_function("() => !!window.jupyterapp", timeout=120_000)
            for name in (n for n in NOTEBOOKS if n[:2] in args.notebooks):
                print(f"[browser] {name}", flush=True)
                problems += check_notebook(page, f"http://127.0.0.1:{port}", name, root, shots, report)
                page.evaluate(JS_CLOSE)
                time.sleep(1)
            context.close()
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    report["console_errors"] = console[:50]
    report["problems"] = problems
    shots.mkdir(parents=True, exist_ok=True)
    (shots / "browser_check.json").write_text(json.dumps(report, indent=1))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"[browser] {'ok' if not problems else f'{len(problems)} problem(s)'}; report {shots / 'browser_check.json'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
