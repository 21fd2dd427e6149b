"""`slt-jax translate` (one's own clips in, translations out) and the length bound of decoding."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import logging
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import slt_jax
from slt_jax import data, evaluate
from slt_jax.analysis.record import extract_attention
from slt_jax.analysis.viewer import PAGE
from slt_jax.cli import main
from slt_jax.config import EOS
from slt_jax.layout import load_pose, read_annotations
from slt_jax.runs import length_bound, load_run

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
PHOENIX = FIXTURES / "pose" / "phoenix2014t_25October_2010_Monday_tagesschau-17.pose"
VIDEO = FIXTURES / "media" / "carphone_pristine.mp4"
BOUND = 4  # the toy corpus's longest training target has 3 glosses: 3 + 1


@pytest.fixture(scope="module")
def run(run_dir):
    return load_run(run_dir)


def with_logits(run, bias):
    """The run with its output layer replaced by a constant: every step gives the same logits."""
    logits = {"kernel": jnp.zeros_like(run.params["logits"]["kernel"]), "bias": jnp.asarray(bias, jnp.float32)}
    return run._replace(params={**run.params, "logits": logits})


@pytest.fixture(scope="module")
def looping(run):
    """A model that loops, as some of the main job's did: it always favours HELLO over <eos>."""
    bias = np.full(len(run.vocab), -10.0)
    bias[run.vocab.tokens.index("HELLO")] = 10.0
    return with_logits(run, bias)


@pytest.fixture(scope="module")
def talkative(run):
    """The trained run with <eos> made unlikely, so that every translation has tokens to compare."""
    return run._replace(params={**run.params, "logits": dict(
        run.params["logits"], bias=run.params["logits"]["bias"].at[EOS].add(-100.0))})


def test_a_run_stores_its_longest_training_target_and_decodes_within_it(run_dir, corpus_dir):
    longest = max(len(s.gloss.split()) for s in read_annotations(corpus_dir) if s.split == "train")
    assert json.loads((run_dir / "run.json").read_text())["longest_target"] == longest == 3
    assert load_run(run_dir).length_bound == BOUND
    # A tenth more than the longest target (at least one token), within the decoder's positions.
    assert [length_bound(n, 20) for n in (1, 10, 11, 19, 30)] == [2, 11, 13, 20, 20]


def test_an_older_run_measures_its_corpus_or_keeps_max_tokens(run, corpus_dir, tmp_path, caplog):
    older = run._replace(workdir=tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"data": str(corpus_dir)}))
    assert older.length_bound == BOUND
    (tmp_path / "run.json").write_text(json.dumps({"data": str(tmp_path / "gone")}))
    with caplog.at_level(logging.WARNING):
        assert older.length_bound == run.config.data.max_tokens == 12
    assert "no longest_target" in caplog.text


def test_a_looping_model_stops_at_the_bound_and_keeps_its_repeats(looping, corpus_dir):
    examples = data.load_examples(corpus_dir, "test", looping.config.data, looping.vocab)
    # Cut at 4 tokens instead of the decoder's 12; repeating a gloss is not forbidden.
    assert evaluate.translate(looping, examples) == ["HELLO HELLO HELLO HELLO"] * len(examples)
    assert evaluate.translate(looping, examples, "beam", beam=2) == ["HELLO HELLO HELLO HELLO"] * len(examples)


def test_npy_files_translate_as_evaluate_translates_the_corpus(talkative, corpus_dir, tmp_path):
    examples = data.load_examples(corpus_dir, "test", talkative.config.data, talkative.vocab)[:3]
    paths = []
    for ex in examples:
        paths.append(tmp_path / f"{ex.id}.npy")
        np.save(paths[-1], load_pose(corpus_dir, ex.id))
    results = slt_jax.translate(talkative, paths)
    assert [r.hypothesis for r in results] == evaluate.translate(talkative, examples)
    assert [(r.id, r.source, r.frames) for r in results] == [(ex.id, str(p), len(ex.frames))
                                                            for ex, p in zip(examples, paths)]
    assert all(r.stopped_by == "length_bound" and len(r.tokens) == BOUND for r in results)
    # Each token's probability is the one greedy decoding chose it with (the attention record's).
    batch = next(data.make_batches(examples, talkative.config.data, talkative.config.train.batch_size))
    chosen = np.exp(np.asarray(extract_attention(talkative.params, batch, "causal").log_probs_BxS))
    for row, index in enumerate(batch["index"][batch["sample_mask"]]):
        np.testing.assert_allclose([p for _, p in results[index].tokens], chosen[row, :BOUND], atol=1e-4)


def embedded(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    start = text.index('<script id="viewer-data" type="application/json">')
    return json.loads(text[text.index(">", start) + 1: text.index("</script>", start)])


def test_the_command_writes_translations_and_a_viewer_page(run, run_dir, corpus_dir, tmp_path):
    if not PHOENIX.is_file():
        pytest.skip(f"real .pose files not found at {PHOENIX.parent} (they live beside the project, not in it)")
    pytest.importorskip("pose_format", reason="pose-format is not installed (pip install pose-format)")
    example = data.load_examples(corpus_dir, "test", run.config.data, run.vocab)[0]
    npy, out = tmp_path / "clips" / "first.npy", tmp_path / "out"
    npy.parent.mkdir()
    np.save(npy, load_pose(corpus_dir, example.id))
    assert main(["translate", "--workdir", str(run_dir), "--out", str(out), "--view", "--quiet",
                 str(npy), str(PHOENIX)]) == 0

    with open(out / "translations.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    written = json.loads((out / "translations.json").read_text(encoding="utf-8"))
    assert rows[0] == ["id", "hypothesis"] and [r[0] for r in rows[1:]] == ["first", PHOENIX.stem]
    assert {k: written[k] for k in ("config", "epoch", "decode", "length_bound")} == {
        "config": "tiny", "epoch": run.epoch, "decode": "greedy", "length_bound": BOUND}
    first, phoenix = written["translations"]
    assert (first["source"], first["frames"], phoenix["frames"]) == (str(npy), len(example.frames), 86)
    assert first["hypothesis"] == evaluate.translate(run, [example])[0]
    for t, row in zip(written["translations"], rows[1:]):
        assert t["hypothesis"] == row[1] == " ".join(x["token"] for x in t["tokens"])
        assert len(t["tokens"]) <= BOUND and all(0 < x["probability"] <= 1 for x in t["tokens"])
        assert t["stopped_by"] == ("eos" if len(t["tokens"]) < BOUND else "length_bound")

    page = embedded(out / PAGE)
    assert [s["id"] for s in page["samples"]] == ["first", PHOENIX.stem] and page["fps"] == 25.0
    assert [s["hypothesis"] for s in page["samples"]] == [t["hypothesis"] for t in written["translations"]]
    assert all(s["reference"] is None and s["correct"] is None and s["target"] == [] for s in page["samples"])
    assert len(page["samples"][1]["frames"]) == 29  # 86 frames, one in 3


def write_bad(path: Path, kind: str) -> None:
    arrays = {"flat": np.zeros((10, 543, 3), np.float32), "empty": np.zeros((0, 1, 543, 3), np.float32),
              "undetected": np.full((5, 1, 543, 3), np.nan, np.float32), "2d": np.zeros((5, 1, 543, 2), np.float32)}
    if kind == "garbage":
        path.write_bytes(b"not an array")
    elif kind in arrays:
        np.save(path, arrays[kind])


@pytest.mark.parametrize("kind, problem", [
    ("garbage", "unreadable .npy"),
    ("flat", "shape (10, 543, 3), expected (frames, people, 543, dims 2..4)"),
    ("empty", "empty pose sequence"),
    ("undetected", "no body, left_hand, right_hand keypoints detected in any of its 5 frames; nothing to translate"),
    ("missing", "no such file"),
])
def test_a_bad_input_is_refused_with_its_file_and_problem(run_dir, tmp_path, capsys, kind, problem):
    bad = tmp_path / f"{kind}.npy"
    write_bad(bad, kind)
    assert main(["translate", "--workdir", str(run_dir), "--out", str(tmp_path / "out"), "--quiet", str(bad)]) == 2
    assert f"slt-jax: error: {bad}: {problem}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_coordinates_the_run_needs_and_foreign_poses_are_refused(run, tmp_path):
    from slt_jax.layout import LayoutError
    from slt_jax.pipelines.translation import clip_examples, find_inputs, read_clips

    write_bad(tmp_path / "2d.npy", "2d")
    clips = read_clips(find_inputs([tmp_path / "2d.npy"]))
    config = dataclasses.replace(run.config.data, use_3d=True)
    with pytest.raises(LayoutError, match=r"2d\.npy: pose has 2 coordinates, config needs 3"):
        clip_examples(clips, config)
    openpose = FIXTURES / "pose" / "openpose_93f.pose"
    if openpose.is_file() and importlib.util.find_spec("pose_format"):
        with pytest.raises(LayoutError, match=r"openpose_93f\.pose: not a MediaPipe Holistic pose"):
            read_clips(find_inputs([openpose]))
    (tmp_path / "a").mkdir()
    for folder in ("a", "."):
        np.save(tmp_path / folder / "same.npy", np.zeros((3, 1, 543, 2), np.float32))
    with pytest.raises(LayoutError, match="would both be translated as id 'same'"):
        find_inputs([tmp_path / "a" / "same.npy", tmp_path / "same.npy"])


def test_a_video_without_mediapipe_says_to_install_the_extract_extra(run_dir, tmp_path, capsys):
    if importlib.util.find_spec("mediapipe"):
        pytest.skip("mediapipe is installed here")
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    assert main(["translate", "--workdir", str(run_dir), "--out", str(tmp_path / "out"), "--quiet", str(video)]) == 2
    assert "pip install 'slt-jax[extract]'" in capsys.readouterr().err


@pytest.mark.extract_env
def test_a_video_is_translated_into_a_file_and_a_viewer_page(run, run_dir, tmp_path):
    if not VIDEO.is_file():
        pytest.skip(f"real recordings not found at {VIDEO.parent} (they live beside the project, not in it)")
    mediapipe = pytest.importorskip("mediapipe", reason="mediapipe is not importable: run in .venv-extract")
    if not hasattr(mediapipe, "solutions"):
        pytest.skip(f"mediapipe {mediapipe.__version__} ships no bundled Holistic models; this test needs 0.10.21")
    out = tmp_path / "out"
    assert main(["translate", "--workdir", str(run_dir), "--out", str(out), "--view", "--quiet", str(VIDEO)]) == 0

    (translation,) = json.loads((out / "translations.json").read_text(encoding="utf-8"))["translations"]
    assert (translation["id"], translation["source"], translation["frames"]) == ("carphone_pristine", str(VIDEO), 120)
    assert len(translation["tokens"]) <= BOUND
    with open(out / "translations.csv", encoding="utf-8", newline="") as f:
        assert list(csv.reader(f)) == [["id", "hypothesis"], ["carphone_pristine", translation["hypothesis"]]]
    (sample,) = embedded(out / PAGE)["samples"]
    assert sample["id"] == "carphone_pristine" and sample["hypothesis"] == translation["hypothesis"]
    assert len(sample["frames"]) == 40 and sample["pose"]["body"][0] is not None  # 120 frames, one in 3
    assert embedded(out / PAGE)["fps"] == pytest.approx(29.97, abs=0.01)
