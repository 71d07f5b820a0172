"""The pixel checks themselves (no server): they pass on a correct paste and fail on the faults they
exist to catch."""

import numpy as np
import pytest
import video_checks as vc
from comfy_host import shared_dir
from workflow_files import api

PHOTO = shared_dir() / "media" / "fom_source_image_multi_person.jpg"
CIRCLES = [(300, 300, 100), (800, 500, 120)]


@pytest.fixture(scope="module")
def photo():
    return vc.read_photo(PHOTO)


@pytest.fixture(scope="module")
def pasted(photo):
    """Four frames: the photo with different noise (a moving 'face') inside each circle."""
    rng = np.random.default_rng(0)
    frames = np.repeat(photo[None], 4, 0)
    inside = vc.circle_mask(photo.shape[:2], CIRCLES)
    frames[:, inside] = rng.integers(0, 256, (4, int(inside.sum()), 3), dtype=np.uint8)
    return frames


def test_a_correct_paste_passes(pasted, photo):
    stats = vc.assert_faces_moved_background_still(pasted, photo, CIRCLES)
    assert stats["background_mean"] == 0 and stats["face_changed_min"] > 50 and stats["motion"] > 50


def test_nothing_pasted_fails(photo):
    with pytest.raises(AssertionError, match="face not pasted"):
        vc.assert_faces_moved_background_still(np.repeat(photo[None], 4, 0), photo, CIRCLES, min_motion=None)


def test_paste_outside_the_circles_fails(pasted, photo):
    with pytest.raises(AssertionError, match="outside the paste circles changed"):
        vc.assert_faces_moved_background_still(pasted, photo, CIRCLES[:1], min_motion=None)


def test_still_faces_fail_the_motion_check(pasted, photo):
    with pytest.raises(AssertionError, match="do not move"):
        vc.assert_faces_moved_background_still(np.repeat(pasted[:1], 4, 0), photo, CIRCLES)


def test_animated_crop_is_not_the_photo(photo):
    with pytest.raises(AssertionError, match="is the source picture"):
        vc.assert_animated_not_photo(np.repeat(photo[None, :256, :256], 3, 0), photo[:256, :256])


def test_paste_circles_follow_the_workflow_inputs():
    # faces_by_hand_two_drivers: five boxes by hand, faces 1,3,5 and 2,4 pasted by two chained pastes.
    from fom_pipeline import faces as F

    prompt = api("faces_by_hand_two_drivers")
    boxes_node = next(n for n in prompt.values() if isinstance(n["inputs"].get("boxes"), str))
    faces = F.make_faces((900, 1200), F.parse_boxes(boxes_node["inputs"]["boxes"]),
                         crop_mode=boxes_node["inputs"]["crop_mode"], crop_scale=boxes_node["inputs"]["crop_scale"])
    photo, circles = vc.paste_circles(prompt, PHOTO.parent, detect=lambda image: pytest.fail("no detector here"))
    assert photo.shape == (900, 1200, 3)
    centres = sorted((int((f.crop_box[0] + f.crop_box[2]) / 2), int((f.crop_box[1] + f.crop_box[3]) / 2))
                     for f in faces)
    assert sorted((cx, cy) for cx, cy, _ in circles) == centres
