"""Writing a converted corpus all at once, the report of what a preparation left out, and
signer-independent splits for corpora that come without any."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from slt_jax.layout import LayoutError, write_json

REPORT = "prepare_report.json"
HELD_OUT_SHARE = 0.1  # without a split column, test and then val get whole signers until each has this share


@contextlib.contextmanager
def staged_corpus(out: str | os.PathLike) -> Iterator[Path]:
    """Yields a hidden folder beside `out` to build the corpus in; renames it to `out` on success.

    A failure (or a bad input found halfway) leaves no partial corpus behind.

    Raises:
      LayoutError: `out` exists and is not an empty folder.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LayoutError(f"{out}: already exists and is not an empty folder; choose a new --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()
    try:
        yield staging
        os.replace(staging, out)  # replaces an empty `out` folder too
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclasses.dataclass
class Report:
    """Samples written per split, and every input row or file left out, grouped by reason."""

    written: dict[str, int] = dataclasses.field(default_factory=dict)
    problems: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def add(self, reason: str, item: str) -> None:
        self.problems.setdefault(reason, []).append(item)

    def to_json(self) -> dict:
        return {
            "written": self.written,
            "left_out": {reason: len(items) for reason, items in self.problems.items()},
            "problems": self.problems,
        }

    def summary(self, shown: int = 5) -> str:
        """A few lines per reason, for the terminal."""
        total = sum(self.written.values())
        splits = ", ".join(f"{split} {n}" for split, n in self.written.items())
        lines = [f"wrote {total} samples ({splits})"]
        for reason, items in self.problems.items():
            lines.append(f"{reason}: {len(items)}")
            lines += [f"  {item}" for item in items[:shown]]
            if len(items) > shown:
                lines.append(f"  ... {len(items) - shown} more in {REPORT}")
        return "\n".join(lines)

    def write(self, root: str | os.PathLike) -> None:
        write_json(Path(root) / REPORT, self.to_json())


def assign_splits(samples_per_signer: Mapping[str, int], seed: int = 0, share: float = HELD_OUT_SHARE) -> dict[str, str]:
    """signer -> split, holding whole signers out of training.

    In a seeded random order, signers go to test until it holds at least `share` of the samples,
    then to val likewise; the rest train. Each split gets at least one signer.

    Raises:
      LayoutError: fewer than three signers.
    """
    signers = sorted(samples_per_signer)
    if len(signers) < 3:
        raise LayoutError(f"{len(signers)} signer(s): holding whole signers out for val and test needs at "
                          "least 3; give the table a split column")
    pool = [signers[i] for i in np.random.default_rng(seed).permutation(len(signers))]
    target = share * sum(samples_per_signer.values())
    splits = {}
    for split, keep in (("test", 2), ("val", 1)):  # keep: the signers the later splits need
        held = 0
        while held < target and len(pool) > keep:
            signer = pool.pop(0)
            splits[signer] = split
            held += samples_per_signer[signer]
    return splits | dict.fromkeys(pool, "train")
