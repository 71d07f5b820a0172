"""Shared bits for the faces tests: real media, hand-typed face boxes, a head-following stand-in."""

from __future__ import annotations

import cv2
import numpy as np
from kit import MEDIA, PAINTING_BOXES, read_rgb  # noqa: F401 (test_cli_detect imports them from here)

DRIVING_UNCROPPED = MEDIA / "lp_driving_d0.mp4"

# What a detector might report on the painting, each face with its own score: the best score is the
# smallest face on the right (4), the largest face (0) scores lowest of the five, so "largest" and "best
# score" pick different faces. Decoys: a big box scoring under the default 0.5 threshold (a largest-first
# bug without the threshold would take it), one just under it, and a smaller duplicate of face 0 that
# outscores it (de-duplication keeps the larger box).
PAINTING_SCORES = [0.62, 0.97, 0.71, 0.88, 0.99]
DECOY_LOW = (820.0, 480.0, 1060.0, 720.0, 0.30)
DECOY_NEAR = (40.0, 600.0, 200.0, 760.0, 0.49)
DUPLICATE_OF_0 = (200.0, 185.0, 305.0, 295.0, 0.995)
PAINTING_DETECTIONS = [(*box, score) for box, score in zip(PAINTING_BOXES, PAINTING_SCORES, strict=True)]
# Shuffled, as a detector lists them by score, with the decoys mixed in.
NOISY_DETECTIONS = [DUPLICATE_OF_0, PAINTING_DETECTIONS[4], PAINTING_DETECTIONS[1], DECOY_NEAR,
                    PAINTING_DETECTIONS[3], PAINTING_DETECTIONS[2], PAINTING_DETECTIONS[0], DECOY_LOW]


class HandBoxDetector:
    """Stand-in with FaceDetector's ``.detect``: fixed detections for every image.

    Each entry is (x1,y1,x2,y2,score), or (x1,y1,x2,y2) scored ``score``.
    """

    backend = "hand"

    def __init__(self, detections, score: float = 0.99):
        self.detections = [tuple(d) if len(d) == 5 else (*d, score) for d in detections]

    def detect(self, images, batch_size: int = 4):
        return [[tuple(float(v) for v in d) for d in self.detections] for _ in range(len(images))]


class SkinHeadDetector:
    """Stand-in that follows the head in a green-screen clip: the box of skin-coloured pixels.

    Skin is where red clearly beats green and green beats blue; the green backdrop, dark hair and
    dark jacket all fail that test. The largest connected skin blob (face, ears, neck) is the head;
    its box is cut to a square-ish face box at the chin.
    """

    backend = "skin"

    def detect(self, images, batch_size: int = 4):
        out = []
        for image in np.asarray(images):
            rgb = (image * 255).astype(np.int16)
            r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
            skin = ((r > g + 15) & (g > b) & (r > 80)).astype(np.uint8)
            skin = cv2.morphologyEx(skin, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
            count, _, stats, _ = cv2.connectedComponentsWithStats(skin)
            if count < 2:
                out.append([])
                continue
            best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            x, y, w, h = stats[best, :4]
            h = min(h, w)  # the blob runs down the neck; a face is about as tall as it is wide
            out.append([(float(x), float(y), float(x + w), float(y + h), 0.9)])
        return out
