"""From runs to what a reader sees: the reproduction's tables, figures and manifest.

    paper_numbers.py  the paper's Tables 1-3 (copied, labelled)
    profiles.py       the notebooks' parameters per profile (smoke, davis-cpu, paper)
    stages.py         what each notebook computes (train, online inference, evaluation files)
    tables.py         Tables 1-3: paper rows beside this run's rows -> tableN.csv / tableN.md
    figures.py        batch with boxes and masks, loss curves, masks over frames, gate maps (DPI, setup)
    outline.py        mask outlines (fill + solid border + white rim) for figures and the viewer
    readme_tables.py  the READMEs' tables generated from results/<profile>/tableN.md
    recipes.py        each model's online recipe, chosen on training videos (notebooks 03, 04)
    dial.py           the memory dial: the carried state scaled by alpha (notebook 04)
    memory_stats.py   did the memory learn: gates, moved W_h, feature sizes (notebook 02, CLI)
    manifest.py       manifest.json: commit, parameters, seeds, versions, data checksums, timings
    pipeline.py       the papermill runner (staging folder, swap into place, failure report)
"""
