"""RWTH-PHOENIX-Weather 2014 T (Camgöz et al. 2018), as released -> the converted layout.

The release's `annotations/manual/PHOENIX-2014-T.{train,dev,test}.corpus.csv` are `|`-separated
with the header `name|video|start|end|speaker|orth|translation`; a clip's frames are the folder
`features/fullFrame-210x260px/<split>/<name>/`. Extract those folders with `slt-jax extract`,
then keypoints are matched on <name>, wherever the extraction put them. The glosses are `orth`,
the text `translation`, the signer `speaker`; the release's dev split becomes val.
"""

from __future__ import annotations

import os
from pathlib import Path

from slt_jax.prepare.corpus import Report
from slt_jax.prepare.table import read_table, write_entries

CORPUS_FILE = "PHOENIX-2014-T.{}.corpus.csv"
RELEASE_SPLITS = ("train", "dev", "test")
COLUMNS = {"name": "id", "speaker": "signer", "orth": "gloss", "translation": "text"}  # theirs -> ours
FPS = 25  # the release's frame rate; frame folders carry none


def prepare_phoenix(annotations: str | os.PathLike, keypoints: str | os.PathLike, out: str | os.PathLike,
                    progress: bool = True) -> Report:
    """Writes the converted corpus of PHOENIX-2014-T; returns what was written and left out.

    Args:
      annotations: the folder of the three corpus files (the release's annotations/manual/).
      keypoints: `slt-jax extract`'s output for the clips' frame folders.
      out: the corpus folder to create (absent or empty).
      progress: show a progress bar while copying poses.

    Raises:
      LayoutError: a missing or undecodable corpus file, a missing column, a bad keypoint file, or no
        clip left. Bad rows and missing keypoints are left out and listed in the report.
    """
    report = Report()
    entries = [e for split in RELEASE_SPLITS
               for e in read_table(Path(annotations) / CORPUS_FILE.format(split), report, "|", COLUMNS, split)]
    return write_entries(entries, keypoints, out, report, "RWTH-PHOENIX-Weather 2014 T (Camgöz et al. 2018)",
                         fps=FPS, progress=progress)
