"""The study's controls at a small size, end to end: corpus, vmapped seeds, analyses, tables.

The positive control is the tiny preset with a new sentence in every sample (no held-out
sentence can be recalled, so translating takes finding the signs) and normalised features; the
negative control is the same with every sample's frames shuffled in time. The full-size figures
are in docs/findings.md; here the attention of the positive control must land in the glosses'
own signs well above chance, and the negative control's must not.
"""

import dataclasses
import json

import numpy as np
import pytest

from slt_jax import data
from slt_jax.analysis import heads
from slt_jax.config import DataConfig
from slt_jax.pipelines.designs import CELLS_BY_NAME, Cell
from slt_jax.pipelines.study import study
from slt_jax.synth.corpus import write_corpus
from slt_jax.synth.presets import PRESETS

TINY_NOVEL = dataclasses.replace(PRESETS["tiny"], name="tiny_novel", novel_sentences=True, glosses=8, signers=3,
                                 repetitions=4, sentences_per_signer=24, val_repetitions=1)
TRAINING = ("data.body_norm=sequence", "data.hand_norm=true", "train.max_epochs=80", "train.patience=80")


def test_novel_corpus_never_repeats_a_held_out_sentence(tmp_path):
    from slt_jax.synth.corpus import build_world

    world = build_world(PRESETS["novel"], 0)
    assert len(world.sentences) == len(world.plan) == PRESETS["novel"].samples
    training = {world.sentences[p.sentence].glosses for p in world.plan if p.split == "train"}
    held_out = [world.sentences[p.sentence].glosses for p in world.plan if p.split != "train"]
    several = [g for g in held_out if len(g) >= 2]
    assert len(several) > 0.7 * len(held_out)
    assert not any(g in training for g in several) and len(set(several)) == len(several)
    # small, by contrast, holds out only sentences that training repeats
    small = build_world(PRESETS["small"], 0)
    assert all(small.sentences[p.sentence].glosses in {small.sentences[q.sentence].glosses for q in small.plan
                                                        if q.split == "train"} for p in small.plan)


def test_shuffled_frames_are_a_fixed_permutation_of_the_same_frames(tmp_path):
    write_corpus(tmp_path, PRESETS["tiny"], 0, progress=False)
    plain, shuffled = DataConfig(max_frames=64, buckets=(32, 64)), DataConfig(max_frames=64, buckets=(32, 64),
                                                                              shuffle_frames=True)
    vocab = data.fit_vocab(tmp_path, plain)
    examples = data.load_examples(tmp_path, "test", plain, vocab)
    a, b = (next(data.make_batches(examples, c, 4)) for c in (plain, shuffled))
    again = next(data.make_batches(examples, shuffled, 4))
    np.testing.assert_array_equal(b["frames"], again["frames"])
    np.testing.assert_array_equal(a["gloss_spans"], b["gloss_spans"])  # spans keep their places in time
    for row in range(4):
        n = int(a["frame_mask"][row].sum())
        assert not np.array_equal(a["frames"][row, :n], b["frames"][row, :n])
        np.testing.assert_array_equal(np.sort(a["frames"][row, :n], 0), np.sort(b["frames"][row, :n], 0))


def test_content_removed_frames_keep_only_positions():
    frames = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    mask = np.array([[True, True, True, False], [True, True, False, False]])
    blind = heads.without_content(frames, mask)
    np.testing.assert_allclose(blind[0, :3], np.broadcast_to(frames[0, :3].mean(0), (3, 3)))
    np.testing.assert_allclose(blind[1, :2], np.broadcast_to(frames[1, :2].mean(0), (2, 3)))
    assert not blind[0, 3].any() and not blind[1, 2:].any()


def test_head_null_separates_an_aligned_head_from_chance():
    rng = np.random.default_rng(0)
    n_N = rng.integers(1, 9, 80)
    centroid_NxHxS = rng.random((80, 8, 10))
    chance = heads.head_diagonality(centroid_NxHxS, n_N)
    assert chance["best"] < chance["best_null95"] + 0.1 and chance["best_p"] > 0.01
    centroid_NxHxS[:, 3] = np.arange(10) / 10
    aligned = heads.head_diagonality(centroid_NxHxS, n_N)
    assert aligned["best_head"] == 3 and aligned["best"] == pytest.approx(1.0)
    assert aligned["best"] > aligned["best_null95"] and aligned["best_p"] < 0.01
    assert abs(aligned["averaged"]) < aligned["best"]


def test_regions_score_a_text_by_the_signs_of_its_words():
    # 8 frames: rest, HOUSE (1-2), a transition, TALL (4-6), rest. Four words, two glosses: an
    # article that no gloss carries, HOUSE, TALL, HOUSE again; each word attends to one frame.
    spans = np.array([[-1, -1], [1, 3], [4, 7], [1, 3], [-1, -1]])
    attention = np.zeros((5, 8))
    attention[[0, 1, 2, 3], [7, 1, 5, 2]] = 1.0  # the article on the final rest, the others on their sign
    shares = heads.region_shares([(attention, spans, 4, np.ones(8, bool))])
    assert shares["all"] == {"before": 0.0, "sign": 1.0, "between": 0.0, "after": 0.0, "own_sign": 1.0,
                             "own_sign_frames": round((2 + 3 + 2) / 24, 4)}  # the article left out
    assert shares["first"]["own_sign"] == shares["last"]["own_sign"] == 1.0
    assert shares["frames"] == {"before": 0.125, "sign": 0.625, "between": 0.125, "after": 0.125}
    assert heads.region_shares([(attention, np.full((5, 2), -1), 4, np.ones(8, bool))]) is None  # no alignment


def test_positive_control_aligns_and_negative_control_does_not(tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus, TINY_NOVEL, 0, progress=False)
    cells = [Cell("positive", str(corpus), "tiny", "positive control", TRAINING),
             Cell("negative", str(corpus), "tiny", "negative control", TRAINING + ("data.shuffle_frames=true",))]
    summary = study(tmp_path / "study", cells, seeds=2, recipe=None, progress=False)  # tiny's own recipe

    results = summary["results"]
    own = {name: [r["own_sign"] for r in rows] for name, rows in results.items()}
    accuracy = {name: [r["alignment_accuracy"] for r in rows] for name, rows in results.items()}
    assert min(accuracy["positive"]) > 0.25 > max(accuracy["negative"])
    assert np.mean(own["positive"]) > np.mean(own["negative"])
    for rows in results.values():
        for r in rows:
            assert len(r["per_head"]) == 4 and r["best_head"] >= r["forced_diagonality"]
    saved = json.loads((tmp_path / "study" / "study.json").read_text())
    assert saved["results"]["positive"][0]["own_sign"] == own["positive"][0]
    assert (tmp_path / "study" / "study.png").stat().st_size > 10_000
    markdown = (tmp_path / "study" / "study.md").read_text()
    assert "| positive | positive control | 2 |" in markdown
    assert summary["checks"] == {}  # the named conditions are the full-size cells
    assert set(CELLS_BY_NAME) >= {"small-gloss16", "novel-gloss16-normalised-patience100"}


def test_the_command_names_unknown_cells_and_lists_the_study():
    from slt_jax.cli import main

    with pytest.raises(SystemExit, match="unknown cell.*nope.*choose from novel-gloss16"):
        main(["study", "--out", "unused", "--cells", "small-gloss16,nope"])
