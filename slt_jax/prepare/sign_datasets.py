"""Examples of the community's TFDS loaders (`sign-language-datasets`) -> files `prepare csv` reads.

Its loaders (e.g. `rwth_phoenix2014_t`, config `poses`) give each example an id, signer, gloss,
text and a MediaPipe Holistic `pose` feature {data, conf, fps} in pose-format's pixel units,
with the header kept beside the loader. `write_examples` writes those examples as `<id>.pose`
files and one table; the package itself is not needed here (docs/own-data.md has the recipe).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterable, Mapping

from slt_jax.layout import atomic_path, write_text

TABLE = "annotations.csv"


def _str(value) -> str:
    """TFDS text features come back from tfds.as_numpy as bytes."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def write_examples(splits: Mapping[str, Iterable[Mapping]], header, folder: str | os.PathLike) -> Path:
    """Writes each example's pose as folder/<id>.pose, and folder/annotations.csv naming them.

    Args:
      splits: our split name (train, val, test) -> that split's examples as numpy
        (`tfds.as_numpy`), each with id, signer, gloss, text and pose {data, conf, fps}.
      header: the dataset's pose header (a pose_format PoseHeader).
      folder: where the files go; then `slt-jax prepare csv --annotations folder/annotations.csv
        --keypoints folder`.

    Returns:
      The table's path.
    """
    from pose_format import Pose  # optional dependency: the community loaders' pose files
    from pose_format.numpy.pose_body import NumPyPoseBody

    folder = Path(folder)
    rows = []
    for split, examples in splits.items():
        for example in examples:
            pose = example["pose"]
            body = NumPyPoseBody(fps=float(pose["fps"]), data=pose["data"], confidence=pose["conf"])
            buffer = io.BytesIO()
            Pose(header, body).write(buffer)
            sample_id = _str(example["id"])
            with atomic_path(folder / f"{sample_id}.pose") as tmp:
                tmp.write_bytes(buffer.getvalue())
            rows.append([sample_id, *(_str(example[k]) for k in ("text", "gloss", "signer")), split])
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\r\n")
    writer.writerow(["id", "text", "gloss", "signer", "split"])
    writer.writerows(rows)
    write_text(folder / TABLE, table.getvalue())
    return folder / TABLE
