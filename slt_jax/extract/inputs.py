"""Finding the inputs a folder, file or glob names: videos, frame folders and images, by id."""

from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path
from typing import Iterator

from slt_jax.layout import LayoutError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclasses.dataclass(frozen=True)
class Source:
    """One input: a video file, or a sequence of images (a folder of frames or one image)."""

    id: str
    path: Path
    kind: str  # "video" or "images"


def _relative_id(path: Path, base: Path) -> str:
    rel = path.relative_to(base).as_posix()
    return base.resolve().name if rel == "." else rel


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _glob_base(pattern: str) -> Path:
    """The folders before a glob's first wildcard; ids are relative to them."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if _is_glob(part)), len(parts))
    return Path(*parts[:fixed]) if fixed else Path(".")


def _walk(folder: Path, base: Path) -> Iterator[Source]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        here = Path(dirpath)
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in filenames):
            yield Source(_relative_id(here, base), here, "images")
        for f in sorted(filenames):
            if f.lower().endswith(VIDEO_EXTENSIONS):
                yield Source(_relative_id(here / Path(f).stem, base), here / f, "video")


def find_sources(spec: str) -> list[Source]:
    """Lists the inputs named by a folder, a file or a glob, sorted by id.

    Args:
      spec: a folder (searched recursively: each video is an input, each folder holding images
        is one input), a video or image file, or a glob of those (quote it in the shell).

    Raises:
      LayoutError: nothing found, or two inputs share an id (e.g. a.mp4 and a.avi).
    """
    if _is_glob(spec):
        base, matches = _glob_base(spec), sorted(glob.glob(spec, recursive=True))
    elif os.path.exists(spec):
        base, matches = (Path(spec) if os.path.isdir(spec) else Path(spec).parent), [spec]
    else:
        raise LayoutError(f"{spec}: no such file or folder")
    sources = []
    for match in map(Path, matches):
        suffix = match.suffix.lower()
        if match.is_dir():
            sources += _walk(match, base)
        elif suffix in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS:
            kind = "video" if suffix in VIDEO_EXTENSIONS else "images"
            sources.append(Source(_relative_id(match.with_suffix(""), base), match, kind))
    if not sources:
        raise LayoutError(
            f"{spec}: no videos ({', '.join(VIDEO_EXTENSIONS)}) or images "
            f"({', '.join(IMAGE_EXTENSIONS)}) found"
        )
    by_id: dict[str, Source] = {}
    for s in sources:
        if s.id in by_id and by_id[s.id].path != s.path:
            raise LayoutError(f"{s.path} and {by_id[s.id].path} would both be written as id {s.id!r}")
        by_id[s.id] = s
    return sorted(by_id.values(), key=lambda s: s.id)
