"""A frame slider over one segmented sequence: image, predicted masks, true masks, gate map.

    from lipnb.report.viewer import SequenceViewer
    SequenceViewer(seq, predictions="results/smoke/work/online/procedural-val", gates=maps)

``seq`` is a :class:`lipnb.data.davis.DavisSequence`; ``predictions`` a results folder
(``<folder>/<seq>/<frame>.png``) or None; ``gates`` per-frame ``[h, w]`` maps (e.g. from
:func:`lipnb.report.figures.gate_maps`) or None. Displaying the object in JupyterLab shows
a still image of frame 0 (what an executed notebook keeps, where widget state is not saved) and
the slider; :meth:`render` draws one frame without widgets (tests, static export).
"""

from __future__ import annotations

import os

from lipnb.data.davis import read_mask
from lipnb.report.figures import DPI, overlay

# Set (by :func:`lipnb.repro.pipeline.execute`) in the kernels of a batch run: there the viewer
# shows its still image only. Nobody can move a slider in papermill, and a live widget can leave
# the executor waiting for a reply that never comes (jupyter/nbclient#312).
HEADLESS = "LIPNB_HEADLESS"


class SequenceViewer:
    def __init__(self, seq, predictions=None, gates: list | None = None, year: str | None = None):
        self.seq, self.predictions, self.gates = seq, predictions, gates
        self.year = year or seq.year
        self.panels = ["frame"] + (["predicted"] if predictions is not None else []) + ["truth"] + (
            ["gate"] if gates is not None else [])
        self._widget = None

    def masks(self, i: int) -> tuple:
        """(predicted or None, true or None) object ids of frame ``i``."""
        pred = read_mask(self.seq.result_path(self.predictions, i), self.year) if self.predictions else None
        truth = self.seq.read_mask(i) if (self.seq.fully_annotated or i == 0) else None
        return pred, truth

    def render(self, i: int):
        """The figure of frame ``i``: one panel per view."""
        import matplotlib.pyplot as plt

        frame = self.seq.read_frame(i)
        pred, truth = self.masks(i)
        fig, axes = plt.subplots(1, len(self.panels), figsize=(3.2 * len(self.panels), 2.6), squeeze=False)
        for ax, panel in zip(axes[0], self.panels):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(panel if panel != "gate" else "mean update gate z (P2)", fontsize=9)
            if panel == "frame":
                ax.imshow(frame)
            elif panel == "predicted":
                ax.imshow(overlay(frame, pred))
            elif panel == "truth":
                ax.imshow(overlay(frame, truth) if truth is not None else frame)
            else:
                ax.imshow(self.gates[i], cmap="magma", vmin=0, vmax=1)
        fig.suptitle(f"{self.seq.name}, frame {i} / {self.seq.num_frames - 1}", fontsize=10)
        fig.tight_layout()
        return fig

    @property
    def widget(self):
        """``VBox(IntSlider, Output)``: moving the slider redraws the panels."""
        if self._widget is None:
            import ipywidgets as widgets
            import matplotlib.pyplot as plt
            from IPython.display import display

            slider = widgets.IntSlider(value=0, min=0, max=self.seq.num_frames - 1, description="frame",
                                       continuous_update=False)
            play = widgets.Play(min=0, max=self.seq.num_frames - 1, interval=300)
            widgets.jslink((play, "value"), (slider, "value"))
            out = widgets.Output()

            def draw(change=None):
                with out:
                    out.clear_output(wait=True)
                    fig = self.render(slider.value)
                    display(fig)
                    plt.close(fig)

            slider.observe(draw, names="value")
            draw()
            self._widget = widgets.VBox([widgets.HBox([play, slider]), out])
        return self._widget

    def still(self, i: int = 0):
        """Frame ``i`` as a PNG image (``IPython.display.Image``): what an executed notebook keeps."""
        import io

        import matplotlib.pyplot as plt
        from IPython.display import Image

        fig = self.render(i)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        return Image(data=buffer.getvalue(), format="png")

    def _ipython_display_(self):
        """A still PNG of frame 0 (kept in the saved notebook, where widgets cannot be restored),
        then the live slider (not in a batch run: :data:`HEADLESS`). The widget's text fallback
        names what it is instead of ``VBox(...)``."""
        from IPython.display import display

        display(self.still(0))
        if os.environ.get(HEADLESS):
            return
        bundle = self.widget._repr_mimebundle_()
        bundle["text/plain"] = (f"[frame slider over {self.seq.name}: run the cell in JupyterLab to use it; "
                                "the still image above is frame 0]")
        display(bundle, raw=True)
