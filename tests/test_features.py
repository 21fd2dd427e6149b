"""Feature options on constructed skeletons with known answers; the authors' features unchanged."""

import dataclasses
import itertools

import numpy as np
import pytest

from slt_jax import data, features
from slt_jax.config import PRESETS, DataConfig
from slt_jax.layout import LANDMARK_GROUPS, N_LANDMARKS

# Every option on: positions around the shoulders, hand shapes, velocities, presence flags.
ALL = dict(body_norm="frame", hand_norm=True, velocity=True, hand_presence=True)
pytestmark = pytest.mark.filterwarnings("error")  # NaN-safe means no RuntimeWarning either

LEFT_HAND, RIGHT_HAND = slice(501, 522), slice(522, 543)


def a_hand(wrist, rng) -> np.ndarray:
    """21 (x, y, z) points: the wrist, finger bases 0.05 from it, the rest scattered beyond."""
    points = wrist + rng.uniform(-0.1, 0.1, (21, 3))
    angles = np.array([0.2, 0.4, 0.6, 0.8])
    points[list(features.PALM)] = wrist + 0.05 * np.stack([np.cos(angles), np.sin(angles), 0 * angles], 1)
    points[0] = wrist
    return points


def a_signer(n_frames: int = 5, seed: int = 0) -> np.ndarray:
    """(frames, 1, 543, 3) float32: shoulders fixed at (0.6, 0.4) and (0.4, 0.4), the nose at
    (0.5, 0.2), the other points moving; the left hand missing in frame 2, the face never detected."""
    rng = np.random.default_rng(seed)
    pose = np.full((n_frames, 1, 543, 3), np.nan)
    body = rng.uniform(0.3, 0.7, (33, 3))
    body[[0, 11, 12]] = [[0.5, 0.2, 0.0], [0.6, 0.4, 0.0], [0.4, 0.4, 0.0]]
    for t in range(n_frames):
        jitter = rng.normal(0, 0.01, (33, 3))
        jitter[[0, 11, 12]] = 0
        pose[t, 0, :33] = body + jitter
        pose[t, 0, LEFT_HAND] = a_hand(np.array([0.65, 0.6, 0.0]) + 0.01 * t, rng)
        pose[t, 0, RIGHT_HAND] = a_hand(np.array([0.35, 0.6, 0.0]) - 0.01 * t, rng)
    pose[2, 0, LEFT_HAND] = np.nan
    return pose.astype(np.float32)


def authors_features(pose: np.ndarray) -> np.ndarray:
    """REFERENCE §1 written out: body 0-32, left hand 501-521, right hand 522-542, x and y, NaN -> 0."""
    points = list(range(0, 33)) + list(range(501, 522)) + list(range(522, 543))
    return np.nan_to_num(pose[:, 0, points, :2].astype(np.float32)).reshape(len(pose), 150)


@pytest.mark.parametrize("preset", ["gloss16", "gloss32", "gloss64", "text16", "tiny"])
def test_the_paper_presets_keep_the_authors_features_bit_for_bit(preset):
    pose = a_signer(seed=1)
    pose[1, 0, 3, 0] = np.nan  # one missing coordinate
    pose[4] = np.nan  # a frame where nothing was detected
    config = PRESETS[preset].data
    got = data.select_features(pose, config)
    assert got.dtype == np.float32 and config.n_features == 150
    assert got.tobytes() == authors_features(pose).tobytes()
    assert features.feature_tag(config) == "xy"  # the name an existing TFDS build of it carries


@pytest.mark.parametrize("mode", ["sequence", "frame"])
def test_a_moved_and_scaled_copy_of_a_signer_gives_the_same_features(mode):
    pose = a_signer()
    copy = pose * 1.7 + np.array([0.2, -0.3, 0.1], np.float32)
    config = DataConfig(use_3d=True, **ALL | {"body_norm": mode})
    original, moved = data.select_features(pose, config), data.select_features(copy, config)
    np.testing.assert_allclose(moved, original, atol=2e-5)
    assert not np.allclose(data.select_features(copy, DataConfig()), data.select_features(pose, DataConfig()))


@pytest.mark.parametrize("mode", ["sequence", "frame"])
def test_body_normalisation_puts_the_shoulders_at_plus_minus_half_and_the_nose_above(mode):
    body = a_signer()[:, 0, :33, :2]
    positions = features.normalise_body(body, body, mode)
    np.testing.assert_allclose(positions[:, 11], [[0.5, 0.0]] * 5, atol=1e-6)
    np.testing.assert_allclose(positions[:, 12], [[-0.5, 0.0]] * 5, atol=1e-6)
    np.testing.assert_allclose(positions[:, 0], [[0.0, -1.0]] * 5, atol=1e-6)  # 0.2 above, width 0.2


def test_per_frame_normalisation_follows_the_signer_and_per_sequence_keeps_the_motion():
    pose = a_signer()[:, 0, :33, :2]
    drift = np.linspace(0, 0.2, 5)[:, None, None]
    moving = pose * (1 + drift) + drift  # walks and comes closer
    per_frame = features.normalise_body(moving, moving, "frame")
    per_sequence = features.normalise_body(moving, moving, "sequence")
    np.testing.assert_allclose(per_frame, features.normalise_body(pose, pose, "frame"), atol=1e-5)
    assert np.ptp(per_sequence[:, 11, 0]) > 0.1  # the shoulder visibly moves in sequence units


def test_frames_without_shoulders_use_the_sequence_reference():
    body = a_signer()[:, 0, :33, :2]
    body[1, 11] = np.nan
    centre_TxA, width_T = features.shoulder_reference(body, "frame")
    np.testing.assert_allclose(centre_TxA[1], [0.5, 0.4], atol=1e-6)
    np.testing.assert_allclose(width_T, 0.2, atol=1e-6)
    centre_TxA, width_T = features.shoulder_reference(np.full_like(body, np.nan), "sequence")
    assert np.isnan(centre_TxA).all() and np.isnan(width_T).all()


def test_a_hand_rotated_about_its_wrist_keeps_its_size_and_its_shape_rotates_with_it():
    hand = a_hand(np.array([0.3, 0.5, 0.0]), np.random.default_rng(0))[None, :, :2]
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rotated = (hand - hand[:, :1]) @ rotation.T + hand[:, :1]
    np.testing.assert_allclose(features.palm_size(hand), [0.05])
    np.testing.assert_allclose(features.palm_size(rotated), [0.05])
    np.testing.assert_allclose(features.hand_shape(rotated), features.hand_shape(hand) @ rotation.T, atol=1e-12)
    tip = hand.copy()
    tip[0, 8] = hand[0, 0] + [0.0, 0.1]
    np.testing.assert_allclose(features.hand_shape(tip)[0, 7], [0.0, 2.0])  # two palm sizes above


def test_hand_shape_is_kept_beside_the_hands_position():
    pose = a_signer()
    config = DataConfig(hand_norm=True)
    got = data.select_features(pose, config)
    np.testing.assert_array_equal(got[:, :150], authors_features(pose))
    left_shape = got[:, 150:190].reshape(5, 20, 2)
    expected = features.hand_shape(pose[:, 0, LEFT_HAND, :2].astype(np.float64))
    np.testing.assert_allclose(left_shape[[0, 1, 3, 4]], expected[[0, 1, 3, 4]], atol=1e-5)
    assert np.all(left_shape[2] == 0)  # missing in frame 2


def test_velocity_is_the_frame_difference_and_nan_where_either_frame_is_missing():
    x = np.array([[0.0, 1.0], [1.0, 3.0], [np.nan, 0.0], [3.0, 4.0]])
    np.testing.assert_array_equal(features.velocity(x), [[0, 0], [1, 2], [np.nan, -3], [np.nan, 4]])
    pose = a_signer()
    got = data.select_features(pose, DataConfig(velocity=True))
    positions, velocities = got[:, :150], got[:, 150:]
    np.testing.assert_allclose(velocities[1:4, :66], np.diff(positions[:4, :66], axis=0), atol=1e-6)  # body
    left = slice(66, 108)
    assert np.all(velocities[[0, 2, 3], left] == 0)  # first frame; the hand is missing in 2, so 2-1 and 3-2 unknown
    np.testing.assert_allclose(velocities[4, left], positions[4, left] - positions[3, left], atol=1e-6)


def test_presence_flags_mark_detected_hands_instead_of_silent_zeros():
    pose = a_signer()
    pose[3, 0, RIGHT_HAND] = np.nan
    got = data.select_features(pose, DataConfig(hand_presence=True))
    np.testing.assert_array_equal(got[:, -2:], [[1, 1], [1, 1], [0, 1], [1, 0], [1, 1]])


def test_an_empty_frame_stays_padding_and_a_detected_one_never_becomes_all_zeros():
    pose = a_signer()
    pose[4] = np.nan  # nothing detected: padding under the authors' rule
    pose[2, 0, :33] = np.nan  # no body, the right hand only
    pose[2, 0, LEFT_HAND] = np.nan
    for config in (DataConfig(**ALL), DataConfig(body_norm="frame"), DataConfig(body_norm="sequence", velocity=True)):
        got = data.select_features(pose, config)
        assert np.isfinite(got).all()
        np.testing.assert_array_equal(np.any(got != 0, axis=1), [True, True, True, True, False])
    nothing = np.full((3, 1, 543, 3), np.nan, np.float32)
    assert not data.select_features(nothing, DataConfig(use_3d=True, **ALL)).any()


def test_n_features_counts_every_combination():
    pose = a_signer()
    groups = [("body", "left_hand", "right_hand"), ("body",), ("right_hand",), ("body", "face", "left_hand")]
    for g, use_3d, body, hands, vel, flags in itertools.product(groups, (False, True), ("none", "frame"),
                                                              (False, True), (False, True), (False, True)):
        config = DataConfig(groups=g, use_3d=use_3d, body_norm=body, hand_norm=hands, velocity=vel,
                            hand_presence=flags)
        assert data.select_features(pose, config).shape == (5, config.n_features), config
    assert DataConfig(body_norm="sequence", hand_norm=True).n_features == 150 + 2 * 20 * 2
    assert DataConfig(hand_norm=True, velocity=True, hand_presence=True).n_features == 2 * 230 + 2
    assert DataConfig(use_3d=True, **ALL).n_features == (75 + 40) * 3 * 2 + 2


def test_feature_tags_name_each_option():
    config = DataConfig(use_3d=True, **ALL)
    assert features.feature_tag(config) == "xyz_body-frame_hands_velocity_presence"
    assert features.feature_tag(dataclasses.replace(config, body_norm="none", velocity=False)) == "xyz_hands_presence"


@pytest.mark.parametrize("options", [{}, {"hand_norm": True, "velocity": True, "hand_presence": True},
                                     {"groups": ("face", "right_hand"), "use_3d": True, "hand_norm": True}])
def test_feature_parts_name_the_body_part_of_every_column(options):
    config = dataclasses.replace(DataConfig(), **options)
    points = np.random.default_rng(0).random((3, N_LANDMARKS, 3 if config.use_3d else 2))
    parts = features.feature_parts(config)
    assert len(parts) == features.frame_features(points, config).shape[1]
    for name in features.PARTS:  # a part's columns move when only its points move
        moved = points.copy()
        group = slice(*LANDMARK_GROUPS[name])
        moved[:, group] += np.random.default_rng(1).normal(0, 0.1, moved[:, group].shape)
        changed = np.any(features.frame_features(moved, config) != features.frame_features(points, config), axis=0)
        flags = np.arange(len(parts)) >= len(parts) - (2 if config.hand_presence else 0)  # presence: unmoved
        np.testing.assert_array_equal(changed[~flags], (parts == features.PARTS.index(name))[~flags])
