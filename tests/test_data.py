"""The data path: features, sampling, spans, vocabulary, batches, and clear errors."""

import dataclasses

import numpy as np
import pytest

from slt_jax import data
from slt_jax.config import BOS, EOS, PAD, UNK, DataConfig
from slt_jax.layout import LayoutError, Sample, read_annotations, save_pose, write_annotations

from conftest import write_corpus


def test_vocab_fits_on_frequency_then_alphabet_and_maps_unseen_to_unk():
    vocab = data.Vocab.fit(["B A", "A C", "A"])
    assert vocab.tokens[4:] == ("A", "B", "C")
    assert vocab.encode("C A ZZZ") == [6, 4, UNK]
    assert vocab.decode([BOS, 6, 4, EOS, 5, PAD]) == "C A"


def test_select_features_takes_body_and_hands_xy_and_zeroes_nan():
    pose = np.arange(2 * 1 * 543 * 3, dtype=np.float32).reshape(2, 1, 543, 3)
    pose[0, 0, 501, 0] = np.nan  # left hand's wrist x
    features = data.select_features(pose, DataConfig())
    assert features.shape == (2, 150)
    np.testing.assert_array_equal(features[1, :2], pose[1, 0, 0, :2])  # body point 0
    np.testing.assert_array_equal(features[1, 66:68], pose[1, 0, 501, :2])  # left wrist after 33 body points
    np.testing.assert_array_equal(features[1, 148:], pose[1, 0, 542, :2])
    assert features[0, 66] == 0.0
    assert data.select_features(pose, DataConfig(use_3d=True, groups=("body",))).shape == (2, 99)


def test_sampling_keeps_one_frame_per_chunk():
    np.testing.assert_array_equal(data.sample_frames(10, 3, None), [0, 3, 6, 9])
    rng = np.random.default_rng(0)
    for _ in range(20):
        picked = data.sample_frames(11, 3, rng)
        assert len(picked) == 4
        assert np.all(picked // 3 == np.arange(4)) and picked[-1] <= 10


def test_spans_map_to_sampled_frames():
    spans = np.array([[0, 5], [5, 9], [9, 13]])
    np.testing.assert_array_equal(data.map_spans(spans, np.array([0, 3, 6, 9, 12])), [[0, 2], [2, 3], [3, 5]])
    np.testing.assert_array_equal(data.map_spans(spans, np.array([1, 4, 8, 11])), [[0, 2], [2, 3], [3, 4]])
    np.testing.assert_array_equal(data.map_spans(np.array([[-1, -1], [5, 9]]), np.array([0, 3, 6])), [[-1, -1], [2, 3]])


def test_text_tokens_get_the_span_of_the_gloss_they_render(tmp_path):
    # "to mega spiti einai psilo" for HOUSE TALL: "to" and "einai" render no gloss, "mega spiti" both HOUSE.
    aligned = Sample("a", "to mega spiti einai psilo", "HOUSE TALL", "1", "train", ((3, 12), (15, 24)),
                     (None, 0, 0, None, 1))
    unaligned = dataclasses.replace(aligned, id="b", text_alignment=None)
    write_annotations(tmp_path, [aligned, unaligned])
    for sid in "ab":
        save_pose(tmp_path, sid, np.random.default_rng(0).uniform(size=(27, 1, 543, 3)))
    assert read_annotations(tmp_path) == [aligned, unaligned]

    def spans(target: str) -> np.ndarray:
        config = DataConfig(target=target, max_tokens=8)
        examples = data.load_examples(tmp_path, "train", config, data.fit_vocab(tmp_path, config))
        batch = next(data.make_batches(examples, config, 2))
        assert list(batch["index"]) == [0, 1]
        return batch["gloss_spans"]

    unknown = [-1, -1]
    # Frames 0, 3, ..., 24 are sampled: HOUSE is sampled frames 1-3, TALL 5-7.
    np.testing.assert_array_equal(spans("text"), [[unknown, [1, 4], [1, 4], unknown, [5, 8]] + [unknown] * 3,
                                                  [unknown] * 8])  # no word alignment: no word's sign is known
    np.testing.assert_array_equal(spans("gloss"), [[[1, 4], [5, 8]] + [unknown] * 6] * 2)


def test_batches_have_static_bucket_shapes_and_keep_every_sample(corpus_dir):
    config = DataConfig(buckets=(8, 16, 220))
    vocab = data.fit_vocab(corpus_dir, config)
    examples = data.load_examples(corpus_dir, "train", config, vocab)
    batches = list(data.make_batches(examples, config, batch_size=8, rng=np.random.default_rng(0)))
    assert len(batches) == data.n_batches(examples, config, 8)
    assert {b["frames"].shape[1] for b in batches} <= {8, 16, 220}
    assert all(b["frames"].shape == (8, b["frames"].shape[1], 150) for b in batches)
    seen = np.concatenate([b["index"][b["sample_mask"]] for b in batches])
    assert sorted(seen) == list(range(len(examples)))
    b = batches[0]
    row = int(np.flatnonzero(b["sample_mask"])[0])
    ex = examples[b["index"][row]]
    n = len(ex.tokens)
    assert b["decoder_input"][row, 0] == BOS and b["target"][row, n] == EOS
    np.testing.assert_array_equal(b["decoder_input"][row, 1 : n + 1], b["target"][row, :n])
    assert b["frame_mask"][row].sum() == -(-len(ex.frames) // 3)
    spans = b["gloss_spans"][row, :n]
    assert np.all(spans[:, 0] < spans[:, 1]) and np.all(b["gloss_spans"][row, n:] == -1)


def test_evaluation_batches_are_deterministic(corpus_dir):
    config = DataConfig()
    vocab = data.fit_vocab(corpus_dir, config)
    examples = data.load_examples(corpus_dir, "val", config, vocab)
    first, second = (list(data.make_batches(examples, config, 4)) for _ in range(2))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a["frames"], b["frames"])


def frames_by_sample(batches) -> dict[int, np.ndarray]:
    return {int(b["index"][r]): b["frames"][r] for b in batches for r in np.flatnonzero(b["sample_mask"])}


def test_random_evaluation_frames_are_the_authors_draw_and_reproducible(corpus_dir):
    config = DataConfig(eval_sampling="random")
    vocab = data.fit_vocab(corpus_dir, config)
    examples = data.load_examples(corpus_dir, "val", config, vocab)
    first = frames_by_sample(data.make_batches(examples, DataConfig(), 4))
    drawn, again = (frames_by_sample(data.make_batches(examples, config, 4)) for _ in range(2))
    assert drawn.keys() == again.keys() == first.keys() == set(range(len(examples)))
    for i in drawn:
        np.testing.assert_array_equal(drawn[i], again[i])
    assert sum(not np.array_equal(drawn[i], first[i]) for i in drawn) == len(examples)  # hands move every frame
    # One frame of each chunk of 3, chosen by the sample alone: the same in any batch, and in a subset.
    for i, ex in enumerate(examples):
        picked = data.sample_frames(len(ex.frames), 3, data.eval_frame_rng(ex.id, config))
        assert np.all(picked // 3 == np.arange(len(picked))) and picked[-1] < len(ex.frames)
        np.testing.assert_array_equal(drawn[i][: len(picked)], ex.frames[picked])
    alone = frames_by_sample(data.make_batches(examples[3:4], config, 1))
    np.testing.assert_array_equal(alone[0], drawn[3])


def test_missing_pose_file_names_the_file(tmp_path):
    write_corpus(tmp_path, n_train=3, n_eval=1)
    (tmp_path / "poses" / "s001.npy").unlink()
    with pytest.raises(LayoutError, match=r"s001\.npy: pose file not found"):
        data.load_examples(tmp_path, "train", DataConfig(), data.Vocab.fit(["A"]))


def test_wrong_shape_names_the_file(tmp_path):
    write_corpus(tmp_path, n_train=3, n_eval=1)
    save_pose(tmp_path, "s002", np.zeros((5, 1, 75, 2)))
    with pytest.raises(LayoutError, match=r"s002\.npy: shape \(5, 1, 75, 2\)"):
        data.load_examples(tmp_path, "train", DataConfig(), data.Vocab.fit(["A"]))


@pytest.mark.parametrize("text,problem", [
    ("id,text,gloss,signer\na,b,C,1\n", "missing column"),
    ("id,text,gloss,signer,split\na,b,C,1,train,extra\n", "expected 5 fields"),
    ("id,text,gloss,signer,split\na,b,C,1,dev\n", "split 'dev'"),
    ("id,text,gloss,signer,split\na,b,C,1,train\na,b,C,1,test\n", "duplicate id 'a'"),
    ("id,text,gloss,signer,split,gloss_spans\na,b,C D,1,train,0:4\n", "1 spans for 2 glosses"),
    ("id,text,gloss,signer,split,gloss_spans\na,b,C D,1,train,0:4 3:6\n", "overlaps"),
    ("id,text,gloss,signer,split,text_alignment\na,b c,C D,1,train,1\n", "1 alignment entries for 2 words"),
    ("id,text,gloss,signer,split,text_alignment\na,b c,C,1,train,0 1\n", "'1' is neither '-' nor a gloss position"),
    ("id,text,gloss,signer,split\n", "no samples"),
])
def test_malformed_annotations_name_the_file_and_problem(tmp_path, text, problem):
    (tmp_path / "annotations.csv").write_text(text)
    with pytest.raises(LayoutError, match=problem) as info:
        read_annotations(tmp_path)
    assert "annotations.csv" in str(info.value)


def test_annotations_round_trip(tmp_path):
    samples = [Sample("a", "γεια σας", "ΓΕΙΑ ΕΓΩ(1)", "3", "train", ((0, 4), (4, 9)), (None, 0)),
               Sample("b", "x, \"y\"", "Z", "1", "test", None)]
    write_annotations(tmp_path, samples)
    assert read_annotations(tmp_path) == samples
