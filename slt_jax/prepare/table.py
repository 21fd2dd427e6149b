"""A user's table of clips (CSV, or an ELAN-like export) plus keypoint files -> the converted layout.

The table has a header row; its delimiter (comma, tab, semicolon or `|`) is the one that makes
`id` a column. Columns:

    id         the keypoint file: its path under the keypoints folder, without extension
               (`clip7` finds poses/clip7.npy, clip7.pose or session2/clip7.npy)
    signer     who signs; needed to hold whole signers out when there is no split column
    text       and/or
    gloss      space-separated glosses (at least one of the two columns)
    split      optional: train, val (or dev) or test; without it, splits go by signer
    gloss_start, gloss_end   optional: one start and one end per gloss, space-separated, in
               frames (end exclusive) or seconds (--span-unit)

Two forms: one row per clip, with its glosses and their spans as lists; or, ELAN-like, one row
per gloss annotation (a gloss, its start and its end), consecutive rows of the same id forming
one clip: its glosses ordered by start, its signer and split on every row, its text on any (a row
with text and no gloss, as a translation tier gives, adds only the text). A bad row is reported
with its file and line, and its clip is left out.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import itertools
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from slt_jax.extract import read_manifest
from slt_jax.layout import LayoutError, Sample, read_pose_file, save_pose, write_annotations, write_metadata
from slt_jax.prepare.corpus import HELD_OUT_SHARE, Report, assign_splits, staged_corpus
from slt_jax.prepare.pose_file import read_holistic

SPAN_UNITS = ("frames", "seconds")
SPLIT_NAMES = {"train": "train", "val": "val", "dev": "val", "test": "test"}
SPAN_COLUMNS = ("gloss_start", "gloss_end")
DELIMITERS = ",\t;|"
KEYPOINT_SUFFIXES = (".npy", ".pose")

Times = tuple[tuple[float, float], ...]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One clip of a table, before its keypoints are read."""

    where: str  # file:line of its first row
    id: str  # the keypoint file's name
    text: str
    gloss: str
    signer: str
    split: str | None  # None: assigned by signer
    times: Times | None  # one (start, end) per gloss, in the table's unit


# --- reading a table -------------------------------------------------------------------------


def read_rows(path: str | os.PathLike, delimiter: str | None = None,
              rename: Mapping[str, str] | None = None) -> tuple[list[str], list[tuple[int, dict]]]:
    """The header and the (line number, row) pairs of a delimited UTF-8 file.

    Args:
      path: the file.
      delimiter: its delimiter (default: the one of DELIMITERS that makes `id` a header column).
      rename: header names to change (a release's names -> ours).

    Raises:
      LayoutError: the file is missing, not UTF-8, or (without a delimiter) has no `id` column.
    """
    path = Path(path)
    try:
        # Decoded from bytes: text mode would turn a '\r' inside a quoted field into '\n'.
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise LayoutError(f"{path}: annotation table not found") from None
    except UnicodeDecodeError as e:
        raise LayoutError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    first = text.partition("\n")[0]
    delimiter = delimiter or next((d for d in DELIMITERS if "id" in (c.strip() for c in first.split(d))), None)
    if delimiter is None:
        raise LayoutError(f"{path}: no `id` column in the header {first.strip()!r}")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [(rename or {}).get(c.strip(), c.strip()) for c in reader.fieldnames or []]
    reader.fieldnames = header
    rows = [(reader.line_num, row) for row in reader if any(v and v.strip() for v in row.values() if isinstance(v, str))]
    return header, rows


def check_header(path, header: Sequence[str]) -> bool:
    """Whether the table has spans; raises LayoutError when a needed column is missing."""
    missing = [c for c in ("id", "signer") if c not in header]
    if missing or not {"text", "gloss"} & set(header):
        needs = ", ".join(missing + ([] if {"text", "gloss"} & set(header) else ["text or gloss"]))
        raise LayoutError(f"{path}: needs the column(s) {needs}; header is {list(header)}")
    spans = [c for c in SPAN_COLUMNS if c in header]
    if len(spans) == 1:
        raise LayoutError(f"{path}: {spans[0]} without {(set(SPAN_COLUMNS) - set(spans)).pop()}; give both or neither")
    return bool(spans)


def parse_times(row: dict, n_glosses: int) -> Times | None:
    """A row's (start, end) pairs, or None when it gives none; ValueError names the problem."""
    starts, ends = (row.get(c, "").split() for c in SPAN_COLUMNS)
    if not starts and not ends:
        return None
    if not len(starts) == len(ends) == n_glosses:
        raise ValueError(f"{len(starts)} starts and {len(ends)} ends for {n_glosses} glosses")
    times = []
    for start, end in zip(starts, ends):
        try:
            times.append((float(start), float(end)))
        except ValueError:
            raise ValueError(f"span {start!r}-{end!r} is not a pair of numbers") from None
        if times[-1][1] <= times[-1][0]:
            raise ValueError(f"span {start}-{end} ends at or before its start")
    return tuple(times)


def row_problem(row: dict) -> str | None:
    """What is wrong with a row on its own, or None."""
    if None in row or None in row.values():
        return "wrong number of fields"
    if not row["id"].strip():
        return "missing id"
    if not row["signer"].strip():
        return "missing signer"
    if "split" in row and row["split"].strip() not in SPLIT_NAMES:
        return f"unknown split {row['split'].strip()!r} (train, val, dev or test)"
    if not (row.get("text", "").strip() or row.get("gloss", "").strip()):
        return "no text and no gloss"
    return None


def agreed(rows: Sequence[tuple[int, dict]], column: str) -> str:
    """The one non-empty value of a column over a clip's rows ('' if none); ValueError if several."""
    values = {row.get(column, "").strip() for _, row in rows} - {""}
    if len(values) > 1:
        raise ValueError(f"its rows disagree on {column}: {sorted(values)}")
    return values.pop() if values else ""


def entry(path: Path, rows: Sequence[tuple[int, dict]]) -> Entry:
    """One clip from its rows (one, or one per gloss annotation); ValueError names the bad row."""
    annotations = []
    for line, row in rows:
        glosses = row.get("gloss", "").split()
        try:
            times = parse_times(row, len(glosses))
        except ValueError as e:
            raise ValueError(f"{path.name}:{line}: {e}") from None
        if len(rows) > 1 and glosses and times is None:
            raise ValueError(f"{path.name}:{line}: a gloss row of a multi-row clip needs gloss_start and gloss_end")
        annotations += zip(glosses, times or itertools.repeat(None))
    if len(rows) > 1:
        annotations.sort(key=lambda a: a[1][0])
    where = f"{path.name}:{rows[0][0]}"
    try:
        text, signer, split = (agreed(rows, c) for c in ("text", "signer", "split"))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    times = tuple(t for _, t in annotations) if annotations and annotations[0][1] else None
    return Entry(where, rows[0][1]["id"].strip(), text, " ".join(g for g, _ in annotations), signer,
                 SPLIT_NAMES[split] if split else None, times)


def read_table(path: str | os.PathLike, report: Report, delimiter: str | None = None,
               rename: Mapping[str, str] | None = None, split: str | None = None) -> list[Entry]:
    """The clips of a table (see the module docstring); bad rows go to the report.

    Args:
      path: the table.
      report: where bad rows go.
      delimiter, rename: see read_rows.
      split: the split of every row (a release's per-split file), instead of a split column.

    Raises:
      LayoutError: a missing or undecodable file, or a missing column.
    """
    path = Path(path)
    header, rows = read_rows(path, delimiter, rename)
    has_spans = check_header(path, header)
    checked = []
    for line, row in rows:
        row = row | ({"split": split} if split else {})
        problem = row_problem(row)
        if problem:
            report.add("bad row", f"{path.name}:{line}: {problem}")
        checked.append((line, row, problem))
    entries = []
    # Consecutive rows of one id are one clip's annotations (only when the table has spans).
    key = (lambda item: (item[1].get("id") or "").strip()) if has_spans else (lambda item: item[0])
    for _, group in itertools.groupby(checked, key=key):
        group = list(group)
        if any(problem for *_, problem in group):
            continue
        try:
            entries.append(entry(path, [(line, row) for line, row, _ in group]))
        except ValueError as e:
            report.add("bad row", str(e))
    return entries


# --- keypoints -------------------------------------------------------------------------------


def index_keypoints(keypoints: str | os.PathLike) -> tuple[Path, dict[str, list[Path]]]:
    """The folder's keypoint files by name: every trailing part of their path, without extension.

    `extract`'s output folder is read from its poses/; `a/b/clip.npy` is found as `a/b/clip`,
    `b/clip` and `clip`.

    Raises:
      LayoutError: no such folder, or two files of one path (clip.npy and clip.pose).
    """
    keypoints = Path(keypoints)
    if not keypoints.is_dir():
        raise LayoutError(f"{keypoints}: no such folder of keypoint files")
    root = keypoints / "poses" if (keypoints / "poses").is_dir() else keypoints
    index: dict[str, list[Path]] = collections.defaultdict(list)
    full = {}
    for path in sorted(p for p in root.rglob("*") if p.suffix in KEYPOINT_SUFFIXES):
        parts = path.relative_to(root).with_suffix("").parts
        name = "/".join(parts)
        if name in full:
            raise LayoutError(f"{path}: the same clip as {full[name]}; keep one of them")
        full[name] = path
        for k in range(len(parts)):
            index["/".join(parts[k:])].append(path)
    return root, dict(index)


def file_fps(path: Path, root: Path, manifest: Mapping) -> float | None:
    """The frame rate `extract` recorded for a .npy file, if any."""
    entry = manifest.get(path.relative_to(root).with_suffix("").as_posix(), {})
    return entry.get("fps")


def read_keypoints(path: Path, root: Path, manifest: Mapping, allow_partial: bool) -> tuple[np.ndarray, float | None]:
    """(poses, fps or None) of a .pose or .npy file."""
    if path.suffix == ".pose":
        return read_holistic(path, allow_partial)
    return read_pose_file(path), file_fps(path, root, manifest)


def to_frames(times: Times, unit: str, fps: float | None) -> tuple[tuple[int, int], ...]:
    """Spans in frames (end exclusive); seconds are rounded to the nearest frame."""
    if unit == "seconds":
        return tuple((round(s * fps), round(e * fps)) for s, e in times)
    if any(v != int(v) for span in times for v in span):
        raise ValueError("a span in frames is not a whole number; pass --span-unit seconds for times")
    return tuple((int(s), int(e)) for s, e in times)


def clip_spans(times: Times, unit: str, fps: float | None, n_frames: int) -> tuple[tuple[int, int], ...]:
    """A clip's spans in frames; ValueError says why they do not fit its n_frames (or one another)."""
    spans = to_frames(times, unit, fps)
    for i, (start, end) in enumerate(spans):
        if start < 0 or end > n_frames:
            raise ValueError(f"span {start}:{end} is outside the clip's {n_frames} frames")
        if end <= start:
            raise ValueError(f"span {start}:{end} is shorter than a frame")
        if i and start < spans[i - 1][1]:
            raise ValueError(f"span {start}:{end} overlaps the one before it")
    return spans


# --- the corpus ------------------------------------------------------------------------------


def write_entries(entries: Iterable[Entry], keypoints: str | os.PathLike, out: str | os.PathLike, report: Report,
                  source: str, span_unit: str = "frames", fps: float | None = None, seed: int = 0,
                  allow_partial: bool = False, progress: bool = True) -> Report:
    """Writes the corpus of the clips whose keypoints are found and whose spans fit.

    Args:
      entries: the clips (read_table, or another source's reader).
      keypoints: a folder of .npy / .pose files, or `slt-jax extract`'s output folder.
      out: the corpus folder to create (absent or empty); it appears only when complete.
      report: where problems go; written to out with the counts.
      source: what the corpus is, for metadata.json.
      span_unit: "frames" or "seconds", the unit of the entries' times.
      fps: frame rate of files that carry none (.npy without an `extract` manifest entry).
      seed: the order in which signers are held out, for entries without a split.
      allow_partial: accept reduced Holistic .pose layouts.
      progress: show a progress bar.

    Raises:
      LayoutError: a bad keypoint file (by name), seconds without a frame rate, too few signers to
        assign splits, or no clip left.
    """
    if span_unit not in SPAN_UNITS:
        raise LayoutError(f"unknown span unit {span_unit!r}; choose from {', '.join(SPAN_UNITS)}")
    root, index = index_keypoints(keypoints)
    manifest = read_manifest(keypoints)["files"]
    samples, rates, named, first = [], {}, set(), {}
    with staged_corpus(out) as staging:
        for e in tqdm(list(entries), desc="poses", unit="clip", disable=not progress):
            sample_id = e.id.replace("/", "_")
            if sample_id in first:
                report.add("bad row", f"{e.where}: repeated id {e.id!r} (first at {first[sample_id]})")
                continue
            first[sample_id] = e.where
            found = index.get(e.id, [])
            if len(found) != 1:
                what = "no keypoint file" if not found else f"{len(found)} keypoint files ({', '.join(map(str, found))})"
                report.add("missing keypoints", f"{e.where}: {e.id}: {what} in {root}")
                continue
            named.add(found[0])
            pose, rate = read_keypoints(found[0], root, manifest, allow_partial)
            rate = rate or fps
            if span_unit == "seconds" and e.times and not rate:
                raise LayoutError(f"{found[0]}: no frame rate to turn seconds into frames (frame folders "
                                  "and bare .npy files carry none); pass --fps")
            try:
                spans = clip_spans(e.times, span_unit, rate, len(pose)) if e.times else None
            except ValueError as err:
                report.add("bad span", f"{e.where}: {err}")
                continue
            save_pose(staging, sample_id, pose)
            rates[sample_id] = rate
            samples.append(Sample(sample_id, e.text, e.gloss, e.signer, e.split or "", spans))
        for path in sorted({p for paths in index.values() for p in paths} - named):
            report.add("keypoints without a row", str(path))
        if not samples:
            left_out = "; ".join(f"{reason}: {len(items)}, e.g. {items[0]}" for reason, items in report.problems.items())
            raise LayoutError(f"no clip left to write ({left_out})")
        metadata = {"source": source, "keypoints": str(Path(keypoints).resolve())}
        if any(s.split == "" for s in samples):
            signers = assign_splits(collections.Counter(s.signer for s in samples), seed)
            samples = [dataclasses.replace(s, split=s.split or signers[s.signer]) for s in samples]
            metadata["splits_by_signer"] = {"seed": seed, "share": HELD_OUT_SHARE, "signers": signers}
        write_annotations(staging, samples)
        metadata |= fps_metadata(rates)
        write_metadata(staging, metadata)
        counts = collections.Counter(s.split for s in samples)
        report.written = {split: counts[split] for split in ("train", "val", "test")}
        report.write(staging)
    return report


def fps_metadata(rates: Mapping[str, float | None]) -> dict:
    """metadata.json's fps: the clips' common rate; with several, the commonest and each clip's."""
    counts = collections.Counter(r for r in rates.values() if r)
    if len(counts) <= 1:
        return {"fps": next(iter(counts), None)}
    return {"fps": counts.most_common(1)[0][0], "fps_by_id": dict(rates)}


def prepare_csv(annotations: str | os.PathLike, keypoints: str | os.PathLike, out: str | os.PathLike,
                span_unit: str = "frames", fps: float | None = None, seed: int = 0, allow_partial: bool = False,
                progress: bool = True) -> Report:
    """Writes the converted corpus of a user's table and keypoint files; returns the report.

    Args:
      annotations: the table (see the module docstring).
      keypoints: the folder of keypoint files (see write_entries), e.g. `slt-jax extract`'s output.
      out: the corpus folder to create.
      span_unit, fps, seed, allow_partial, progress: see write_entries.

    Raises:
      LayoutError: a missing table column or any error of write_entries. Bad rows, missing
        keypoints and spans that do not fit are left out and listed in the report.
    """
    report = Report()
    entries = read_table(annotations, report)
    source = f"{Path(annotations).name} (spans in {span_unit})"
    return write_entries(entries, keypoints, out, report, source, span_unit, fps, seed, allow_partial, progress)
