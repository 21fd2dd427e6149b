"""A converted corpus as a TensorFlow Datasets builder (array_record files; TensorFlow not needed).

Each record holds what `slt_jax.data.load_examples` gives for the sample, for one target:

    id           str
    frames       (frames, F) float32   the config's keypoint features, NaN -> 0, every frame
    tokens       (n,) int32            target ids in the vocabulary fitted on the train split
    reference    str                   the target sentence
    gloss_spans  (tokens, 2) int32     [start, end) of each token's sign in original frames, -1 for a
                                       word no gloss carries; (0, 2) when unknown

Build once, then read with random access (`tfds.load`/`as_dataset` would need TensorFlow):

    import tensorflow_datasets as tfds
    import slt_jax.tfds_builder  # registers "slt_jax_corpus"

    splits = tfds.data_source("slt_jax_corpus/gloss", data_dir="corpus/tfds",
                              builder_kwargs={"corpus": "corpus"})
    splits["test"][0]["tokens"]
    examples = slt_jax.tfds_builder.to_examples(splits["train"])  # what training consumes

Configs: `gloss` and `text` (the paper's features: body and hands, x and y). A built dataset is
tied to its corpus: give each corpus its own data_dir (the default is <corpus>/tfds).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow_datasets as tfds

from slt_jax.config import DataConfig
from slt_jax.examples import Example, Vocab, fit_vocab, read_examples
from slt_jax.features import feature_tag
from slt_jax.layout import SPLITS, LayoutError, read_annotations


@dataclasses.dataclass
class CorpusConfig(tfds.core.BuilderConfig):
    """A target and its features; any DataConfig works, e.g. DataConfig(use_3d=True)."""

    data: DataConfig = DataConfig()


class SltJaxCorpus(tfds.core.GeneratorBasedBuilder):
    """A corpus in slt-jax's converted layout (annotations.csv, metadata.json, poses/)."""

    # tfds 4.9.x looks for a builder's checksums beside its source through importlib_resources,
    # which it only installs on Python < 3.9 (tensorflow/datasets#11212); we download nothing.
    code_path = None
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "Records equal to slt_jax.data.load_examples.",
                     "1.1.0": "Text records' gloss_spans: each word's sign (text_alignment), not gloss s's."}
    BUILDER_CONFIGS = [
        CorpusConfig(name="gloss", description="gloss targets", data=DataConfig(target="gloss")),
        CorpusConfig(name="text", description="text targets", data=DataConfig(target="text")),
    ]

    def __init__(self, *, corpus: str | os.PathLike, data_dir: str | os.PathLike | None = None, **kwargs):
        """Args: corpus: the converted corpus folder; data_dir: where the records go (<corpus>/tfds)."""
        self.corpus = Path(corpus)
        super().__init__(data_dir=data_dir or self.corpus / "tfds", file_format="array_record", **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        n_features = self.builder_config.data.n_features
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "id": tfds.features.Text(),
                "frames": tfds.features.Tensor(shape=(None, n_features), dtype=np.float32),
                "tokens": tfds.features.Tensor(shape=(None,), dtype=np.int32),
                "reference": tfds.features.Text(),
                "gloss_spans": tfds.features.Tensor(shape=(None, 2), dtype=np.int32),
            }),
            # The vocabulary the tokens index, saved with the records.
            metadata=tfds.core.MetadataDict(),
            disable_shuffling=True,  # records in annotation order, as load_examples returns them
        )

    def _split_generators(self, dl_manager):
        config = self.builder_config.data
        vocab = fit_vocab(self.corpus, config)
        self.info.metadata["vocab"] = list(vocab.tokens)
        present = {s.split for s in read_annotations(self.corpus)}
        return {split: self._generate_examples(split, vocab) for split in SPLITS if split in present}

    def _generate_examples(self, split: str, vocab: Vocab):
        for ex in read_examples(self.corpus, split, self.builder_config.data, vocab):
            spans = np.zeros((0, 2), np.int32) if ex.gloss_spans is None else ex.gloss_spans
            yield ex.id, {"id": ex.id, "frames": ex.frames, "tokens": ex.tokens,
                          "reference": ex.reference, "gloss_spans": spans}


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def to_examples(records: Sequence[dict]) -> list[Example]:
    """Records of a data source split -> the `Example`s that batching and training take."""
    examples = []
    for r in records:
        spans = np.asarray(r["gloss_spans"], np.int32)
        examples.append(Example(
            id=_text(r["id"]),
            frames=np.asarray(r["frames"], np.float32),
            tokens=np.asarray(r["tokens"], np.int32),
            reference=_text(r["reference"]),
            gloss_spans=spans if len(spans) else None,
        ))
    return examples


def read_split(corpus, split: str, config: DataConfig, vocab: Vocab) -> list[Example]:
    """One split through TFDS (built under <corpus>/tfds on first use), as `Example`s.

    This is what `DataConfig(source="tfds")` makes training and evaluation read.
    """
    name = f"{config.target}_{'_'.join(config.groups)}_{feature_tag(config)}"
    builder = SltJaxCorpus(corpus=corpus, config=CorpusConfig(name=name, data=config))
    builder.download_and_prepare()
    if tuple(builder.info.metadata["vocab"]) != vocab.tokens:
        raise LayoutError(f"{builder.data_dir}: built with another vocabulary; delete it to rebuild")
    sources = builder.as_data_source()
    if split not in sources:
        raise LayoutError(f"{Path(corpus) / 'annotations.csv'}: no samples in split {split!r}")
    return to_examples(sources[split])
