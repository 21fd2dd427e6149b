"""Keypoint extraction: finding inputs, the backends' contract, and MediaPipe on real recordings."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from slt_jax import cli, extract
from slt_jax.layout import LANDMARK_GROUPS, LayoutError

# Run again in .venv-extract, the only environment with mediapipe 0.10.21.
pytestmark = pytest.mark.extract_env

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
MEDIA = FIXTURES / "media"


def needs_mediapipe():
    if not MEDIA.is_dir():
        pytest.skip(f"real recordings not found at {MEDIA} (they live beside the project, not in it)")
    pytest.importorskip("mediapipe", reason="mediapipe is not importable: run in .venv-extract (pip install -e '.[extract]')")
    import mediapipe

    if not hasattr(mediapipe, "solutions"):
        pytest.skip(f"mediapipe {mediapipe.__version__} ships no bundled Holistic models; these tests need 0.10.21")


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_module_does_not_import_jax():
    code = "import sys, slt_jax.extract, slt_jax.prepare.commands, slt_jax.prepare.gsl; print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_find_sources_ids_kinds_and_frame_order(tmp_path):
    root = tmp_path / "GSL"
    frames = root / "police1" / "police1_signer1_rep1_sentences" / "sentences0000"
    for name in ("frame10.jpg", "frame2.jpg", "frame1.jpg", "notes.txt"):
        touch(frames / name)
    touch(root / "clips" / "a.mp4")
    touch(root / "clips" / "b.AVI")
    touch(root / "clips" / "readme.md")

    sources = extract.find_sources(str(root))
    assert [(s.id, s.kind) for s in sources] == [
        ("clips/a", "video"),
        ("clips/b", "video"),
        ("police1/police1_signer1_rep1_sentences/sentences0000", "images"),
    ]
    assert [p.name for p in extract._image_paths(sources[2])] == ["frame1.jpg", "frame2.jpg", "frame10.jpg"]
    # A glob: ids are relative to its fixed prefix; a single file: its stem.
    assert [s.id for s in extract.find_sources(str(root / "clips" / "*.mp4"))] == ["a"]
    assert [s.id for s in extract.find_sources(str(root / "*" / "*.mp4"))] == ["clips/a"]
    assert [(s.id, s.kind) for s in extract.find_sources(str(frames / "frame1.jpg"))] == [("frame1", "images")]
    assert [s.id for s in extract.find_sources(str(frames))] == ["sentences0000"]


def test_find_sources_refuses_clashing_ids_and_empty_input(tmp_path):
    touch(tmp_path / "v" / "a.mp4")
    touch(tmp_path / "v" / "a.avi")
    with pytest.raises(LayoutError, match=r"a\.(avi|mp4) and .*a\.(avi|mp4) would both be written as id 'a'"):
        extract.find_sources(str(tmp_path / "v"))
    touch(tmp_path / "empty" / "notes.txt")
    with pytest.raises(LayoutError, match="no videos .* or images .* found"):
        extract.find_sources(str(tmp_path / "empty"))
    with pytest.raises(LayoutError, match="no such file or folder"):
        extract.find_sources(str(tmp_path / "absent"))


def landmarks(n: int, value: float):
    return [types.SimpleNamespace(x=value, y=value + i, z=-value) for i in range(n)]


def test_results_of_both_apis_map_to_the_holistic_layout():
    # Solutions: each part a proto with `.landmark`, or None. Tasks: plain lists, [] when absent,
    # and 478 face points (the refined mesh), of which the layout keeps the first 468.
    solution = types.SimpleNamespace(
        pose_landmarks=types.SimpleNamespace(landmark=landmarks(33, 0.1)),
        face_landmarks=None,
        left_hand_landmarks=types.SimpleNamespace(landmark=landmarks(21, 0.3)),
        right_hand_landmarks=None,
    )
    task = types.SimpleNamespace(pose_landmarks=[], face_landmarks=landmarks(478, 0.2),
                                 left_hand_landmarks=[], right_hand_landmarks=landmarks(21, 0.4))
    a = extract.landmarks_to_array(extract.result_parts(solution))
    b = extract.landmarks_to_array(extract.result_parts(task))
    assert a.shape == b.shape == (543, 3) and a.dtype == np.float32
    np.testing.assert_allclose(a[0:33, 1], 0.1 + np.arange(33), rtol=1e-6)
    np.testing.assert_allclose(a[501:522, 2], -0.3, rtol=1e-6)
    assert np.isnan(a[33:501]).all() and np.isnan(a[522:]).all()
    np.testing.assert_allclose(b[33:501, 1], 0.2 + np.arange(468), rtol=1e-6)
    np.testing.assert_allclose(b[522:543, 0], 0.4, rtol=1e-6)
    assert np.isnan(b[:33]).all() and np.isnan(b[501:522]).all()


@pytest.fixture
def fake_mediapipe(monkeypatch):
    """A mediapipe module like the newest releases: Tasks API, no `solutions`."""
    module = types.ModuleType("mediapipe")
    module.__version__ = "1.2.3"
    landmarker = types.SimpleNamespace(create_from_model_path=lambda path: types.SimpleNamespace(close=lambda: None))
    module.tasks = types.SimpleNamespace(vision=types.SimpleNamespace(HolisticLandmarker=landmarker))
    monkeypatch.setitem(sys.modules, "mediapipe", module)
    return module


def test_backend_without_bundled_models_asks_for_the_pin_or_a_model(fake_mediapipe, tmp_path):
    with pytest.raises(LayoutError, match=r"mediapipe 1\.2\.3 ships no Holistic models.*0\.10\.21.*--model FILE\.task.*never downloads"):
        extract.resolve_backend(None)
    with pytest.raises(LayoutError, match=r"absent\.task: model file not found"):
        extract.resolve_backend(str(tmp_path / "absent.task"))
    model = touch(tmp_path / "holistic_landmarker.task")
    assert "tasks HolisticLandmarker" in extract.resolve_backend(str(model))


def test_backend_without_mediapipe_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import fails
    with pytest.raises(LayoutError, match=r"mediapipe is not importable: install mediapipe==0\.10\.21"):
        extract.resolve_backend(None)


def test_cli_reports_a_missing_model_without_downloading(fake_mediapipe, tmp_path, capsys):
    touch(tmp_path / "in" / "a.mp4")
    code = cli.main(["extract", "--videos", str(tmp_path / "in"), "--out", str(tmp_path / "out"),
                     "--model", str(tmp_path / "none.task")])
    assert code == 2
    assert "none.task: model file not found" in capsys.readouterr().err
    assert cli.main(["extract", "--videos", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_model_file_that_is_not_a_holistic_bundle_stops_the_run(tmp_path):
    needs_mediapipe()
    model = tmp_path / "empty.task"
    model.write_bytes(b"")
    with pytest.raises(LayoutError, match=r"empty\.task: not a usable HolisticLandmarker bundle"):
        extract.resolve_backend(str(model))


def test_extract_real_recordings_resume_and_corrupt_input(tmp_path, capsys):
    needs_mediapipe()
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(MEDIA / "carphone_pristine.mp4", videos)
    (videos / "messi").mkdir()
    shutil.copy(MEDIA / "messi5.jpg", videos / "messi" / "0001.jpg")
    (videos / "broken.avi").write_bytes(b"RIFF\x00\x00 this is not a video")
    out = tmp_path / "keypoints"

    code = cli.main(["extract", "--videos", str(videos), "--out", str(out), "--workers", "2", "--quiet"])
    assert code == 1  # one input failed; the others were written
    printed = capsys.readouterr().out
    assert "2 inputs extracted (121 frames), 1 failed" in printed and "broken" in printed

    files = json.loads((out / "manifest.json").read_text())["files"]
    assert files["broken"]["status"] == "error" and "cannot open as a video" in files["broken"]["error"]
    assert not (out / "poses" / "broken.npy").exists()
    car = files["carphone_pristine"]
    assert car["status"] == "ok" and car["frames"] == 120 and car["fps"] == pytest.approx(29.97, abs=0.01)
    assert car["detected"] == {"body": 1.0, "face": 1.0, "left_hand": 0.0, "right_hand": 0.0}
    assert files["messi"]["detected"] == {"body": 1.0, "face": 1.0, "left_hand": 1.0, "right_hand": 1.0}
    assert files["messi"]["fps"] is None

    pose = np.load(out / "poses" / "carphone_pristine.npy")
    assert pose.shape == (120, 1, 543, 3) and pose.dtype == np.float32
    body = pose[:, 0, slice(*LANDMARK_GROUPS["body"])]
    # Normalised image coordinates: the nose of a man filling a 176x144 frame lies inside it.
    assert np.all((body[:, 0, :2] > 0) & (body[:, 0, :2] < 1))
    assert np.isnan(pose[:, 0, 501:]).all()
    assert not np.isnan(np.load(out / "poses" / "messi.npy")).any()
    assert not list(out.rglob("*.tmp"))

    # Resume: finished inputs are skipped (their files untouched), failed ones retried.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "poses").glob("*.npy")}
    (videos / "broken.avi").unlink()
    assert cli.main(["extract", "--videos", str(videos), "--out", str(out), "--quiet"]) == 1
    assert {p: p.stat().st_mtime_ns for p in (out / "poses").glob("*.npy")} == stamps


def test_extraction_matches_pose_format_on_the_same_video(tmp_path):
    """pose-format's own Holistic run, stored in pixels and read back, equals ours."""
    needs_mediapipe()
    import cv2
    from pose_format.utils.holistic import load_holistic

    from slt_jax.prepare.pose_file import read_holistic

    source = extract.Source("car", MEDIA / "carphone_pristine.mp4", "video")
    ours = extract.extract_source(source, tmp_path, extract.Tracker())
    assert ours["status"] == "ok"
    frames, fps = extract.read_frames(source)
    frames = list(frames)
    height, width = frames[0].shape[:2]
    pose = load_holistic(frames, fps=fps, width=width, height=height,
                         additional_holistic_config={"model_complexity": 1}, reuse=False)
    with open(tmp_path / "car.pose", "wb") as f:
        pose.write(f)
    theirs, their_fps = read_holistic(tmp_path / "car.pose")
    mine = np.load(tmp_path / "poses" / "car.npy")
    assert their_fps == pytest.approx(fps)
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(theirs))
    np.testing.assert_allclose(mine, theirs, atol=2e-6, equal_nan=True)
