"""The TFDS builder yields, split by split and sample by sample, what the direct reader yields."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import write_corpus
from slt_jax import data
from slt_jax.config import DataConfig
from slt_jax.layout import read_annotations, write_annotations
from slt_jax.tfds_builder import CorpusConfig, SltJaxCorpus, to_examples


# Also run in .venv-extract: the builder must import and work on the stack mediapipe pins.
pytestmark = pytest.mark.extract_env

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The toy corpus, with gloss spans dropped from every other sample (as .pose imports have none)
    and each text aligned with its glosses ("the <gloss> ...": the article renders none)."""
    root = tmp_path_factory.mktemp("corpus")
    samples = write_corpus(root, n_train=12, n_eval=4, seed=3)
    write_annotations(root, [dataclasses.replace(s, gloss_spans=s.gloss_spans if i % 2 else None,
                                                 text_alignment=(None, *range(len(s.gloss.split()))))
                             for i, s in enumerate(samples)])
    return root


def assert_same_examples(got: list[data.Example], expected: list[data.Example]):
    assert [e.id for e in got] == [e.id for e in expected]
    for g, e in zip(got, expected):
        assert g.reference == e.reference
        assert g.frames.dtype == e.frames.dtype and g.tokens.dtype == e.tokens.dtype
        np.testing.assert_array_equal(g.frames, e.frames)
        np.testing.assert_array_equal(g.tokens, e.tokens)
        if e.gloss_spans is None:
            assert g.gloss_spans is None
        else:
            np.testing.assert_array_equal(g.gloss_spans, e.gloss_spans)


@pytest.mark.parametrize("target", ["gloss", "text"])
def test_data_source_equals_the_direct_reader(corpus, tmp_path, target):
    splits = tfds.data_source(f"slt_jax_corpus/{target}", data_dir=tmp_path,
                              builder_kwargs={"corpus": str(corpus)})
    config = DataConfig(target=target)
    vocab = data.fit_vocab(corpus, config)
    assert sorted(splits) == ["test", "train", "val"]
    for split, source in splits.items():
        examples = data.load_examples(corpus, split, config, vocab)
        assert_same_examples(to_examples(source), examples)
        if target == "text":  # the article's sign is unknown, each other word's is its gloss's
            spans = [ex.gloss_spans for ex in examples if ex.gloss_spans is not None]
            assert spans and all((s[0] == -1).all() and (s[1:] >= 0).all() for s in spans)
    builder = SltJaxCorpus(corpus=corpus, config=target, data_dir=tmp_path)
    assert tuple(builder.info.metadata["vocab"]) == vocab.tokens
    first = splits["train"][0]
    assert first["frames"].shape[1] == 150 and first["reference"].decode() == (
        read_annotations(corpus)[0].gloss if target == "gloss" else read_annotations(corpus)[0].text)
    assert "tensorflow" not in sys.modules


def test_a_custom_config_and_the_default_data_dir(corpus):
    config = CorpusConfig(name="gloss3d", data=DataConfig(use_3d=True, groups=("right_hand",)))
    builder = SltJaxCorpus(corpus=corpus, config=config)
    builder.download_and_prepare()
    assert (corpus / "tfds" / "slt_jax_corpus" / "gloss3d").is_dir()
    vocab = data.fit_vocab(corpus, config.data)
    assert_same_examples(to_examples(builder.as_data_source()["val"]),
                         data.load_examples(corpus, "val", config.data, vocab))
    assert builder.as_data_source()["val"][0]["frames"].shape[1] == 21 * 3


def test_the_builder_does_not_import_data_which_imports_it():
    """No import cycle: `data` dispatches to the builder; both read through `slt_jax.examples`."""
    code = "import sys, slt_jax.tfds_builder; print(sorted(m for m in sys.modules if m.startswith('slt_jax.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'slt_jax.examples'" in out and "'slt_jax.data'" not in out


def test_training_reads_through_tfds_like_from_files(corpus, tmp_path):
    from slt_jax.config import get_config
    from slt_jax.train import train

    overrides = ["train.max_epochs=2"]
    from_files = train(get_config("tiny", overrides), corpus, tmp_path / "files", progress=False)
    via_tfds = train(get_config("tiny", overrides + ["data.source=tfds"]), corpus, tmp_path / "tfds", progress=False)
    assert via_tfds["train_loss"] == from_files["train_loss"] and via_tfds["val_loss"] == from_files["val_loss"]
    assert (corpus / "tfds" / "slt_jax_corpus" / "gloss_body_left_hand_right_hand_xy").is_dir()
