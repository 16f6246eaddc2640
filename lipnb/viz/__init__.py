"""Interactive views for JupyterLab (ipywidgets): :class:`SequenceViewer`."""

from lipnb.viz.viewer import SequenceViewer

__all__ = ["SequenceViewer"]
