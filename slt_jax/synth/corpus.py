"""A whole synthetic corpus: who signs which sentence how often, and writing it to disk.

Everything follows from (preset, seed). Each sample draws from its own random streams, keyed by
its index, so a sample comes out the same whichever worker makes it and in whatever order, and a
sample's gloss spans can be recomputed without redrawing its poses (which is how an interrupted
run resumes).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from slt_jax import layout
from slt_jax.synth import language, lexicon, motion, signer as signers
from slt_jax.synth.presets import Preset, sentence_lengths
from slt_jax.synth.skeleton import skeleton
from slt_jax.synth.tracker import observe

VERSION = 4  # bump when a change alters what a (preset, seed) generates
SPANS_DEFINITION = ("[start, end) frames of each sign itself (its holds and movement); the "
                    "transitions between signs, pauses and the rest poses are excluded")
# Tags that keep the random streams apart.
_LANGUAGE, _LEXICON, _SIGNERS, _HABITS, _SCHEDULE, _MOTION, _BODY, _TRACKER = range(8)


@dataclasses.dataclass(frozen=True)
class Planned:
    """One sample to generate."""

    id: str
    sentence: int
    signer: int
    repetition: int
    split: str


@dataclasses.dataclass(frozen=True)
class World:
    """The lexicon, the sentences, the signers and the schedule of a (preset, seed)."""

    preset: Preset
    seed: int
    glosses: list[language.Gloss]
    forms: list[lexicon.SignForm]
    sentences: list[language.Sentence]
    signers: list[signers.Signer]
    plan: list[Planned]


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _schedule(preset: Preset, seed: int) -> list[Planned]:
    """Each signer skips a different block of the sentences; GSL's signer-independent split."""
    order = _rng(seed, _SCHEDULE).permutation(preset.sentences)
    skip = preset.sentences - preset.sentences_per_signer
    plan = []
    for k in range(preset.signers):
        skipped = {int(order[(k * skip + j) % preset.sentences]) for j in range(skip)}
        for rep in range(preset.repetitions):
            split = ("train" if k != preset.test_signer else
                     "val" if rep < preset.val_repetitions else "test")
            plan += [Planned(f"signer{k + 1}_rep{rep + 1}_sentence{s:04d}", s, k, rep, split)
                     for s in range(preset.sentences) if s not in skipped]
    return plan


def _novel_sentences(rng: np.random.Generator, preset: Preset, glosses: list[language.Gloss],
                     plan: list[Planned]) -> tuple[list[language.Sentence], list[Planned]]:
    """A sentence per sample, lengths in GSL's proportions shuffled over the samples; each
    sample is renamed after its own sentence."""
    lengths = rng.permutation(sentence_lengths(len(plan), preset.max_glosses)).tolist()
    sentences = language.make_novel_sentences(rng, glosses, lengths, [p.split != "train" for p in plan])
    plan = [dataclasses.replace(p, id=f"signer{p.signer + 1}_rep{p.repetition + 1}_sentence{i:04d}", sentence=i)
            for i, p in enumerate(plan)]
    return sentences, plan


def build_world(preset: Preset, seed: int) -> World:
    """Draws everything a corpus shares (fast: no poses)."""
    rng = _rng(seed, _LANGUAGE)
    glosses = language.make_glosses(rng, preset.glosses)
    plan = _schedule(preset, seed)
    if preset.novel_sentences:
        sentences, plan = _novel_sentences(rng, preset, glosses, plan)
    else:
        sentences = language.make_sentences(rng, glosses, sentence_lengths(preset.sentences, preset.max_glosses))
    forms = lexicon.make_lexicon(_rng(seed, _LEXICON), preset.glosses)
    rng = _rng(seed, _SIGNERS)
    trainers = [k for k in range(preset.signers) if k != preset.test_signer]
    lefties = set(rng.choice(trainers, preset.left_handed, replace=False).tolist())
    people = [signers.sample_signer(rng, f"signer{k + 1}", k in lefties) for k in range(preset.signers)]
    return World(preset, seed, glosses, forms, sentences, people, plan)


def perform(world: World, index: int) -> motion.Performance:
    """Plans sample `index`'s hands (cheap; its spans are final)."""
    item = world.plan[index]
    rng = _rng(world.seed, _MOTION, index)
    glosses = world.sentences[item.sentence].glosses
    variations = [motion.draw_variation(_rng(world.seed, _HABITS, item.signer, g), 1.0)
                  + motion.draw_variation(rng, 0.5) for g in glosses]
    return motion.perform([world.forms[g] for g in glosses], variations, world.signers[item.signer],
                          rng, world.preset.tempo)


def sample(world: World, index: int) -> tuple[np.ndarray, tuple[layout.Span, ...]]:
    """Sample `index`'s pose, (frames, 1, 543, 3) float32, and its gloss spans."""
    person = world.signers[world.plan[index].signer]
    perf = perform(world, index)
    points = skeleton(perf, person, _rng(world.seed, _BODY, index))
    return observe(points, person, _rng(world.seed, _TRACKER, index)), perf.spans


def annotations(world: World, spans: dict[int, tuple[layout.Span, ...]]) -> list[layout.Sample]:
    rows = []
    for i, item in enumerate(world.plan):
        sentence = world.sentences[item.sentence]
        gloss = " ".join(world.glosses[g].name for g in sentence.glosses)
        rows.append(layout.Sample(item.id, sentence.text, gloss, world.signers[item.signer].name,
                                  item.split, spans[i], sentence.alignment))
    return rows


def metadata(world: World) -> dict:
    """Facts about the corpus, including what each gloss looks like and each sentence's alignment."""
    return {
        "source": "slt-jax synth: synthetic GSL-like signing, not recordings of people",
        "synth": {"preset": world.preset.name, "seed": world.seed, "version": VERSION},
        "preset": dataclasses.asdict(world.preset),
        "fps": signers.FPS, "width": signers.IMAGE_SIZE[0], "height": signers.IMAGE_SIZE[1],
        "landmarks": "mediapipe_holistic", "dims": ["x", "y", "z"],
        "gloss_spans": SPANS_DEFINITION,
        "signers": {p.name: {"left_handed": p.left_handed, "speed": round(p.speed, 3),
                             "rest": p.rest, "split": "test" if k == world.preset.test_signer else "train"}
                    for k, p in enumerate(world.signers)},
        "glosses": {g.name: {"category": g.category, "hands": f.hands, "handshape": f.handshape,
                             "location": f.location, "orientation": f.orientation, "path": f.path}
                    for g, f in zip(world.glosses, world.forms)},
        "sentences": [{"gloss": " ".join(world.glosses[g].name for g in s.glosses), "text": s.text,
                       "alignment": list(s.alignment)} for s in world.sentences],
        "alignment": "per sentence, for each word of the text, the position of the gloss it "
                     "translates (0-based), or null for a word no gloss carries; per sample in "
                     "annotations.csv's text_alignment",
    }


_WORKER: tuple[World, Path] | None = None


def _start_worker(world: World, root: Path) -> None:
    global _WORKER
    _WORKER = world, root


def _make(index: int) -> tuple[int, tuple[layout.Span, ...]]:
    world, root = _WORKER
    pose, spans = sample(world, index)
    layout.save_pose(root, world.plan[index].id, pose)
    return index, spans


def _check_target(root: Path, world: World) -> None:
    """Refuses a folder that holds anything but an unfinished or finished run of this corpus."""
    if not root.exists() or not any(root.iterdir()):
        return
    found = layout.read_metadata(root).get("synth")
    wanted = metadata(world)["synth"]
    if found != wanted:
        what = f"a different corpus ({found})" if found else "files that are not a synthetic corpus"
        raise layout.LayoutError(f"{root}: holds {what}; to write {wanted} choose an empty or new folder")


def write_corpus(root: str | os.PathLike, preset: Preset, seed: int = 0, workers: int = 1,
                 progress: bool = True) -> World:
    """Generates a corpus into `root` in the converted layout, resuming an interrupted run.

    Pose files already there are kept (writes are atomic, so any file present is complete);
    annotations.csv is written last, so its presence marks a finished corpus.

    Args:
      root: the corpus folder; must be new, empty, or hold this same (preset, seed, version).
      preset: the corpus's size and shape.
      seed: the random seed.
      workers: processes that generate poses.
      progress: show a progress bar.

    Returns:
      The world the corpus was drawn from.
    """
    root = Path(root)
    world = build_world(preset, seed)
    _check_target(root, world)
    layout.write_metadata(root, metadata(world))
    done = {i for i, item in enumerate(world.plan) if layout.pose_path(root, item.id).is_file()}
    spans = {i: perform(world, i).spans for i in done}
    todo = [i for i in range(len(world.plan)) if i not in done]
    bar = tqdm(total=len(todo), desc=f"synth {preset.name}", unit="sample", disable=not progress)
    if workers > 1 and len(todo) > 1:
        with multiprocessing.get_context().Pool(workers, _start_worker, (world, root)) as pool:
            for i, s in pool.imap_unordered(_make, todo, chunksize=8):
                spans[i] = s
                bar.update()
    else:
        _start_worker(world, root)
        for i in todo:
            spans.update([_make(i)])
            bar.update()
    bar.close()
    layout.write_annotations(root, annotations(world, spans))
    return world
