"""From runs to what a reader sees: Tables 1-3 and the figures.

    paper_numbers.py  the paper's Tables 1-3 (copied, labelled)
    tables.py         Tables 1-3: paper rows beside this run's rows -> tableN.csv / tableN.md
    figures.py        batch with boxes and masks, loss curves, masks over frames, gate maps (DPI, setup)
    outline.py        mask outlines (fill + solid border + white rim) for figures and the viewer
    viewer.py         the frame slider of notebook 03 (image, predicted and true masks, gate maps)

Computing happens below (the core) or beside (:mod:`lipnb.repro`, :mod:`lipnb.lab`); this
package draws and tabulates what they measured.
"""
