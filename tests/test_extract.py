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
from slt_jax.extract.driver import extract_source
from slt_jax.extract.frames import _image_paths
from slt_jax.extract.holistic import landmarks_to_array, result_parts
from slt_jax.extract.manifest import write_manifest
from slt_jax.extract.shards import parse_shard, shard_sources
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
    code = "import sys, slt_jax.extract, slt_jax.extract.commands, slt_jax.prepare.commands, slt_jax.prepare.gsl; print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax')))"
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
    assert [p.name for p in _image_paths(sources[2])] == ["frame1.jpg", "frame2.jpg", "frame10.jpg"]
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
    a = landmarks_to_array(result_parts(solution))
    b = landmarks_to_array(result_parts(task))
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
    ours = extract_source(source, tmp_path, extract.Tracker())
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


def test_shards_split_the_inputs_disjointly_evenly_and_in_any_listing_order(tmp_path):
    for name in ("b.mp4", "a.mp4", "c/frame1.jpg", "d.avi", "e/f.mp4", "g.png", "h.mov"):
        touch(tmp_path / name)
    sources = extract.find_sources(str(tmp_path))
    ids = [s.id for s in sources]
    for n in (1, 2, 3, 7, 9):
        shares = [[s.id for s in shard_sources(sources[::-1], (k, n))] for k in range(n)]
        assert sorted(sum(shares, [])) == ids  # each input in exactly one share
        assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert [s.id for s in shard_sources(sources, (1, 3))] == ids[1::3] == ["b", "e/f"]
    assert parse_shard("3/8") == (3, 8)
    for bad in ("8/8", "-1/2", "1", "a/b", "1/2/3"):
        with pytest.raises(ValueError, match="K/N|0 to N-1"):
            parse_shard(bad)


def shard_manifest(out: Path, k: int, n: int, files: dict, inputs: int | None = None, backend: str = "mp"):
    info = {"index": k, "count": n, "inputs": len(files) if inputs is None else inputs}
    write_manifest(out, {"backend": backend, "shard": info, "files": files})


def entry(status: str = "ok") -> dict:
    return {"source": "x", "status": status} | ({"frames": 2} if status == "ok" else {"error": "E"})


def test_merge_folds_finished_shards_into_one_manifest_and_refuses_unfinished_ones(tmp_path, capsys):
    out = tmp_path / "keypoints"
    out.mkdir()
    with pytest.raises(LayoutError, match="no shard manifests"):
        extract.merge_shards(out)
    shard_manifest(out, 0, 3, {"a": entry(), "d": entry("error")})
    shard_manifest(out, 2, 3, {"c": entry()}, inputs=2)  # killed before its second input
    with pytest.raises(LayoutError, match=r"no manifest from shard 1/3; run it first"):
        extract.merge_shards(out)
    shard_manifest(out, 1, 3, {"b": entry()})
    with pytest.raises(LayoutError, match=r"shard 2/3 has recorded 1 of its 2 inputs; run it again"):
        extract.merge_shards(out)
    shard_manifest(out, 2, 3, {"c": entry(), "f": entry()})
    shard_manifest(out, 0, 2, {"a": entry()})  # from an earlier split into two
    with pytest.raises(LayoutError, match="shards of different splits"):
        extract.merge_shards(out)
    (out / "manifest.shard-0-of-2.json").unlink()
    # An earlier run's manifest: entries no shard redid stay, the shards' newer ones replace theirs.
    write_manifest(out, {"backend": "mp", "files": {"d": entry(), "z": entry()}})

    assert cli.main(["extract", "--out", str(out), "--merge"]) == 1  # d failed
    assert "5 inputs extracted (10 frames), 1 failed; manifest: " in capsys.readouterr().out
    merged = json.loads((out / "manifest.json").read_text())
    assert merged == {"backend": "mp", "files": {k: entry("error" if k == "d" else "ok") for k in "abcdfz"}}
    assert list(out.iterdir()) == [out / "manifest.json"]


def test_cli_shard_and_merge_options_are_checked(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["extract", "--videos", "v", "--out", "o", "--shard", "2/2"])
    assert "'2/2': K must be 0 to N-1" in capsys.readouterr().err
    assert cli.main(["extract", "--out", str(tmp_path), "--merge", "--shard", "0/2"]) == 2
    assert "--merge takes only --out" in capsys.readouterr().err
    assert cli.main(["extract", "--out", str(tmp_path)]) == 2
    assert "--videos is required (unless --merge)" in capsys.readouterr().err


def test_two_shards_write_the_files_one_run_writes(tmp_path):
    """Shards run at once into one folder, then merge: the same poses and manifest as one run."""
    needs_mediapipe()
    import cv2

    videos = tmp_path / "videos"
    videos.mkdir()
    capture = cv2.VideoCapture(str(MEDIA / "carphone_pristine.mp4"))
    frames = [capture.read()[1] for _ in range(10)]  # 10 of its 120 frames: a short clip, cheap to track
    capture.release()
    writer = cv2.VideoWriter(str(videos / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()
    (videos / "frames").mkdir()
    for i, frame in enumerate(frames[:3]):
        cv2.imwrite(str(videos / "frames" / f"frame{i}.jpg"), frame)
    (videos / "messi").mkdir()
    shutil.copy(MEDIA / "messi5.jpg", videos / "messi" / "0001.jpg")
    messi = cv2.imread(str(MEDIA / "messi5.jpg"))
    (videos / "small").mkdir()
    cv2.imwrite(str(videos / "small" / "0001.png"), cv2.resize(messi, None, fx=0.5, fy=0.5))
    (videos / "broken.avi").write_bytes(b"RIFF\x00\x00 this is not a video")

    one, sharded = tmp_path / "one", tmp_path / "sharded"
    assert cli.main(["extract", "--videos", str(videos), "--out", str(one), "--workers", "1", "--quiet"]) == 1
    command = [sys.executable, "-m", "slt_jax.cli", "extract", "--videos", str(videos), "--out", str(sharded),
               "--workers", "1", "--quiet", "--shard"]
    shards = [subprocess.Popen(command + [f"{k}/2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for k in range(2)]
    outputs = [p.communicate(timeout=300) for p in shards]
    assert [p.returncode for p in shards] == [1, 0], outputs  # broken.avi is in shard 0 (ids in order)
    assert "2 inputs extracted" in outputs[0][0] and "1 failed" in outputs[0][0]
    assert sorted(p.name for p in sharded.glob("manifest*")) == ["manifest.shard-0-of-2.json",
                                                                  "manifest.shard-1-of-2.json"]
    assert cli.main(["extract", "--out", str(sharded), "--merge"]) == 1

    files = lambda root: sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files(one) == files(sharded) == ["manifest.json", "poses/clip.npy", "poses/frames.npy",
                                            "poses/messi.npy", "poses/small.npy"]
    for name in files(one)[1:]:
        np.testing.assert_array_equal(np.load(one / name), np.load(sharded / name))
    untimed = lambda root: {k: {f: v for f, v in e.items() if f != "ms_per_frame"}
                            for k, e in json.loads((root / "manifest.json").read_text())["files"].items()}
    assert untimed(one) == untimed(sharded)
    assert json.loads((one / "manifest.json").read_text())["backend"] == json.loads(
        (sharded / "manifest.json").read_text())["backend"]
