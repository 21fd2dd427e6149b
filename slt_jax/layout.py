"""The converted corpus layout on disk, shared by every reader and writer.

A corpus is a folder::

    annotations.csv   id,text,gloss,signer,split[,gloss_spans][,text_alignment]   (split: train|val|test)
    metadata.json     free-form facts about the corpus (fps, source, ...)
    poses/<id>.npy    float32 (frames, people, 543, dims), MediaPipe Holistic order

`gloss_spans`, when present, holds one `start:end` frame span (end exclusive, original frame
numbering) per gloss token, separated by spaces. `text_alignment`, when present, holds one entry
per word of the text: the 0-based position of the gloss the word renders, or `-` for a word that
no gloss carries (an article, a particle).

This module imports numpy only (never jax): extraction and preparation run in environments
pinned for mediapipe. Every write is atomic: a killed process leaves the old file or none.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

COLUMNS = ("id", "text", "gloss", "signer", "split")
SPANS_COLUMN = "gloss_spans"
ALIGNMENT_COLUMN = "text_alignment"
NO_GLOSS = "-"
SPLITS = ("train", "val", "test")

# MediaPipe Holistic landmark groups as [start, stop) indices into the 543 points.
LANDMARK_GROUPS = {
    "body": (0, 33),
    "face": (33, 501),
    "left_hand": (501, 522),
    "right_hand": (522, 543),
}
N_LANDMARKS = 543

Span = tuple[int, int]


class LayoutError(ValueError):
    """A corpus file is missing or malformed; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Sample:
    """One row of annotations.csv."""

    id: str
    text: str
    gloss: str
    signer: str
    split: str
    gloss_spans: tuple[Span, ...] | None = None
    text_alignment: tuple[int | None, ...] | None = None  # per word of `text`: its gloss's position


# --- atomic writes ---------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")  # the text's own line ends, on every OS


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def save_array(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


# --- spans -----------------------------------------------------------------------------------


def parse_spans(text: str, n_glosses: int, where: str = "gloss_spans") -> tuple[Span, ...]:
    """Parses 'a:b c:d ...' into ordered, non-overlapping spans, one per gloss."""
    spans = []
    for item in text.split():
        try:
            start, end = (int(v) for v in item.split(":"))
        except ValueError:
            raise LayoutError(f"{where}: span {item!r} is not 'start:end'") from None
        if not 0 <= start < end:
            raise LayoutError(f"{where}: span {item!r} must satisfy 0 <= start < end")
        if spans and start < spans[-1][1]:
            raise LayoutError(f"{where}: span {item!r} overlaps or precedes the one before it")
        spans.append((start, end))
    if len(spans) != n_glosses:
        raise LayoutError(f"{where}: {len(spans)} spans for {n_glosses} glosses")
    return tuple(spans)


def format_spans(spans: Sequence[Span]) -> str:
    return " ".join(f"{s}:{e}" for s, e in spans)


def parse_alignment(text: str, n_words: int, n_glosses: int,
                    where: str = ALIGNMENT_COLUMN) -> tuple[int | None, ...]:
    """Parses '- 0 2 2 1 ...' into each word's gloss position, None for `-`."""
    alignment = []
    for item in text.split():
        if item == NO_GLOSS:
            alignment.append(None)
        elif item.isdecimal() and int(item) < n_glosses:
            alignment.append(int(item))
        else:
            raise LayoutError(f"{where}: {item!r} is neither {NO_GLOSS!r} nor a gloss position in 0..{n_glosses - 1}")
    if len(alignment) != n_words:
        raise LayoutError(f"{where}: {len(alignment)} alignment entries for {n_words} words")
    return tuple(alignment)


def format_alignment(alignment: Sequence[int | None]) -> str:
    return " ".join(NO_GLOSS if a is None else str(a) for a in alignment)


# --- annotations -----------------------------------------------------------------------------


def read_annotations(root: str | os.PathLike) -> list[Sample]:
    """Reads and validates `root/annotations.csv`."""
    path = Path(root) / "annotations.csv"
    if not path.is_file():
        raise LayoutError(f"{path}: annotations file not found")
    try:
        # Decoded from bytes: text mode would turn a '\r' inside a quoted field into '\n'.
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LayoutError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    rows = csv.DictReader(io.StringIO(text, newline=""))
    header = rows.fieldnames or []
    if not header:
        raise LayoutError(f"{path}: empty file; expected the header {','.join(COLUMNS)}")
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise LayoutError(f"{path}: missing column(s) {', '.join(missing)}; header is {header}")
    has_spans, has_alignment = SPANS_COLUMN in header, ALIGNMENT_COLUMN in header
    samples, seen = [], set()
    for line, row in enumerate(rows, start=2):
        where = f"{path}:{line}"
        if None in row or any(row[c] is None for c in COLUMNS):
            raise LayoutError(f"{where}: expected {len(header)} fields")
        sid = row["id"].strip()
        if not sid:
            raise LayoutError(f"{where}: empty id")
        if sid in seen:
            raise LayoutError(f"{where}: duplicate id {sid!r}")
        seen.add(sid)
        if row["split"] not in SPLITS:
            raise LayoutError(f"{where}: split {row['split']!r} is not one of {SPLITS}")
        spans = None
        if has_spans and row[SPANS_COLUMN].strip():
            spans = parse_spans(row[SPANS_COLUMN], len(row["gloss"].split()), where)
        alignment = None
        if has_alignment and row[ALIGNMENT_COLUMN].strip():
            alignment = parse_alignment(row[ALIGNMENT_COLUMN], len(row["text"].split()),
                                        len(row["gloss"].split()), where)
        samples.append(Sample(sid, row["text"], row["gloss"], row["signer"], row["split"], spans, alignment))
    if not samples:
        raise LayoutError(f"{path}: no samples")
    return samples


def write_annotations(root: str | os.PathLike, samples: Sequence[Sample]) -> None:
    """Writes `root/annotations.csv` atomically (with `gloss_spans` if any sample has spans, and
    `text_alignment` if any has one)."""
    has_spans = any(s.gloss_spans is not None for s in samples)
    has_alignment = any(s.text_alignment is not None for s in samples)
    buf = io.StringIO()
    # RFC 4180 line ends: csv quotes a field holding any character of the terminator, so with
    # "\r\n" a lone '\r' in a text is quoted too instead of splitting its row on reading.
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS + ((SPANS_COLUMN,) if has_spans else ()) + ((ALIGNMENT_COLUMN,) if has_alignment else ()))
    for s in samples:
        row = [s.id, s.text, s.gloss, s.signer, s.split]
        if has_spans:
            row.append(format_spans(s.gloss_spans) if s.gloss_spans else "")
        if has_alignment:
            row.append(format_alignment(s.text_alignment) if s.text_alignment else "")
        writer.writerow(row)
    write_text(Path(root) / "annotations.csv", buf.getvalue())


# --- metadata and poses ----------------------------------------------------------------------


def read_metadata(root: str | os.PathLike) -> dict:
    path = Path(root) / "metadata.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LayoutError(f"{path}: not valid JSON ({e})") from None


def write_metadata(root: str | os.PathLike, metadata: dict) -> None:
    write_json(Path(root) / "metadata.json", metadata)


def pose_path(root: str | os.PathLike, sample_id: str) -> Path:
    return Path(root) / "poses" / f"{sample_id}.npy"


def load_pose(root: str | os.PathLike, sample_id: str) -> np.ndarray:
    """Loads and validates one pose array: (frames >= 1, people >= 1, 543, dims in 2..4)."""
    path = pose_path(root, sample_id)
    if not path.is_file():
        raise LayoutError(f"{path}: pose file not found for sample {sample_id!r}")
    return read_pose_file(path)


def read_pose_file(path: str | os.PathLike) -> np.ndarray:
    """Loads and validates one existing `.npy` pose array (see load_pose)."""
    try:
        pose = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises several types for truncated or foreign files
        raise LayoutError(f"{path}: unreadable .npy ({type(e).__name__}: {e})") from None
    if pose.ndim != 4 or pose.shape[2] != N_LANDMARKS or not 2 <= pose.shape[3] <= 4:
        raise LayoutError(
            f"{path}: shape {pose.shape}, expected (frames, people, {N_LANDMARKS}, dims 2..4)"
        )
    if pose.shape[0] == 0 or pose.shape[1] == 0:
        raise LayoutError(f"{path}: empty pose sequence, shape {pose.shape}")
    if not np.issubdtype(pose.dtype, np.floating):
        raise LayoutError(f"{path}: dtype {pose.dtype}, expected floating point")
    return pose


def save_pose(root: str | os.PathLike, sample_id: str, pose: np.ndarray) -> None:
    save_array(pose_path(root, sample_id), np.asarray(pose, dtype=np.float32))
