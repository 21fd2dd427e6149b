"""A folder of MediaPipe Holistic `.pose` files plus an annotation CSV -> the converted layout."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from tqdm import tqdm

from slt_jax.layout import COLUMNS, SPLITS, LayoutError, Sample, save_pose, write_annotations, write_metadata
from slt_jax.prepare.corpus import Report, staged_corpus
from slt_jax.prepare.pose_file import read_holistic


def read_annotation_file(path: str | os.PathLike) -> list[Sample]:
    """Reads a CSV with columns id,text,gloss,signer,split (id: a .pose file's name, no extension).

    Raises:
      LayoutError: missing file or column, a short row, an empty or repeated id, an unknown split.
    """
    path = Path(path)
    try:
        # Decoded from bytes: text mode would turn a '\r' inside a quoted field into '\n'.
        rows = csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline=""))
    except FileNotFoundError:
        raise LayoutError(f"{path}: annotation file not found") from None
    except UnicodeDecodeError as e:
        raise LayoutError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    header = rows.fieldnames or []
    if any(c not in header for c in COLUMNS):
        raise LayoutError(f"{path}: needs the columns {','.join(COLUMNS)}; header is {header}")
    samples, seen = [], set()
    for row in rows:
        where = f"{path}:{rows.line_num}"
        if None in row or None in row.values():
            raise LayoutError(f"{where}: expected {len(header)} fields")
        if not row["id"] or row["id"] in seen:
            raise LayoutError(f"{where}: {'repeated' if row['id'] else 'empty'} id {row['id']!r}")
        if row["split"] not in SPLITS:
            raise LayoutError(f"{where}: split {row['split']!r} is not one of {', '.join(SPLITS)}")
        seen.add(row["id"])
        samples.append(Sample(*(row[c] for c in COLUMNS)))
    if not samples:
        raise LayoutError(f"{path}: no rows")
    return samples


def prepare_pose(poses: str | os.PathLike, annotations: str | os.PathLike, out: str | os.PathLike,
                 allow_partial: bool = False, progress: bool = True) -> Report:
    """Writes the converted corpus of the annotated `.pose` files; returns the report.

    Args:
      poses: a folder of `<id>.pose` files (MediaPipe Holistic, see pose_file.read_holistic).
      annotations: the CSV naming them (see read_annotation_file).
      out: the corpus folder to create (absent or empty).
      allow_partial: accept reduced Holistic layouts, their missing points as NaN.
      progress: show a progress bar.

    Raises:
      LayoutError: a bad annotation file, a `.pose` file that is not Holistic (the message names
        it; nothing is written), or no annotated file found. An annotated id without a file, and
        a file without annotation, are listed in the report.
    """
    poses = Path(poses)
    if not poses.is_dir():
        raise LayoutError(f"{poses}: no such folder of .pose files")
    samples = read_annotation_file(annotations)
    files = {p.stem: p for p in poses.glob("*.pose")}
    report = Report()
    chosen = [s for s in samples if s.id in files]
    for s in samples:
        if s.id not in files:
            report.add("missing .pose file", f"{s.id}: no {poses / s.id}.pose")
    for stem in sorted(files.keys() - {s.id for s in samples}):
        report.add(".pose file without annotation", str(files[stem]))
    if not chosen:
        raise LayoutError(f"{annotations}: none of its ids has a .pose file in {poses}")

    fps = {}
    with staged_corpus(out) as root:
        for s in tqdm(chosen, desc="poses", unit="file", disable=not progress):
            pose, fps[s.id] = read_holistic(files[s.id], allow_partial)
            save_pose(root, s.id, pose)
        write_annotations(root, chosen)
        rates = set(fps.values())
        metadata = {"source": f".pose files (MediaPipe Holistic) from {poses.resolve()}"}
        metadata |= {"fps": rates.pop()} if len(rates) == 1 else {"fps": None, "fps_by_id": fps}
        write_metadata(root, metadata)
        report.written = {split: sum(s.split == split for s in chosen) for split in SPLITS}
        report.write(root)
    return report
