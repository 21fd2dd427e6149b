"""`prepare csv` (a user's table and keypoint files), `prepare phoenix`, and sign-language-datasets examples."""

from __future__ import annotations

import collections
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import write_corpus
from slt_jax import cli
from slt_jax.layout import LayoutError, load_pose, read_annotations, read_metadata, save_pose, write_json
from slt_jax.prepare.corpus import REPORT
from slt_jax.prepare.phoenix import prepare_phoenix
from slt_jax.prepare.corpus import HELD_OUT_SHARE, assign_splits
from slt_jax.prepare.table import prepare_csv

# Also run in .venv-extract, where users extract and then prepare.
pytestmark = pytest.mark.extract_env

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
PHOENIX_POSE = FIXTURES / "pose" / "phoenix2014t_25October_2010_Monday_tagesschau-17.pose"
PHOENIX_NAME = "25October_2010_Monday_tagesschau-17"
PHOENIX_GLOSS = "REGEN SCHNEE REGION VERSCHWINDEN NORD REGEN KOENNEN REGION STERN KOENNEN SEHEN"
PHOENIX_TEXT = "regen und schnee lassen an den alpen in der nacht nach"


def write_table(path: Path, header: list[str], rows: list[list], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def report_of(corpus: Path) -> dict:
    return json.loads((corpus / REPORT).read_text(encoding="utf-8"))


# --- a user's table --------------------------------------------------------------------------


def test_an_elan_like_table_in_seconds_becomes_a_corpus_that_trains_and_analyses(tmp_path):
    """One row per gloss annotation in seconds (tab-separated, as ELAN exports), the text on its own row."""
    keypoints = tmp_path / "keypoints"
    samples = write_corpus(keypoints)  # poses/<id>.npy at 30 fps, with true frame spans
    rows = []
    for s in samples:
        rows.append([s.id, s.signer, "", "", "", s.text])
        for gloss, (start, end) in reversed(list(zip(s.gloss.split(), s.gloss_spans))):  # any order
            rows.append([s.id, s.signer, gloss, f"{start / 30:.4f}", f"{end / 30:.4f}", ""])
    table = write_table(tmp_path / "elan.tsv", ["id", "signer", "gloss", "gloss_start", "gloss_end", "text"], rows,
                        delimiter="\t")
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    assert cli.main(["prepare", "csv", "--annotations", str(table), "--keypoints", str(keypoints), "--out", str(corpus),
                     "--span-unit", "seconds", "--fps", "30", "--quiet"]) == 0

    written = {s.id: s for s in read_annotations(corpus)}
    assert len(written) == len(samples) and report_of(corpus)["left_out"] == {}
    for s in samples:
        got = written[s.id]
        assert (got.text, got.gloss, got.signer, got.gloss_spans) == (s.text, s.gloss, s.signer, s.gloss_spans)
        np.testing.assert_array_equal(load_pose(corpus, s.id), load_pose(keypoints, s.id))
    # No split column: each of the three signers is held out whole.
    assert {s.signer: s.split for s in written.values()} == read_metadata(corpus)["splits_by_signer"]["signers"]
    assert sorted(read_metadata(corpus)["splits_by_signer"]["signers"].values()) == ["test", "train", "val"]
    assert read_metadata(corpus)["fps"] == 30

    assert cli.main(["train", "--data", str(corpus), "--config", "tiny", "--workdir", str(run), "--epochs", "2",
                     "--quiet"]) == 0
    from slt_jax.analysis.report import analyze

    results = analyze(run, "test", progress=False)
    assert results["n"] == sum(s.split == "test" for s in written.values())
    assert 0.0 <= results["teacher_forced"]["alignment_accuracy"] <= 1.0  # scored against the converted spans
    assert (run / "analysis_test" / "analysis.json").is_file()


def test_bad_rows_name_their_line_and_a_bad_keypoint_file_leaves_nothing(tmp_path, capsys):
    keypoints = tmp_path / "keypoints"
    for i, frames in enumerate((20, 20, 20, 12)):
        save_pose(keypoints, f"clip{i}", np.zeros((frames, 1, 543, 3), np.float32))
    header = ["id", "text", "gloss", "signer", "split", "gloss_start", "gloss_end"]
    table = write_table(tmp_path / "clips.csv", header, [
        ["clip0", "hello there", "HELLO THERE", "ann", "train", "0 5", "5 12"],  # line 2: good
        ["", "no id", "X", "ann", "train", "", ""],  # line 3
        ["clip1", "t", "X", "ann", "develop", "", ""],  # line 4
        ["clip5", "t", "X Y", "bob", "val", "0 8", "6 4"],  # line 5: end before start
        ["clip2", "t", "X", "bob", "test", "0", "25"],  # line 6: outside the 20 frames
        ["clip9", "t", "X", "bob", "test", "", ""],  # line 7: no keypoints
        ["clip3", "t", "X", "cy", "test", "", ""],  # line 8: good, without spans
        ["clip0", "again", "X", "cy", "test", "", ""],  # line 9: repeated id
    ])
    out = tmp_path / "corpus"
    assert cli.main(["prepare", "csv", "--annotations", str(table), "--keypoints", str(keypoints), "--out", str(out),
                     "--quiet"]) == 0
    assert [(s.id, s.split, s.gloss_spans) for s in read_annotations(out)] == [
        ("clip0", "train", ((0, 5), (5, 12))), ("clip3", "test", None)]
    problems = report_of(out)["problems"]
    assert problems["bad row"] == [
        "clips.csv:3: missing id",
        "clips.csv:4: unknown split 'develop' (train, val, dev or test)",
        "clips.csv:5: span 8-4 ends at or before its start",
        "clips.csv:9: repeated id 'clip0' (first at clips.csv:2)",
    ]
    assert problems["bad span"] == ["clips.csv:6: span 0:25 is outside the clip's 20 frames"]
    assert problems["missing keypoints"] == [f"clips.csv:7: clip9: no keypoint file in {keypoints / 'poses'}"]
    assert problems["keypoints without a row"] == [str(keypoints / "poses" / "clip1.npy")]  # its row was bad
    assert "bad row: 4" in capsys.readouterr().out

    # A keypoint file of the wrong shape stops the command by name, and no corpus appears.
    np.save(keypoints / "poses" / "clip3.npy", np.zeros((5, 543, 3), np.float32))
    with pytest.raises(LayoutError, match=r"clip3\.npy: shape \(5, 543, 3\)"):
        prepare_csv(table, keypoints, tmp_path / "second", progress=False)
    # Spans in seconds need a frame rate, which bare .npy files do not carry.
    with pytest.raises(LayoutError, match=r"clip0\.npy: no frame rate .* pass --fps"):
        prepare_csv(table, keypoints, tmp_path / "second", span_unit="seconds", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips.csv", "corpus", "keypoints"]
    write_table(table, ["id", "gloss", "split"], [["clip0", "X", "train"]])
    with pytest.raises(LayoutError, match=r"clips\.csv: needs the column\(s\) signer"):
        prepare_csv(table, keypoints, tmp_path / "second", progress=False)


def test_elan_rows_of_one_clip_must_agree_and_frames_must_be_whole(tmp_path):
    keypoints = tmp_path / "keypoints"
    for i in range(2):
        save_pose(keypoints, f"clip{i}", np.zeros((20, 1, 543, 3), np.float32))
    table = write_table(tmp_path / "elan.csv", ["id", "gloss", "gloss_start", "gloss_end", "signer", "split"], [
        ["clip0", "A", "0", "4", "ann", "train"],
        ["clip0", "B", "4", "9", "bob", "train"],  # line 3: another signer
        ["clip1", "A", "0", "4.5", "ann", "train"],  # line 4: half a frame
    ])
    with pytest.raises(LayoutError, match="no clip left to write") as error:
        prepare_csv(table, keypoints, tmp_path / "corpus", progress=False)
    assert "bad row: 1, e.g. elan.csv:2: its rows disagree on signer: ['ann', 'bob']" in str(error.value)
    assert "bad span: 1, e.g. elan.csv:4: a span in frames is not a whole number" in str(error.value)
    assert not (tmp_path / "corpus").exists()


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text("abcdefghij", min_size=1, max_size=3), st.integers(1, 60), min_size=3, max_size=12),
       st.integers(0, 2**31))
def test_split_assignment_keeps_each_signer_in_one_split(counts, seed):
    splits = assign_splits(counts, seed)
    assert splits == assign_splits(counts, seed) and set(splits) == set(counts)  # deterministic, every signer once
    n = collections.Counter(splits.values())
    assert n["train"] and n["val"] and n["test"]
    held = {split: sum(k for signer, k in counts.items() if splits[signer] == split) for split in ("val", "test")}
    target = HELD_OUT_SHARE * sum(counts.values())
    # A held-out split stops at its share, or where the splits after it need the signers left.
    assert held["test"] >= target or n["val"] == n["train"] == 1
    assert held["val"] >= target or n["train"] == 1


def test_split_assignment_needs_three_signers():
    with pytest.raises(LayoutError, match="2 signer"):
        assign_splits({"a": 5, "b": 5})


# --- real .pose files, PHOENIX-2014-T, sign-language-datasets ----------------------------------


@pytest.fixture
def phoenix_pose():
    if not PHOENIX_POSE.is_file():
        pytest.skip(f"the PHOENIX .pose fixture is not at {PHOENIX_POSE} (it lives beside the project, not in it)")
    pytest.importorskip("pose_format", reason="pose-format is not installed (pip install pose-format)")
    return PHOENIX_POSE


def test_the_real_phoenix_pose_file_with_spans_in_seconds(phoenix_pose, tmp_path):
    from slt_jax.prepare.pose_file import read_holistic

    keypoints = tmp_path / "poses"
    keypoints.mkdir()
    for name in ("a", "b"):
        shutil.copy(phoenix_pose, keypoints / f"{name}.pose")
    glosses = PHOENIX_GLOSS.split()[:3]
    table = write_table(tmp_path / "clips.csv", ["id", "text", "gloss", "signer", "split", "gloss_start", "gloss_end"], [
        ["a", PHOENIX_TEXT, " ".join(glosses), "Signer05", "train", "0.0 0.52 1.3", "0.5 1.2 3.44"],
        ["b", PHOENIX_TEXT, " ".join(glosses), "Signer05", "test", "0.0 0.52 3.0", "0.5 1.2 3.6"],  # past 86 frames
    ])
    report = prepare_csv(table, keypoints, tmp_path / "corpus", span_unit="seconds", progress=False)
    [sample] = read_annotations(tmp_path / "corpus")
    assert sample.gloss_spans == ((0, 12), (13, 30), (32, 86))  # at the header's 25 fps
    np.testing.assert_array_equal(load_pose(tmp_path / "corpus", "a"), read_holistic(phoenix_pose)[0])
    assert report.problems == {"bad span": ["clips.csv:3: span 75:90 is outside the clip's 86 frames"]}
    assert read_metadata(tmp_path / "corpus")["fps"] == 25.0


PHOENIX_HEADER = "name|video|start|end|speaker|orth|translation"


def test_prepare_phoenix_reads_the_release_corpus_files(phoenix_pose, tmp_path):
    from slt_jax.prepare.pose_file import read_holistic

    manual = tmp_path / "annotations" / "manual"
    manual.mkdir(parents=True)
    release = {
        "train": [f"train-{i}|train-{i}/1/*.png|-1|-1|Signer0{i}|{PHOENIX_GLOSS}|{PHOENIX_TEXT}" for i in (1, 2)],
        "dev": [f"{PHOENIX_NAME}|{PHOENIX_NAME}/1/*.png|-1|-1|Signer05|{PHOENIX_GLOSS}|{PHOENIX_TEXT}",
                "never-extracted|never-extracted/1/*.png|-1|-1|Signer05|A|a"],
        "test": ["test-1|test-1/1/*.png|-1|-1||B|b"],  # no speaker
    }
    for split, lines in release.items():
        (manual / f"PHOENIX-2014-T.{split}.corpus.csv").write_text("\n".join([PHOENIX_HEADER, *lines]) + "\n",
                                                                   encoding="utf-8")
    # `slt-jax extract --videos features/fullFrame-210x260px/` names each clip <split>/<name>.
    keypoints = tmp_path / "keypoints"
    pose = read_holistic(phoenix_pose)[0]
    for clip in ("train/train-1", "train/train-2", f"dev/{PHOENIX_NAME}", "test/test-1"):
        save_pose(keypoints, clip, pose)
    write_json(keypoints / "manifest.json", {"files": {}})

    out = tmp_path / "corpus"
    assert cli.main(["prepare", "phoenix", "--annotations", str(manual), "--keypoints", str(keypoints),
                     "--out", str(out), "--quiet"]) == 0
    samples = read_annotations(out)
    assert [(s.id, s.split, s.signer) for s in samples] == [
        ("train-1", "train", "Signer01"), ("train-2", "train", "Signer02"), (PHOENIX_NAME, "val", "Signer05")]
    assert (samples[2].gloss, samples[2].text) == (PHOENIX_GLOSS, PHOENIX_TEXT)
    assert read_metadata(out)["fps"] == 25
    problems = report_of(out)["problems"]
    assert problems["bad row"] == ["PHOENIX-2014-T.test.corpus.csv:2: missing signer"]
    assert problems["missing keypoints"][0].startswith("PHOENIX-2014-T.dev.corpus.csv:3: never-extracted: no keypoint")
    (manual / "PHOENIX-2014-T.dev.corpus.csv").unlink()
    with pytest.raises(LayoutError, match=r"PHOENIX-2014-T\.dev\.corpus\.csv: annotation table not found"):
        prepare_phoenix(manual, keypoints, tmp_path / "second", progress=False)


def test_sign_language_datasets_examples_become_a_corpus(phoenix_pose, tmp_path):
    """Examples as `tfds.as_numpy` gives them (bytes text, pose {data, conf, fps}), without the package."""
    from pose_format import Pose

    from slt_jax.prepare.pose_file import read_holistic
    from slt_jax.prepare.sign_datasets import write_examples

    pose = Pose.read(phoenix_pose.read_bytes())
    example = lambda i: {"id": f"clip{i}".encode(), "signer": b"Signer05", "gloss": PHOENIX_GLOSS.encode(),
                         "text": PHOENIX_TEXT.encode(),
                         "pose": {"data": np.ma.getdata(pose.body.data), "conf": pose.body.confidence, "fps": 25}}
    folder = tmp_path / "sld"
    table = write_examples({"train": [example(0), example(1)], "val": [example(2)], "test": [example(3)]},
                           pose.header, folder)
    report = prepare_csv(table, folder, tmp_path / "corpus", progress=False)
    assert report.written == {"train": 2, "val": 1, "test": 1} and report.problems == {}
    samples = read_annotations(tmp_path / "corpus")
    assert [(s.id, s.split, s.gloss) for s in samples][-1] == ("clip3", "test", PHOENIX_GLOSS)
    np.testing.assert_array_equal(load_pose(tmp_path / "corpus", "clip3"), read_holistic(phoenix_pose)[0])
