"""Bad inputs for every reader and command, the parsers under hypothesis, and docs/reliability.md.

Each bad input must give an error naming the file and the problem, with no partial output, or a
handling that is documented and logged. tests/test_resume.py covers crashes and determinism.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import json
import logging
import re
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slt_jax import data
from slt_jax.cli import main
from slt_jax.config import DEFAULT_RECIPE, EOS, PAD, UNK, get_config, save_config
from slt_jax.layout import (SPLITS, LayoutError, Sample, format_spans, load_pose, parse_spans, pose_path,
                            read_annotations, save_pose, write_annotations, write_json)
from slt_jax.model import Transformer
from slt_jax.prepare.pose import read_annotation_file
from slt_jax.runs import Checkpoints, init_params, resolve
from slt_jax.train import Stopping, TrainState, token_losses

from conftest import write_corpus
from test_extract import MEDIA, needs_mediapipe
from test_prepare import POSES

ROOT = Path(__file__).resolve().parents[1]
PHOENIX = POSES / "phoenix2014t_25October_2010_Monday_tagesschau-17.pose"
TINY = get_config("tiny")


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A fresh small corpus per test (4 train, 1 val, 1 test: s000-s005), to damage at will."""
    root = tmp_path / "corpus"
    write_corpus(root, n_train=4, n_eval=1)
    return root


# --- pose files ------------------------------------------------------------------------------

BAD_POSES = {
    "empty file": (lambda p: p.write_bytes(b""), r"unreadable \.npy \(EOFError"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:-1000]), r"unreadable \.npy .*not fully written"),
    "not numpy": (lambda p: p.write_text("x,y\n0.5,0.5\n"), r"unreadable \.npy"),
    "one coordinate": (lambda p: np.save(p, np.zeros((5, 1, 543, 1), np.float32)), r"shape \(5, 1, 543, 1\)"),
    "no people axis": (lambda p: np.save(p, np.zeros((5, 543, 3), np.float32)), r"shape \(5, 543, 3\)"),
    "zero frames": (lambda p: np.save(p, np.zeros((0, 1, 543, 3), np.float32)), r"empty pose sequence"),
    "integers": (lambda p: np.save(p, np.zeros((5, 1, 543, 3), np.int64)), r"dtype int64, expected floating"),
}


@pytest.mark.parametrize("fault", BAD_POSES)
def test_a_bad_pose_file_is_refused_by_name(corpus, fault):
    damage, problem = BAD_POSES[fault]
    damage(pose_path(corpus, "s001"))
    with pytest.raises(LayoutError, match=r"s001\.npy: " + problem):
        data.load_examples(corpus, "train", TINY.data, data.fit_vocab(corpus, TINY.data))


@pytest.mark.parametrize("fault", ["missing pose file", "truncated pose file", "pose of zero frames",
                                   "non-UTF-8 annotations", "duplicate ids"])
def test_train_on_bad_data_exits_2_naming_it_and_writes_nothing(corpus, tmp_path, capsys, fault):
    """Nothing written means a corrected re-run starts afresh: a half-made workdir would be taken
    for a run to resume, with a vocabulary fitted on the bad data."""
    annotations = corpus / "annotations.csv"
    if fault == "missing pose file":
        pose_path(corpus, "s004").unlink()  # the val sample: found after the train split loaded
        expected = r"s004\.npy: pose file not found"
    elif fault == "truncated pose file":
        BAD_POSES["truncated"][0](pose_path(corpus, "s004"))
        expected = r"s004\.npy: unreadable \.npy"
    elif fault == "pose of zero frames":
        BAD_POSES["zero frames"][0](pose_path(corpus, "s004"))
        expected = r"s004\.npy: empty pose sequence"
    elif fault == "non-UTF-8 annotations":
        annotations.write_bytes(annotations.read_bytes().replace(b"the ", "ή ".encode("iso-8859-7"), 1))
        expected = r"annotations\.csv: not valid UTF-8"
    else:
        annotations.write_text(annotations.read_text().replace("s002,", "s001,"))
        expected = r"annotations\.csv:4: duplicate id 's001'"
    workdir = tmp_path / "run"
    assert main(["train", "--data", str(corpus), "--workdir", str(workdir), "--config", "tiny", "--quiet"]) == 2
    assert re.search(expected, capsys.readouterr().err)
    assert not workdir.exists()


# --- what training takes as it is, and logs ----------------------------------------------------


@pytest.mark.parametrize("fill", [np.nan, 0.0, np.inf])
def test_a_sample_without_keypoints_is_kept_with_every_frame_masked_and_logged(corpus, caplog, fill):
    save_pose(corpus, "s001", np.full_like(load_pose(corpus, "s001"), fill))
    vocab = data.fit_vocab(corpus, TINY.data)
    with caplog.at_level(logging.WARNING, logger="slt_jax.data"):
        examples = data.load_examples(corpus, "train", TINY.data, vocab)
    assert "1 of 4 samples have no detected keypoint in any frame (s001); every frame is masked" in caplog.text
    (batch,) = data.make_batches(examples, TINY.data, 8)
    assert not batch["frame_mask"][list(batch["index"]).index(1)].any()
    assert batch["frame_mask"][batch["sample_mask"]].sum() > 0


def test_attention_and_loss_stay_finite_when_every_frame_is_masked(corpus):
    save_pose(corpus, "s001", np.full_like(load_pose(corpus, "s001"), np.nan))
    config = get_config("tiny", ["model.sow_patterns=true"])
    vocab = data.fit_vocab(corpus, config.data)
    config = resolve(config, vocab)
    (batch,) = data.make_batches(data.load_examples(corpus, "train", config.data, vocab), config.data, 8)
    row = list(batch["index"]).index(1)
    model = Transformer(config.model)

    def loss(params):
        logits, state = model.apply({"params": params}, batch["frames"], batch["frame_mask"], batch["decoder_input"],
                                    mutable=["intermediates"])
        sums = token_losses(logits, batch["target"], batch["sample_mask"])
        return sums["loss_sum"] / sums["tokens"], state["intermediates"]

    (value, sown), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(init_params(config, jax.random.key(0)))
    assert np.isfinite(value) and all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
    for site in ("encoder_0", "decoder_0"):
        assert all(np.isfinite(p).all() for p in jax.tree.leaves(sown[site]))
    # Nothing to attend to: the sample's queries spread evenly over its (all padded) frames.
    (cross,) = sown["decoder_0"]["cross_attn"]["pattern"]
    np.testing.assert_allclose(cross[row], 1 / cross.shape[-1], rtol=1e-6)


def test_sequences_and_targets_beyond_the_maximum_are_cut_and_logged(corpus, caplog):
    max_frames, max_tokens = TINY.data.max_frames, TINY.data.max_tokens
    long_pose = np.random.default_rng(0).uniform(0, 1, (TINY.data.sample_rate * (max_frames + 10), 1, 543, 3))
    save_pose(corpus, "s000", long_pose)
    samples = read_annotations(corpus)
    samples[1] = dataclasses.replace(samples[1], gloss=" ".join(["HELLO"] * (max_tokens + 3)), gloss_spans=None)
    write_annotations(corpus, samples)
    with caplog.at_level(logging.WARNING, logger="slt_jax.data"):
        examples = data.load_examples(corpus, "train", TINY.data, data.fit_vocab(corpus, TINY.data))
    assert (f"1 of 4 samples have more than data.max_frames={max_frames} sampled frames (s000); "
            "the frames after those are dropped") in caplog.text
    assert (f"1 of 4 targets have more than data.max_tokens - 1 = {max_tokens - 1} tokens (s001); "
            "the tokens after those are dropped") in caplog.text
    rows = {int(b["index"][r]): (b, r) for b in data.make_batches(examples, TINY.data, 8) for r in np.flatnonzero(b["sample_mask"])}
    batch, row = rows[0]
    assert batch["frames"].shape[1] == max_frames and batch["frame_mask"][row].all()
    batch, row = rows[1]
    assert batch["target"][row, -1] == EOS and PAD not in batch["decoder_input"][row]


def test_glosses_unseen_in_training_become_unk_logged_and_stay_in_the_reference(corpus, caplog):
    samples = read_annotations(corpus)
    samples[4] = dataclasses.replace(samples[4], gloss=samples[4].gloss + " NEVERSEEN", gloss_spans=None)
    write_annotations(corpus, samples)
    with caplog.at_level(logging.WARNING, logger="slt_jax.data"):
        (example,) = data.load_examples(corpus, "val", TINY.data, data.fit_vocab(corpus, TINY.data))
    assert "1 of 1 targets have tokens not in the training vocabulary (s004); those become <unk>" in caplog.text
    assert example.tokens[-1] == UNK and example.reference.endswith(" NEVERSEEN")  # scored as a miss


# --- annotation files --------------------------------------------------------------------------

HEADER = b"id,text,gloss,signer,split\n"
BAD_ANNOTATIONS = {
    "empty": (b"", r"empty file|header is \[\]"),
    "header-less": (b"a,b,C,1,train\n", r"header is \['a', 'b', 'C', '1', 'train'\]"),
    "non-UTF-8": (HEADER + "a,καλημέρα,C,1,train\n".encode("iso-8859-7"), r"not valid UTF-8 \(invalid .* at byte 29\)"),
    "unclosed quote": (HEADER + b'a,"open,C,1,train\nb,t,C,1,train\n', r"expected 5 fields"),
    "empty id": (HEADER + b",t,C,1,train\n", r"empty id"),
}


@pytest.mark.parametrize("reader", ["corpus", "prepare pose"])
@pytest.mark.parametrize("fault", BAD_ANNOTATIONS)
def test_a_bad_annotation_file_is_refused_by_name_and_line(tmp_path, reader, fault):
    content, problem = BAD_ANNOTATIONS[fault]
    path = tmp_path / "annotations.csv"
    path.write_bytes(content)
    with pytest.raises(LayoutError, match=r"annotations\.csv(:\d+)?: .*(" + problem + ")"):
        read_annotations(tmp_path) if reader == "corpus" else read_annotation_file(path)


def test_annotations_with_a_byte_order_mark_and_crlf_lines_read_as_written(tmp_path):
    (tmp_path / "annotations.csv").write_bytes(b"\xef\xbb\xbf" + HEADER.replace(b"\n", b"\r\n") + b'a,"x\r\ny",C,1,val\r\n')
    assert read_annotations(tmp_path) == [Sample("a", "x\r\ny", "C", "1", "val")]


# --- recordings and .pose files ------------------------------------------------------------------


@pytest.mark.extract_env
def test_truncated_and_empty_videos_are_reported_in_the_manifest_and_write_nothing(tmp_path, capsys):
    needs_mediapipe()
    videos, out = tmp_path / "videos", tmp_path / "keypoints"
    videos.mkdir()
    recording = (MEDIA / "carphone_pristine.mp4").read_bytes()
    (videos / "cut.mp4").write_bytes(recording[: len(recording) // 2])
    (videos / "empty.mp4").write_bytes(b"")
    assert main(["extract", "--videos", str(videos), "--out", str(out), "--workers", "1", "--quiet"]) == 1
    assert "0 inputs extracted (0 frames), 2 failed" in capsys.readouterr().out
    files = json.loads((out / "manifest.json").read_text())["files"]
    assert {k: e["error"] for k, e in files.items()} == {
        k: "ValueError: cannot open as a video (corrupt, truncated or not a video)" for k in ("cut", "empty")}
    assert not list(out.rglob("*.npy"))


def test_a_pose_file_without_frames_is_refused_and_no_corpus_appears(tmp_path, capsys):
    pytest.importorskip("pose_format")
    if not PHOENIX.is_file():
        pytest.skip(f"real .pose files not found at {POSES}")
    poses = tmp_path / "poses"
    poses.mkdir()
    (poses / "cut.pose").write_bytes(PHOENIX.read_bytes()[:5000])  # the header survives, no frame does
    with open(tmp_path / "a.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "text", "gloss", "signer", "split"], ["cut", "t", "G", "s", "train"]])
    out = tmp_path / "corpus"
    assert main(["prepare", "pose", "--poses", str(poses), "--annotations", str(tmp_path / "a.csv"),
                 "--out", str(out), "--quiet"]) == 2
    assert "cut.pose: no frames (an empty recording, or a file cut short)" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "poses"]


# --- checkpoints -----------------------------------------------------------------------------------


def test_checkpoints_of_another_config_are_refused_by_name(corpus, tmp_path, capsys):
    """A workdir whose config.json says one model and whose checkpoints hold another (e.g. copied)."""
    vocab = data.fit_vocab(corpus, TINY.data)
    workdir = tmp_path / "run"
    workdir.mkdir()
    save_config(workdir / "config.json", resolve(get_config("tiny", ["train.max_epochs=1"], DEFAULT_RECIPE), vocab))
    vocab.save(workdir / "vocab.json")
    write_json(workdir / "run.json", {"data": str(corpus)})
    params = init_params(resolve(get_config("tiny", ["model.d_model=8"]), vocab), jax.random.key(0))
    seeds = jax.tree.map(lambda x: x[None], params)
    checkpoints = Checkpoints(workdir / "checkpoints")
    checkpoints.save_best(1, params)
    checkpoints.save_latest(1, TrainState(jnp.zeros(1, jnp.int32), seeds, optax.adam(1e-3).init(seeds)),
                            {"epoch": 1, "stopping": Stopping.start(1).to_json()})
    checkpoints.close()

    assert main(["evaluate", "--workdir", str(workdir), "--split", "val", "--quiet"]) == 2
    assert re.search(r"checkpoints/best/1: a checkpoint that does not fit the run's config\.json \(from another "
                     r"config\?\): Requested shape: \([\d, ]+\) is not compatible with the stored shape: \([\d, ]+\)\n",
                     capsys.readouterr().err)
    assert main(["train", "--data", str(corpus), "--workdir", str(workdir), "--config", "tiny", "--epochs", "2",
                 "--quiet"]) == 2
    assert "checkpoints/latest/1: a checkpoint that does not fit the run's config.json" in capsys.readouterr().err
    assert not (workdir / "metrics.jsonl").exists() and not list(workdir.glob("eval_*"))


# --- the parsers, under hypothesis ----------------------------------------------------------------

PROPERTY = settings(max_examples=150, deadline=None, database=None)


@st.composite
def span_lists(draw, n: int | None = None) -> tuple[tuple[int, int], ...]:
    """Ordered, non-overlapping spans (touching allowed), `n` of them or any number."""
    size = st.integers(0, 6) if n is None else st.just(n)
    steps = draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 10**4)), min_size=draw(size),
                          max_size=6 if n is None else n))
    spans, end = [], 0
    for gap, length in steps:
        spans.append((end + gap, end + gap + length))
        end = spans[-1][1]
    return tuple(spans)


@PROPERTY
@given(span_lists())
def test_spans_round_trip(spans):
    assert parse_spans(format_spans(spans), len(spans)) == spans


@PROPERTY
@given(st.text(st.characters(), max_size=40) | st.text("0123456789: -", max_size=40), st.integers(0, 4))
def test_span_parsing_accepts_only_valid_spans_and_otherwise_names_the_problem(text, n):
    try:
        spans = parse_spans(text, n, where="x.csv:2")
    except LayoutError as e:
        assert str(e).startswith("x.csv:2: ")
        return
    assert len(spans) == n and all(0 <= s < e for s, e in spans)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))


no_edge_space = st.text(min_size=1).filter(lambda t: t == t.strip())
token = st.text(min_size=1, max_size=8).filter(lambda t: t.split() == [t])


@st.composite
def annotation_rows(draw) -> list[Sample]:
    """Samples with any unicode text, signer and glosses: commas, quotes, CR/LF, NUL included."""
    samples = []
    for sample_id in draw(st.lists(no_edge_space, min_size=1, max_size=4, unique=True)):
        glosses = draw(st.lists(token, max_size=4))
        spans = draw(st.none() | span_lists(len(glosses))) if glosses else None
        samples.append(Sample(sample_id, draw(st.text()), " ".join(glosses), draw(st.text()),
                              draw(st.sampled_from(SPLITS)), spans))
    return samples


@PROPERTY
@given(annotation_rows())
def test_annotations_round_trip_any_unicode(samples):
    with tempfile.TemporaryDirectory() as root:
        write_annotations(root, samples)
        assert read_annotations(root) == samples


@PROPERTY
@given(st.binary(max_size=200) | st.text(",\"\n\r ab:1train").map(lambda t: "id,text,gloss,signer,split\n" + t))
def test_annotation_reading_fails_only_with_a_layout_error(content):
    content = content.encode() if isinstance(content, str) else content
    with tempfile.TemporaryDirectory() as root:
        (Path(root) / "annotations.csv").write_bytes(content)
        try:
            samples = read_annotations(root)
        except LayoutError as e:
            assert "annotations.csv" in str(e)
            return
    assert samples and all(s.split in SPLITS and s.id for s in samples)


# --- docs/reliability.md ------------------------------------------------------------------------


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_the_reliability_table_names_existing_tests_and_every_reliability_test():
    doc = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    table = [l for l in doc.splitlines() if l.startswith("|") and not set(l) <= set("|-: ") and "| Fault |" not in l]
    assert len(table) >= 20
    for row in table:
        references = re.findall(r"`(tests/test_\w+\.py)::(test_\w+)`", row)
        assert references, f"a row of docs/reliability.md names no test: {row}"
        for file, name in references:
            assert name in defined_tests(ROOT / file), f"docs/reliability.md names {file}::{name}, which does not exist"
    mentioned = set(re.findall(r"::(test_\w+)`", doc))
    for file in ("tests/test_reliability.py", "tests/test_resume.py"):
        missing = defined_tests(ROOT / file) - mentioned
        assert not missing, f"docs/reliability.md does not mention {file}::{sorted(missing)}"
