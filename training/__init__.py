"""Training code for TrajectoryCrafter: data curation, sharded datasets, two-stage training.

Not part of the installed ``trajcrafter_core`` package; run from the repository root, e.g.
``python -m training.train --config training/configs/stage1.yaml`` or through
``accelerate launch -m training.train ...``. See ``training/README.md``.
"""
