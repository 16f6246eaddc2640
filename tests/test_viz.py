"""The frame viewer and the figure helpers on a tiny DAVIS 2017 folder."""

import numpy as np
import pytest
from PIL import Image

from lipnb.data.davis import DavisDataset, write_mask
from lipnb.report import figures


@pytest.fixture()
def seq(tmp_path):
    root = tmp_path / "davis"
    for i in range(4):
        frame = root / "JPEGImages" / "480p" / "s" / f"{i:05d}.jpg"
        frame.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((24, 32, 3), 60 + 20 * i, np.uint8)).save(frame)
        ids = np.zeros((24, 32), np.uint8)
        ids[4:10, 2 + i:8 + i] = 1
        ids[14:20, 20:26] = 2
        write_mask(root / "Annotations" / "480p" / "s" / f"{i:05d}.png", ids)
        write_mask(tmp_path / "pred" / "s" / f"{i:05d}.png", ids[::-1].copy())
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("s\n")
    return DavisDataset(root, "2017", "val")["s"]


def test_overlay_and_frames():
    frame = np.zeros((8, 8, 3), np.uint8)
    ids = np.zeros((4, 4), np.uint8)
    ids[:2, :2] = 1
    out = figures.overlay(frame, ids)  # the mask is resized to the frame
    assert out.shape == (8, 8, 3) and out[:4, :4].any() and not out[5:, 5:].any()


def test_overlay_draws_a_fill_an_outline_and_a_rim():
    from lipnb.data.palette import DAVIS_PALETTE

    frame = np.full((40, 40, 3), 128, np.uint8)
    ids = np.zeros((40, 40), np.uint8)
    ids[5:20, 5:20], ids[22:38, 22:38] = 1, 2
    out = figures.overlay(frame, ids, alpha=0.5, width=2)
    for k, (y0, y1) in ((1, (5, 20)), (2, (22, 38))):
        colour = DAVIS_PALETTE[k]
        assert (out[y0, y0] == colour).all() and (out[y0 + 1, (y0 + y1) // 2] == colour).all()  # solid outline
        centre = out[(y0 + y1) // 2, (y0 + y1) // 2]
        assert np.allclose(centre, 0.5 * 128 + 0.5 * colour.astype(float), atol=1)  # half-transparent fill
        assert (out[y0 - 1, (y0 + y1) // 2] == 255).all()  # white rim just outside
    assert (out[0, 39] == 128).all()  # background untouched
    assert figures.pick_frames(50, 5) == [0, 12, 24, 37, 49] and figures.pick_frames(2, 5) == [0, 1]


def test_viewer_render_and_widget(seq, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from lipnb.report.viewer import SequenceViewer

    gates = [np.full((6, 8), 0.1 * i) for i in range(4)]
    viewer = SequenceViewer(seq, tmp_path / "pred", gates)
    assert viewer.panels == ["frame", "predicted", "truth", "gate"]
    pred, truth = viewer.masks(2)
    assert (pred == truth[::-1]).all() and set(np.unique(pred)) == {0, 1, 2}
    fig = viewer.render(3)
    assert len(fig.axes) == 4 and "frame 3 / 3" in fig._suptitle.get_text()
    widget = viewer.widget
    slider = widget.children[0].children[1]
    assert slider.max == 3
    slider.value = 2  # redraws without error


def test_viewer_shows_its_still_and_the_slider_outside_batch_runs(seq, tmp_path, monkeypatch):
    import IPython.display
    import matplotlib

    matplotlib.use("Agg")
    from lipnb.report.viewer import SequenceViewer
    from lipnb.report.viewer import HEADLESS

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append(obj))
    monkeypatch.delenv(HEADLESS, raising=False)
    SequenceViewer(seq, tmp_path / "pred")._ipython_display_()
    assert isinstance(shown[0], IPython.display.Image) and "frame slider" in shown[-1]["text/plain"]
    shown.clear()
    monkeypatch.setenv(HEADLESS, "1")
    SequenceViewer(seq, tmp_path / "pred")._ipython_display_()
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.Image)


def test_masks_over_frames_and_examples(seq, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    fig = figures.plot_masks_over_frames(seq, {"ground truth": None, "LIP": tmp_path / "pred"}, frames=[0, 3])
    assert len(fig.axes) == 4
    figures.save(fig, tmp_path / "f.png")
    assert Image.open(tmp_path / "f.png").format == "PNG"
