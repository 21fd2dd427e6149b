"""GSL, the Greek Sign Language dataset (Adaloglou et al. 2020), as released -> converted layout.

The release's `GSL_continuous/` files are UTF-8, `|`-separated and header-less:

    annotations.csv                      <folder>/<sentence>|<text>|<glosses>
    gsl_split_SI_{train,dev,test}.csv    <scenario>/<folder>/<sentence>|<glosses>   (signer-independent)
    GSL_SD_{train,dev,test}.csv          the same, signer-dependent

with folder = <scenario>_signer<k>_rep<r>_sentences and sentence = sentences<NNNN>, the same
path as the sentence's folder of frames. Keypoints come from `slt-jax extract` run on those
frame folders; they are matched on <folder>/<sentence>, wherever the extraction put them.
Glosses come from the split file (they may differ between repetitions), text from annotations.csv.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
from pathlib import Path

from tqdm import tqdm

from slt_jax.extract import read_manifest
from slt_jax.layout import LayoutError, Sample, load_pose, save_pose, write_annotations, write_metadata
from slt_jax.prepare.corpus import Report, staged_corpus

SPLIT_FILES = {"si": "gsl_split_SI_{}.csv", "sd": "GSL_SD_{}.csv"}
RELEASE_SPLITS = {"train": "train", "dev": "val", "test": "test"}  # release name -> ours
FPS = 30  # RealSense D435 recordings; frame folders carry no rate
_PATH = re.compile(r"(?:[^/]+/)?([^/]+_(signer\d+)_rep\d+_sentences/sentences\d+)")
_PATH_FORM = "[<scenario>/]<scenario>_signer<k>_rep<r>_sentences/sentences<NNNN>"


@dataclasses.dataclass(frozen=True)
class Row:
    """One well-formed line of a release file."""

    where: str  # file:line
    key: str  # <folder>/<sentence>
    signer: str  # signer<k>
    fields: tuple[str, ...]  # the fields after the path


def read_rows(path: Path, n_fields: int, report: Report) -> list[Row]:
    """The well-formed rows of a release file; the malformed ones go to the report.

    Raises:
      LayoutError: the file is missing or not UTF-8.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LayoutError(f"{path}: GSL release file not found") from None
    except UnicodeDecodeError as e:
        raise LayoutError(f"{path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        fields = [f.strip() for f in line.split("|")]
        match = _PATH.fullmatch(fields[0])
        if len(fields) != n_fields:
            problem = f"{len(fields)} fields, expected {n_fields}"
        elif not all(fields):
            problem = "an empty field"
        elif not match:
            problem = f"path is not {_PATH_FORM}"
        else:
            rows.append(Row(where, match[1], match[2], tuple(fields[1:])))
            continue
        report.add("malformed row", f"{where}: {problem}: {line!r}")
    return rows


def index_keypoints(keypoints: Path) -> dict[str, str]:
    """<folder>/<sentence> -> pose id, for every poses/**/*.npy of an extraction folder.

    Raises:
      LayoutError: no poses/ folder, or two files for the same sentence.
    """
    poses = keypoints / "poses"
    if not poses.is_dir():
        raise LayoutError(f"{keypoints}: no poses/ folder; pass the --out folder of `slt-jax extract`")
    index: dict[str, str] = {}
    for path in sorted(poses.rglob("*.npy")):
        pose_id = path.relative_to(poses).with_suffix("").as_posix()
        key = "/".join(pose_id.split("/")[-2:])
        if key in index:
            raise LayoutError(f"{path}: the same sentence as {poses / index[key]}.npy; keep one of them")
        index[key] = pose_id
    return index


def sample_id(key: str) -> str:
    """A flat id: police1_signer1_rep1_sentences/sentences0000 -> ..._sentences_sentences0000."""
    return key.replace("/", "_")


def prepare_gsl(annotations: str | os.PathLike, keypoints: str | os.PathLike, out: str | os.PathLike,
                protocol: str = "si", progress: bool = True) -> Report:
    """Writes the converted corpus of one GSL protocol; returns what was written and left out.

    Args:
      annotations: the release's GSL_continuous/ folder (annotations.csv and split files).
      keypoints: an extraction folder (poses/ and manifest.json) of the sentence frame folders.
      out: the corpus folder to create (absent or empty).
      protocol: "si" (signer-independent, the paper's) or "sd" (signer-dependent).
      progress: show a progress bar while copying poses.

    Raises:
      LayoutError: a missing or undecodable release file, a bad keypoints folder or pose file,
        or no sample left to write. Missing keypoints, duplicate and malformed rows are not
        errors: they are left out and listed in the report.
    """
    if protocol not in SPLIT_FILES:
        raise LayoutError(f"unknown protocol {protocol!r}; choose from {', '.join(SPLIT_FILES)}")
    annotations, keypoints = Path(annotations), Path(keypoints)
    report = Report()
    texts: dict[str, Row] = {}
    for row in read_rows(annotations / "annotations.csv", 3, report):
        if row.key in texts:
            report.add("duplicate row", f"{row.where}: {row.key} already at {texts[row.key].where}")
        else:
            texts[row.key] = row
    index = index_keypoints(keypoints)
    failed = {"/".join(i.split("/")[-2:]): e.get("error", "") for i, e in read_manifest(keypoints)["files"].items()
              if e.get("status") != "ok"}
    chosen: list[tuple[Sample, str]] = []
    seen: dict[str, str] = {}
    for release_split, split in RELEASE_SPLITS.items():
        for row in read_rows(annotations / SPLIT_FILES[protocol].format(release_split), 2, report):
            if row.key in seen:
                report.add("duplicate row", f"{row.where}: {row.key} already at {seen[row.key]}")
                continue
            seen[row.key] = row.where
            if row.key not in texts:
                report.add("no text in annotations.csv", f"{row.where}: {row.key}")
            elif row.key not in index:
                reason = f" (extraction failed: {failed[row.key]})" if row.key in failed else ""
                report.add("missing keypoints", f"{row.where}: {row.key}{reason}")
            else:
                gloss = " ".join(row.fields[0].split())
                sample = Sample(sample_id(row.key), texts[row.key].fields[0], gloss, row.signer, split)
                chosen.append((sample, index[row.key]))
    for key in sorted(texts.keys() - seen.keys()):
        report.add("in annotations.csv but no split file", f"{texts[key].where}: {key}")
    if not chosen:
        raise LayoutError(f"{annotations}: no {protocol.upper()} sample has keypoints in {keypoints}")

    with staged_corpus(out) as root:
        for sample, pose_id in tqdm(chosen, desc="poses", unit="sample", disable=not progress):
            save_pose(root, sample.id, load_pose(keypoints, pose_id))
        samples = [sample for sample, _ in chosen]
        write_annotations(root, samples)
        write_metadata(root, {
            "source": "GSL continuous (Adaloglou et al. 2020)",
            "protocol": protocol,
            "fps": FPS,
            "keypoints": read_manifest(keypoints).get("backend", "MediaPipe Holistic"),
        })
        counts = collections.Counter(s.split for s in samples)
        report.written = {split: counts[split] for split in RELEASE_SPLITS.values()}
        report.write(root)
    return report
