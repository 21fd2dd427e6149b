"""MediaPipe Holistic keypoints from `.pose` files (the pose-format library) in our layout.

pose-format writes Holistic as components POSE_LANDMARKS (33), FACE_LANDMARKS (468, or 478 with
the refined iris points), LEFT_HAND_LANDMARKS and RIGHT_HAND_LANDMARKS (21 each), and optionally
POSE_WORLD_LANDMARKS (33): 543, 553, 576 or 586 points. It stores x and y in pixels (x * width,
y * height) and z as MediaPipe gives it, with confidence 0 where a part was not detected. We map
points by component and point name, so reduced variants map too (with allow_partial).
"""

from __future__ import annotations

import os

import numpy as np

from slt_jax.layout import LANDMARK_GROUPS, N_LANDMARKS, LayoutError

BODY_POINTS = (
    "NOSE", "LEFT_EYE_INNER", "LEFT_EYE", "LEFT_EYE_OUTER", "RIGHT_EYE_INNER", "RIGHT_EYE",
    "RIGHT_EYE_OUTER", "LEFT_EAR", "RIGHT_EAR", "MOUTH_LEFT", "MOUTH_RIGHT", "LEFT_SHOULDER",
    "RIGHT_SHOULDER", "LEFT_ELBOW", "RIGHT_ELBOW", "LEFT_WRIST", "RIGHT_WRIST", "LEFT_PINKY",
    "RIGHT_PINKY", "LEFT_INDEX", "RIGHT_INDEX", "LEFT_THUMB", "RIGHT_THUMB", "LEFT_HIP",
    "RIGHT_HIP", "LEFT_KNEE", "RIGHT_KNEE", "LEFT_ANKLE", "RIGHT_ANKLE", "LEFT_HEEL", "RIGHT_HEEL",
    "LEFT_FOOT_INDEX", "RIGHT_FOOT_INDEX",
)
HAND_POINTS = (
    "WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP", "INDEX_FINGER_MCP",
    "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP", "MIDDLE_FINGER_MCP",
    "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP", "RING_FINGER_MCP",
    "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP", "PINKY_MCP", "PINKY_PIP", "PINKY_DIP",
    "PINKY_TIP",
)
FACE_POINTS = tuple(str(i) for i in range(468))
IRIS_POINTS = frozenset(str(i) for i in range(468, 478))  # refined face only; not in our layout

# pose-format component -> (our landmark group, its point names in MediaPipe order)
COMPONENTS = {
    "POSE_LANDMARKS": ("body", BODY_POINTS),
    "FACE_LANDMARKS": ("face", FACE_POINTS),
    "LEFT_HAND_LANDMARKS": ("left_hand", HAND_POINTS),
    "RIGHT_HAND_LANDMARKS": ("right_hand", HAND_POINTS),
}
# Metric 3D landmarks around the hips, not image coordinates: not part of our layout.
IGNORED_COMPONENTS = frozenset({"POSE_WORLD_LANDMARKS"})


def holistic_indices(components, path: str) -> tuple[np.ndarray, np.ndarray]:
    """Maps a header's points to our 543: (indices into the file's points, indices into ours).

    Args:
      components: the pose header's components (objects with .name, .points, .format).
      path: the file, for messages.

    Raises:
      LayoutError: a component or point MediaPipe Holistic does not have, a missing component, or
        a point format without x, y, z.
    """
    names = [c.name for c in components]
    unknown = [n for n in names if n not in COMPONENTS and n not in IGNORED_COMPONENTS]
    missing = [n for n in COMPONENTS if n not in names]
    if unknown or missing:
        raise LayoutError(
            f"{path}: not a MediaPipe Holistic pose: it has components {names}, Holistic has "
            f"{list(COMPONENTS)} (and optionally POSE_WORLD_LANDMARKS)"
        )
    source, target, offset = [], [], 0
    for component in components:
        if component.name in COMPONENTS:
            if not component.format.startswith("XYZ"):
                raise LayoutError(f"{path}: {component.name} has point format {component.format!r}, expected XYZC")
            group, expected = COMPONENTS[component.name]
            position = {name: LANDMARK_GROUPS[group][0] + i for i, name in enumerate(expected)}
            for i, point in enumerate(component.points):
                if point in position:
                    source.append(offset + i)
                    target.append(position[point])
                elif not (group == "face" and point in IRIS_POINTS):
                    raise LayoutError(f"{path}: {component.name} has a point {point!r} that Holistic does not")
        offset += len(component.points)
    return np.asarray(source), np.asarray(target)


def missing_points(target: np.ndarray) -> dict[str, int]:
    """How many points of each group a mapping leaves out (only groups with some missing)."""
    present = np.zeros(N_LANDMARKS, bool)
    present[target] = True
    counts = {g: int(np.sum(~present[a:b])) for g, (a, b) in LANDMARK_GROUPS.items()}
    return {g: n for g, n in counts.items() if n}


def read_holistic(path: str | os.PathLike, allow_partial: bool = False) -> tuple[np.ndarray, float]:
    """Reads a MediaPipe Holistic `.pose` file into our layout.

    Args:
      path: a `.pose` file written by pose-format from MediaPipe Holistic.
      allow_partial: accept a reduced layout (e.g. 178 points); the points it lacks are NaN.

    Returns:
      (poses, fps): float32 (frames, 1, 543, 3) with x, y normalised by the header's width and
      height as MediaPipe gives them, z unchanged, NaN where the confidence is 0; and the fps.

    Raises:
      LayoutError: pose-format not installed, unreadable file, not Holistic (e.g. OpenPose), more than one person, or a
        reduced layout without allow_partial.
    """
    try:
        from pose_format import Pose  # optional dependency: only .pose inputs need it
    except ImportError:
        raise LayoutError("reading .pose files needs pose-format: pip install pose-format") from None

    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            pose = Pose.read(f.read())
    except OSError as e:
        raise LayoutError(f"{path}: cannot read ({e.strerror})") from None
    except Exception as e:  # pose-format raises assorted errors on foreign or truncated bytes
        raise LayoutError(f"{path}: not a readable .pose file ({type(e).__name__}: {e})") from None
    source, target = holistic_indices(pose.header.components, path)
    missing = missing_points(target)
    if missing and not allow_partial:
        lacks = ", ".join(f"{n} of {b - a} {g}" for g, n in missing.items() for a, b in [LANDMARK_GROUPS[g]])
        raise LayoutError(
            f"{path}: a reduced Holistic layout ({len(target)} of {N_LANDMARKS} points; it lacks "
            f"{lacks} points); read it with allow_partial (--allow-partial) to get those points as NaN"
        )
    data = np.ma.getdata(pose.body.data)
    if len(data) == 0:
        raise LayoutError(f"{path}: no frames (an empty recording, or a file cut short)")
    if data.shape[1] != 1:
        raise LayoutError(f"{path}: {data.shape[1]} people; Holistic tracks one")
    width, height = pose.header.dimensions.width, pose.header.dimensions.height
    if width <= 0 or height <= 0:
        raise LayoutError(f"{path}: header size {width}x{height} cannot normalise pixel coordinates")
    points = data[:, :, source, :3] / np.asarray([width, height, 1], np.float32)
    points[np.asarray(pose.body.confidence)[:, :, source] <= 0] = np.nan
    out = np.full((len(data), 1, N_LANDMARKS, 3), np.nan, np.float32)
    out[:, :, target] = points
    return out, float(pose.body.fps)
