"""`prepare gsl` on a miniature GSL release, and `prepare pose` on real `.pose` files."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from slt_jax import cli
from slt_jax.layout import LayoutError, load_pose, read_annotations, read_metadata, save_pose, write_json
from slt_jax.prepare.corpus import REPORT
from slt_jax.prepare.gsl import prepare_gsl

# Also run in .venv-extract, where users extract and then prepare.
pytestmark = pytest.mark.extract_env

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
POSES = FIXTURES / "pose"
PHOENIX = "phoenix2014t_25October_2010_Monday_tagesschau-17"
PHOENIX_GLOSS = "REGEN SCHNEE REGION VERSCHWINDEN NORD REGEN KOENNEN REGION STERN KOENNEN SEHEN"
PHOENIX_TEXT = ("regen und schnee lassen an den alpen in der nacht nach im norden und nordosten fallen "
                "hier und da schauer sonst ist das klar")

# --- GSL -------------------------------------------------------------------------------------

HELLO = "γεια σας πώς μπορώ να βοηθήσω|ΓΕΙΑ ΕΓΩ(1) ΜΠΟΡΩ ΒΟΗΘΩ"
COMPLAINT = "θέλω να κάνω καταγγελία|ΕΓΩ(1) ΘΕΛΩ ΠΑΡΑΠΟΝΟ ΚΑΤΑΓΓΕΛΙΑ"
SHOP = "το μαγαζί κάτω από το σπίτι μου|ΣΠΙΤΙ ΕΓΩ(1) ΚΑΤΩ(1) ΜΑΓΑΖΙ"
COURT = ("θα πάτε στον εισαγγελέα στα δικαστήρια στο γραφείο 405|"
         "ΕΣΥ ΠΗΓΑΙΝΩ ΔΙΚΑΣΤΗΡΙΟ ΕΙΣΑΓΓΕΛΕΑΣ ΠΟΥ ΔΙΚΑΣΤΗΡΙΟ ΕΚΕΙ ΓΡΑΦΕΙΟ 400 5")
WHO = "ποιος σας ενοχλεί|ΠΟΙΟΣ ΕΝΟΧΛΩ_ΕΣΕΝΑ"
RELEASE = {
    "annotations.csv": [
        f"police1_signer1_rep1_sentences/sentences0000|{HELLO}",
        f"police1_signer1_rep1_sentences/sentences0001|{COMPLAINT}",
        f"police1_signer1_rep1_sentences/sentences0005|{SHOP}",
        f"police1_signer2_rep2_sentences/sentences0000|{HELLO}",
        "police1_signer2_rep2_sentences/sentences0001|θέλω να κάνω καταγγελία|ΕΓΩ(3) ΘΕΛΩ ΠΑΡΑΠΟΝΟ ΚΑΤΑΓΓΕΛΙΑ",
        f"police1_signer3_rep1_sentences/sentences0005|{SHOP}",
        f"police1_signer3_rep3_sentences/sentences0010|{COURT}",
        f"police1_signer3_rep3_sentences/sentences0004|{WHO}",
        f"police1_signer1_rep1_sentences/sentences0000|{HELLO}",  # duplicate
        "police1_signer1_rep1_sentences/sentences0009|δεν έγινε τίποτα",  # malformed: 2 fields
        "kep1_signer4_rep1_sentences/sentences0008|ναι|ΝΑΙ",  # in no split file
    ],
    "gsl_split_SI_train.csv": [
        "police1/police1_signer1_rep1_sentences/sentences0000|ΓΕΙΑ ΕΓΩ(1) ΜΠΟΡΩ ΒΟΗΘΩ",
        "police1/police1_signer1_rep1_sentences/sentences0001|ΕΓΩ(1) ΘΕΛΩ ΠΑΡΑΠΟΝΟ ΚΑΤΑΓΓΕΛΙΑ",
        "police1/police1_signer1_rep1_sentences/sentences0005|ΣΠΙΤΙ ΕΓΩ(1) ΚΑΤΩ(1) ΜΑΓΑΖΙ",  # extraction failed
        "police1/police1_signer2_rep2_sentences/sentences0000|ΓΕΙΑ ΕΓΩ(1) ΜΠΟΡΩ ΒΟΗΘΩ",
        "police1/police1_signer2_rep2_sentences/sentences0001|ΕΓΩ(3) ΘΕΛΩ ΠΑΡΑΠΟΝΟ ΚΑΤΑΓΓΕΛΙΑ",
        "police1/police1_signer1_rep1_sentences/sentences0000|ΓΕΙΑ ΕΓΩ(1) ΜΠΟΡΩ ΒΟΗΘΩ",  # duplicate
        "police1/police1_signer2_rep9_sentences/sentences0003|ΩΡΑ ΓΙΑ ΗΣΥΧΙΑ ΑΚΟΥΩ ΦΑΣΑΡΙΑ",  # no text
    ],
    # The split's glosses win: this repetition was annotated ΚΑΤΩ(2).
    "gsl_split_SI_dev.csv": ["police1/police1_signer3_rep1_sentences/sentences0005|ΣΠΙΤΙ ΕΓΩ(1)  ΚΑΤΩ(2) ΜΑΓΑΖΙ"],
    "gsl_split_SI_test.csv": [
        "police1/police1_signer3_rep3_sentences/sentences0010|"
        "ΕΣΥ ΠΗΓΑΙΝΩ ΔΙΚΑΣΤΗΡΙΟ ΕΙΣΑΓΓΕΛΕΑΣ ΠΟΥ ΔΙΚΑΣΤΗΡΙΟ ΕΚΕΙ ΓΡΑΦΕΙΟ 400 5",
        "police1/police1_signer3_rep3_sentences/sentences0004|ΠΟΙΟΣ ΕΝΟΧΛΩ_ΕΣΕΝΑ",
        "police1/signer3/sentences0006|ΠΡΙΝ ΕΣΥ ΙΔΙΟΚΤΗΤΗΣ",  # malformed path
        "",
    ],
    "GSL_SD_train.csv": [
        "police1/police1_signer1_rep1_sentences/sentences0000|ΓΕΙΑ ΕΓΩ(1) ΜΠΟΡΩ ΒΟΗΘΩ",
        "police1/police1_signer2_rep2_sentences/sentences0001|ΕΓΩ(3) ΘΕΛΩ ΠΑΡΑΠΟΝΟ ΚΑΤΑΓΓΕΛΙΑ",
    ],
    "GSL_SD_dev.csv": ["police1/police1_signer1_rep1_sentences/sentences0001|ΕΓΩ(1) ΘΕΛΩ ΠΑΡΑΠΟΝΟ ΚΑΤΑΓΓΕΛΙΑ"],
    "GSL_SD_test.csv": ["police1/police1_signer3_rep3_sentences/sentences0004|ΠΟΙΟΣ ΕΝΟΧΛΩ_ΕΣΕΝΑ"],
}
# Where `slt-jax extract` put each sentence: run over the whole release, or over one scenario.
EXTRACTED = [
    "police1/police1_signer1_rep1_sentences/sentences0000",
    "police1/police1_signer1_rep1_sentences/sentences0001",
    "police1/police1_signer2_rep2_sentences/sentences0000",
    "police1/police1_signer2_rep2_sentences/sentences0001",
    "police1/police1_signer3_rep1_sentences/sentences0005",
    "police1_signer3_rep3_sentences/sentences0010",
    "police1_signer3_rep3_sentences/sentences0004",
]


@pytest.fixture
def gsl(tmp_path):
    """A miniature release (GSL_continuous/) and an extraction folder of its sentences."""
    release = tmp_path / "GSL_continuous"
    release.mkdir()
    for name, lines in RELEASE.items():
        (release / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    keypoints = tmp_path / "keypoints"
    rng = np.random.default_rng(0)
    poses = {}
    for i, pose_id in enumerate(EXTRACTED):
        poses["/".join(pose_id.split("/")[-2:])] = pose = rng.uniform(0, 1, (20 + i, 1, 543, 3)).astype(np.float32)
        pose[:, :, 501:] = np.nan
        save_pose(keypoints, pose_id, pose)
    failed = "police1/police1_signer1_rep1_sentences/sentences0005"
    write_json(keypoints / "manifest.json", {"files": {failed: {"status": "error", "error": "ValueError: no frames decoded"}}})
    return release, keypoints, poses


def test_prepare_gsl_si_writes_the_corpus_and_reports_what_it_left_out(gsl, tmp_path, capsys):
    release, keypoints, poses = gsl
    out = tmp_path / "corpus"
    assert cli.main(["prepare", "gsl", "--annotations", str(release), "--keypoints", str(keypoints),
                     "--out", str(out), "--quiet"]) == 0

    samples = {s.id: s for s in read_annotations(out)}
    assert [(s.split, s.signer) for s in samples.values()] == [
        ("train", "signer1"), ("train", "signer1"), ("train", "signer2"), ("train", "signer2"),
        ("val", "signer3"), ("test", "signer3"), ("test", "signer3")]
    hello = samples["police1_signer1_rep1_sentences_sentences0000"]
    assert (hello.text, hello.gloss) == ("γεια σας πώς μπορώ να βοηθήσω", "ΓΕΙΑ ΕΓΩ(1) ΜΠΟΡΩ ΒΟΗΘΩ")
    assert samples["police1_signer2_rep2_sentences_sentences0001"].gloss.startswith("ΕΓΩ(3) ")
    shop = samples["police1_signer3_rep1_sentences_sentences0005"]
    assert (shop.text, shop.gloss) == ("το μαγαζί κάτω από το σπίτι μου", "ΣΠΙΤΙ ΕΓΩ(1) ΚΑΤΩ(2) ΜΑΓΑΖΙ")
    for key, pose in poses.items():
        np.testing.assert_array_equal(load_pose(out, key.replace("/", "_")), pose)
    assert read_metadata(out)["fps"] == 30 and read_metadata(out)["protocol"] == "si"

    report = json.loads((out / REPORT).read_text(encoding="utf-8"))
    assert report["written"] == {"train": 4, "val": 1, "test": 2}
    assert report["left_out"] == {"malformed row": 2, "duplicate row": 2, "no text in annotations.csv": 1,
                                  "missing keypoints": 1, "in annotations.csv but no split file": 1}
    problems = report["problems"]
    assert problems["malformed row"][0].startswith("annotations.csv:10: 2 fields, expected 3")
    assert problems["malformed row"][1].startswith("gsl_split_SI_test.csv:3: path is not")
    assert problems["duplicate row"] == [
        "annotations.csv:9: police1_signer1_rep1_sentences/sentences0000 already at annotations.csv:1",
        "gsl_split_SI_train.csv:6: police1_signer1_rep1_sentences/sentences0000 already at gsl_split_SI_train.csv:1"]
    assert problems["missing keypoints"] == [
        "gsl_split_SI_train.csv:3: police1_signer1_rep1_sentences/sentences0005 "
        "(extraction failed: ValueError: no frames decoded)"]
    assert problems["no text in annotations.csv"] == ["gsl_split_SI_train.csv:7: police1_signer2_rep9_sentences/sentences0003"]
    printed = capsys.readouterr().out
    assert "wrote 7 samples (train 4, val 1, test 2)" in printed and "missing keypoints: 1" in printed


def test_prepare_gsl_sd_protocol(gsl, tmp_path):
    release, keypoints, _ = gsl
    report = prepare_gsl(release, keypoints, tmp_path / "sd", protocol="sd", progress=False)
    assert report.written == {"train": 2, "val": 1, "test": 1}
    assert [s.id for s in read_annotations(tmp_path / "sd") if s.split == "test"] == [
        "police1_signer3_rep3_sentences_sentences0004"]


def test_prepare_gsl_bad_inputs_name_the_file_and_leave_nothing(gsl, tmp_path):
    release, keypoints, _ = gsl
    out = tmp_path / "corpus"
    (release / "gsl_split_SI_dev.csv").unlink()
    with pytest.raises(LayoutError, match=r"gsl_split_SI_dev\.csv: GSL release file not found"):
        prepare_gsl(release, keypoints, out, progress=False)
    (release / "gsl_split_SI_dev.csv").write_bytes("ΚΑΤΩ".encode("iso-8859-7"))
    with pytest.raises(LayoutError, match=r"gsl_split_SI_dev\.csv: not valid UTF-8"):
        prepare_gsl(release, keypoints, out, progress=False)
    (release / "gsl_split_SI_dev.csv").write_text("", encoding="utf-8")
    with pytest.raises(LayoutError, match="no poses/ folder"):
        prepare_gsl(release, tmp_path, out, progress=False)
    # A keypoint file of the wrong shape is found while writing: nothing may remain.
    np.save(keypoints / "poses" / (EXTRACTED[-1] + ".npy"), np.zeros((5, 543, 3), np.float32))
    with pytest.raises(LayoutError, match=r"sentences0004\.npy: shape \(5, 543, 3\)"):
        prepare_gsl(release, keypoints, out, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["GSL_continuous", "keypoints"]


def test_prepare_refuses_a_non_empty_out(gsl, tmp_path):
    release, keypoints, _ = gsl
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "old.txt").write_text("keep me")
    with pytest.raises(LayoutError, match="corpus: already exists and is not an empty folder"):
        prepare_gsl(release, keypoints, tmp_path / "corpus", progress=False)
    assert (tmp_path / "corpus" / "old.txt").read_text() == "keep me"


# --- .pose files -----------------------------------------------------------------------------


@pytest.fixture
def pose_format():
    if not POSES.is_dir():
        pytest.skip(f"real .pose files not found at {POSES} (they live beside the project, not in it)")
    return pytest.importorskip("pose_format", reason="pose-format is not installed (pip install pose-format)")


def raw(name: str):
    from pose_format import Pose

    return Pose.read((POSES / f"{name}.pose").read_bytes())


def test_read_holistic_normalises_the_phoenix_sentence(pose_format):
    from slt_jax.prepare.pose_file import read_holistic

    poses, fps = read_holistic(POSES / f"{PHOENIX}.pose")
    assert poses.shape == (86, 1, 543, 3) and poses.dtype == np.float32 and fps == 25.0
    pose = raw(PHOENIX)
    data, confidence = np.ma.getdata(pose.body.data), pose.body.confidence
    np.testing.assert_allclose(poses[:, 0, :, 0], np.where(confidence[:, 0] > 0, data[:, 0, :, 0] / 210, np.nan), rtol=1e-6)
    np.testing.assert_allclose(poses[:, 0, :, 1], np.where(confidence[:, 0] > 0, data[:, 0, :, 1] / 260, np.nan), rtol=1e-6)
    np.testing.assert_allclose(poses[:, 0, :, 2], np.where(confidence[:, 0] > 0, data[:, 0, :, 2], np.nan), rtol=1e-6)
    # The signer: body and face in every frame; the left hand missing in 49 frames, the right in 44.
    assert not np.isnan(poses[:, 0, :501]).any()
    assert np.isnan(poses[:, 0, 501, 0]).sum() == 49 and np.isnan(poses[:, 0, 522, 0]).sum() == 44
    face = poses[:, 0, 33:501, :2]
    assert 0.3 < face[..., 0].min() and face[..., 0].max() < 0.7 and face[..., 1].max() < 0.4


@pytest.mark.parametrize("iris, world, n_points", [(False, True, 576), (True, False, 553), (True, True, 586)])
def test_read_holistic_maps_refined_face_and_world_landmark_variants(pose_format, tmp_path, iris, world, n_points):
    from pose_format import Pose
    from pose_format.numpy.pose_body import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderComponent

    from slt_jax.prepare.pose_file import read_holistic

    pose = raw(PHOENIX)
    body, face, left, right = pose.header.components
    data, confidence = np.ma.getdata(pose.body.data), pose.body.confidence
    rng = np.random.default_rng(0)
    extra = lambda n: (rng.uniform(0, 200, (86, 1, n, 3)).astype(np.float32), np.ones((86, 1, n), np.float32))
    parts = [(data[:, :, :501], confidence[:, :, :501])]
    if iris:
        face = PoseHeaderComponent(face.name, face.points + [str(i) for i in range(468, 478)], face.limbs,
                                   face.colors, face.format)
        parts.append(extra(10))
    parts.append((data[:, :, 501:], confidence[:, :, 501:]))
    components = [body, face, left, right]
    if world:
        components.append(PoseHeaderComponent("POSE_WORLD_LANDMARKS", body.points, body.limbs, body.colors, body.format))
        parts.append(extra(33))
    variant = Pose(PoseHeader(pose.header.version, pose.header.dimensions, components),
                   NumPyPoseBody(25, np.concatenate([d for d, _ in parts], 2), np.concatenate([c for _, c in parts], 2)))
    with open(tmp_path / "variant.pose", "wb") as f:
        variant.write(f)
    assert raw_points(tmp_path / "variant.pose") == n_points
    np.testing.assert_array_equal(read_holistic(tmp_path / "variant.pose")[0], read_holistic(POSES / f"{PHOENIX}.pose")[0])


def raw_points(path: Path) -> int:
    from pose_format import Pose

    return Pose.read(path.read_bytes()).body.data.shape[2]


def test_read_holistic_refuses_openpose_and_maps_the_reduced_layout_only_when_allowed(pose_format):
    from slt_jax.prepare.pose_file import read_holistic

    with pytest.raises(LayoutError, match=r"openpose_93f\.pose: not a MediaPipe Holistic pose: it has components \['pose_keypoints_2d'"):
        read_holistic(POSES / "openpose_93f.pose")
    reduced = POSES / "mediapipe_holistic_170f.pose"
    with pytest.raises(LayoutError, match=r"mediapipe_holistic_170f\.pose: a reduced Holistic layout \(178 of 543 points; "
                                          r"it lacks 25 of 33 body, 340 of 468 face points\)"):
        read_holistic(reduced)
    poses, fps = read_holistic(reduced, allow_partial=True)
    assert poses.shape == (170, 1, 543, 3) and fps == 24.0
    # Its 8 body points are shoulders, elbows, wrists and hips: MediaPipe indices 11-16, 23, 24.
    seen = np.nonzero(~np.isnan(poses[:, 0, :33, 0]).all(axis=0))[0]
    assert seen.tolist() == [11, 12, 13, 14, 15, 16, 23, 24]
    pose = raw("mediapipe_holistic_170f")
    detected = pose.body.confidence[:, 0, 0] > 0  # the file's first point is LEFT_SHOULDER
    np.testing.assert_allclose(poses[detected, 0, 11, 0], np.ma.getdata(pose.body.data)[detected, 0, 0, 0] / 1250, rtol=1e-6)
    assert (~np.isnan(poses[0, 0, 33:501, 0])).sum() in (0, 128)


def write_annotation_csv(path: Path, rows: list[tuple[str, str, str, str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "gloss", "signer", "split"])
        writer.writerows(rows)
    return path


def test_prepare_pose_cli_converts_reports_and_refuses(pose_format, tmp_path, capsys):
    poses = tmp_path / "poses"
    poses.mkdir()
    shutil.copy(POSES / f"{PHOENIX}.pose", poses)
    shutil.copy(POSES / "openpose_93f.pose", poses)
    annotations = write_annotation_csv(tmp_path / "phoenix.csv", [
        (PHOENIX, PHOENIX_TEXT, PHOENIX_GLOSS, "signer1", "test"),
        ("absent", "kein text", "NICHTS", "signer1", "train"),
    ])
    out = tmp_path / "corpus"
    assert cli.main(["prepare", "pose", "--poses", str(poses), "--annotations", str(annotations),
                     "--out", str(out), "--quiet"]) == 0
    [sample] = read_annotations(out)
    assert (sample.id, sample.gloss, sample.text, sample.split) == (PHOENIX, PHOENIX_GLOSS, PHOENIX_TEXT, "test")
    assert load_pose(out, PHOENIX).shape == (86, 1, 543, 3) and read_metadata(out)["fps"] == 25.0
    report = json.loads((out / REPORT).read_text())
    assert report["left_out"] == {"missing .pose file": 1, ".pose file without annotation": 1}
    assert "missing .pose file: 1" in capsys.readouterr().out

    # An annotated OpenPose file is refused, by name, and no corpus appears.
    write_annotation_csv(annotations, [(PHOENIX, PHOENIX_TEXT, PHOENIX_GLOSS, "signer1", "test"),
                                       ("openpose_93f", "x", "X", "signer2", "test")])
    assert cli.main(["prepare", "pose", "--poses", str(poses), "--annotations", str(annotations),
                     "--out", str(tmp_path / "second"), "--quiet"]) == 2
    assert "openpose_93f.pose: not a MediaPipe Holistic pose" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "phoenix.csv", "poses"]


def test_prepare_pose_annotation_file_errors_name_the_line(tmp_path):
    from slt_jax.prepare.pose import read_annotation_file

    path = write_annotation_csv(tmp_path / "a.csv", [("a", "t", "G", "s", "train"), ("a", "t", "G", "s", "dev")])
    with pytest.raises(LayoutError, match=r"a\.csv:3: repeated id 'a'"):
        read_annotation_file(path)
    write_annotation_csv(path, [("a", "t", "G", "s", "dev")])
    with pytest.raises(LayoutError, match=r"a\.csv:2: split 'dev' is not one of train, val, test"):
        read_annotation_file(path)
    path.write_text("id,text,gloss\na,t,G\n")
    with pytest.raises(LayoutError, match=r"needs the columns id,text,gloss,signer,split"):
        read_annotation_file(path)


def test_a_model_trained_on_converted_pose_files_evaluates(pose_format, tmp_path):
    """The .pose -> corpus -> train -> evaluate path, on copies of the real PHOENIX sentence."""
    poses = tmp_path / "poses"
    poses.mkdir()
    splits = ["train", "train", "train", "val", "test"]
    for i in range(len(splits)):
        shutil.copy(POSES / f"{PHOENIX}.pose", poses / f"phoenix{i}.pose")
    annotations = write_annotation_csv(tmp_path / "phoenix.csv", [
        (f"phoenix{i}", PHOENIX_TEXT, PHOENIX_GLOSS, "signer1", split) for i, split in enumerate(splits)])
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    assert cli.main(["prepare", "pose", "--poses", str(poses), "--annotations", str(annotations),
                     "--out", str(corpus), "--quiet"]) == 0
    assert cli.main(["train", "--data", str(corpus), "--config", "tiny", "--workdir", str(run), "--epochs", "2",
                     "--quiet"]) == 0
    assert cli.main(["evaluate", "--workdir", str(run), "--split", "test", "--quiet"]) == 0
    scores = json.loads((run / "eval_test.json").read_text())
    assert scores["n"] == 1 and 0.0 <= scores["wer"]
    with open(run / "translations_test.csv", newline="", encoding="utf-8") as f:
        [row] = list(csv.DictReader(f))
    assert row["id"] == "phoenix4" and row["reference"] == PHOENIX_GLOSS
