"""MediaPipe Holistic landmark indices and the lines a stick figure is drawn with.

Indices are within each part (body 0..32, face 0..467, hand 0..20); `slt_jax.layout.LANDMARK_GROUPS`
gives each part's offset in the 543 points. "Left" and "right" are the signer's own sides, so on a
signer facing the camera the left side appears on the right of the image.
"""

from __future__ import annotations

from slt_jax.layout import LANDMARK_GROUPS

BODY, FACE = LANDMARK_GROUPS["body"][0], LANDMARK_GROUPS["face"][0]
LEFT_HAND, RIGHT_HAND = LANDMARK_GROUPS["left_hand"][0], LANDMARK_GROUPS["right_hand"][0]
N_BODY, N_FACE, N_HAND = 33, 468, 21

# Body (MediaPipe Pose).
NOSE = 0
LEFT_EYE_INNER, LEFT_EYE, LEFT_EYE_OUTER = 1, 2, 3
RIGHT_EYE_INNER, RIGHT_EYE, RIGHT_EYE_OUTER = 4, 5, 6
LEFT_EAR, RIGHT_EAR, MOUTH_LEFT, MOUTH_RIGHT = 7, 8, 9, 10
LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW = 11, 12, 13, 14
LEFT_WRIST, RIGHT_WRIST = 15, 16
LEFT_PINKY, RIGHT_PINKY, LEFT_INDEX, RIGHT_INDEX, LEFT_THUMB, RIGHT_THUMB = 17, 18, 19, 20, 21, 22
LEFT_HIP, RIGHT_HIP, LEFT_KNEE, RIGHT_KNEE, LEFT_ANKLE, RIGHT_ANKLE = 23, 24, 25, 26, 27, 28
LEFT_HEEL, RIGHT_HEEL, LEFT_FOOT_INDEX, RIGHT_FOOT_INDEX = 29, 30, 31, 32

BODY_EDGES = (
    (LEFT_SHOULDER, RIGHT_SHOULDER), (LEFT_SHOULDER, LEFT_ELBOW), (LEFT_ELBOW, LEFT_WRIST),
    (RIGHT_SHOULDER, RIGHT_ELBOW), (RIGHT_ELBOW, RIGHT_WRIST), (LEFT_SHOULDER, LEFT_HIP),
    (RIGHT_SHOULDER, RIGHT_HIP), (LEFT_HIP, RIGHT_HIP),
)

# Hand: wrist 0, then four joints per digit from the base to the tip.
WRIST = 0
THUMB, INDEX, MIDDLE, RING, PINKY = (range(1 + 4 * k, 5 + 4 * k) for k in range(5))
FINGERS = (INDEX, MIDDLE, RING, PINKY)
HAND_EDGES = tuple(
    (a, b) for digit in (THUMB, *FINGERS) for a, b in zip((WRIST, *digit[:-1]), digit)
) + ((5, 9), (9, 13), (13, 17), (WRIST, 17))

# Face mesh contours, each an ordered run of indices (closed ones repeat their first index).
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67,
             109, 10)
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# Eyes run from the outer corner to the inner one.
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
# Eyebrows run from the outer end to the inner one.
RIGHT_BROW_UPPER = (70, 63, 105, 66, 107)
RIGHT_BROW_LOWER = (46, 53, 52, 65, 55)
LEFT_BROW_UPPER = (300, 293, 334, 296, 336)
LEFT_BROW_LOWER = (276, 283, 282, 295, 285)
# The nose bridge from between the brows to the tip, then to the base.
NOSE_RIDGE = (168, 6, 197, 195, 5, 4, 1, 19, 94, 2)
NOSE_TIP = 1
# Inner mesh: the chin midline below the lower lip, the forehead midline above the brows.
CHIN_MIDLINE = (18, 200, 199, 175)
FOREHEAD_MIDLINE = (151, 9, 8)

FACE_CONTOURS = (
    FACE_OVAL, LIPS_OUTER_UPPER, LIPS_OUTER_LOWER, LIPS_INNER_UPPER, LIPS_INNER_LOWER,
    RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, LEFT_EYE_UPPER, LEFT_EYE_LOWER,
    RIGHT_BROW_UPPER, LEFT_BROW_UPPER, NOSE_RIDGE,
)
