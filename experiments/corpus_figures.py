"""The pictures in docs/corpus.md: a synthetic sample beside a real PHOENIX recording, one
sentence by every signer, and an animation.

    python experiments/corpus_figures.py [--out docs/img]

The PHOENIX sentence is the fixture ../shared/fixtures/pose/phoenix2014t_*.pose (read, never
copied); without it that figure is skipped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from slt_jax.synth import corpus, render
from slt_jax.synth.presets import PRESETS
from slt_jax.synth.signer import IMAGE_SIZE

ROOT = Path(__file__).resolve().parents[1]
PHOENIX = ROOT.parent / "shared" / "fixtures" / "pose" / "phoenix2014t_25October_2010_Monday_tagesschau-17.pose"
PHOENIX_SIZE = (210, 260)  # the fixture's header: width x height in pixels
PHOENIX_GLOSS = "REGEN SCHNEE REGION VERSCHWINDEN NORD REGEN KOENNEN REGION STERN KOENNEN SEHEN"


def synthetic(world: corpus.World, index: int, title: str = "") -> render.Sequence:
    pose, spans = corpus.sample(world, index)
    item = world.plan[index]
    glosses = [world.glosses[g].name for g in world.sentences[item.sentence].glosses]
    return render.Sequence(pose, IMAGE_SIZE, render.captions_from_spans(len(pose), glosses, spans),
                           title or f"synthetic ({item.id}): {' '.join(glosses)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    world = corpus.build_world(PRESETS["gsl"], args.seed)
    # A five-gloss sentence, the most common length after one and four, by the test signer.
    index = next(i for i, item in enumerate(world.plan)
                 if item.split == "test" and len(world.sentences[item.sentence].glosses) == 5)
    sample = synthetic(world, index)

    if PHOENIX.is_file():
        from slt_jax.prepare.pose_file import read_holistic

        pose, _ = read_holistic(PHOENIX)
        title = f"real (RWTH-PHOENIX-2014-T, MediaPipe Holistic): {PHOENIX_GLOSS}"
        real = render.Sequence(pose, PHOENIX_SIZE, None, title)
        render.strip([real, sample], args.out / "corpus_vs_phoenix.png", frames=10)
    else:
        print(f"{PHOENIX} not found: skipping the comparison with PHOENIX")

    # The same sentence by every signer who signs it (their first repetition).
    sentence = world.plan[index].sentence
    rows = []
    for i, item in enumerate(world.plan):
        if item.sentence == sentence and item.repetition == 0:
            person = world.signers[item.signer]
            rows.append(synthetic(world, i, f"{item.id}{' (left-handed)' if person.left_handed else ''}"))
    render.strip(rows, args.out / "corpus_signers.png", frames=8)
    render.animation(sample, args.out / "corpus_sample.gif")
    print(f"wrote {', '.join(p.name for p in sorted(args.out.glob('corpus_*')))} in {args.out}")


if __name__ == "__main__":
    main()
