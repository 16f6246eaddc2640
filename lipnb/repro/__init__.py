"""The reproduction machinery: what runs the notebooks and keeps their results honest.

    stages.py         what each notebook computes, as functions over a Run (train, predict, evaluate)
    pipeline.py       the papermill runner (staging folder, swap into place, failure report)
    resume.py         the parameters a run recorded, and the check that --resume continues it
    manifest.py       manifest.json: commit, parameters, seeds, versions, data checksums, timings
    readme_tables.py  the READMEs' tables generated from results/<profile>/tableN.md
"""
