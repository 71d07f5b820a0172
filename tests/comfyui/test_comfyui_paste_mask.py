"""FOM Paste Faces' mask and restore_model inputs in the real host, over HTTP.

- A grey mask uploaded to the server and loaded by core Load Image (as Mask) replaces the circle of
  the face it covers: inside it the animation (as a whole-window paste shows it), the old circle
  outside it the photo; the other face keeps its circle. A mask of the wrong size (Load Image's own
  MASK of a smaller picture with transparency) is FOM Paste Faces' error naming both sizes.
- A face restoration model of a real spandrel architecture (RestoreFormer, random weights, written
  into the host's models/upscale_models/ by this test) through core Load Upscale Model changes every
  pasted face and keeps the frame count; the background stays as without it.
"""

from __future__ import annotations

import io

import assets
import cv2
import numpy as np
import pytest
import video_checks
from comfy_host import execution_error
from conftest import CLIP_FRAMES
from kit import eroded, face_mask
from workflow_files import api, with_inputs

HW = (900, 1200)
BOXES = "190,170,320,305;600,185,700,300"  # faces 1 and 3 of the painting (workflows' boxes by hand)
RESTORER = "fom_test_restoreformer.safetensors"


def upload(server, name: str, image: np.ndarray) -> None:
    """POST /upload/image: what the editor's upload button does."""
    ok, data = cv2.imencode(".png", image)
    assert ok
    r = server.session.post(f"{server.url}/upload/image", files={"image": (name, io.BytesIO(data.tobytes()),
                                                                          "image/png")},
                            data={"overwrite": "true", "type": "input"}, timeout=30)
    r.raise_for_status()


def paste_prompt(prefix: str, **paste_inputs) -> dict:
    """The shipped restoration workflow with two faces and without its restorer, paste inputs set."""
    prompt = with_inputs(api("face_restoration"), "FOMFacesFromBoxes", boxes=BOXES)
    del prompt["16"], prompt["14"]["inputs"]["restore_model"]
    prompt = with_inputs(prompt, "FOMPasteFaces", **paste_inputs)
    return with_inputs(prompt, "SaveVideo", filename_prefix=prefix)


def rendered(server, prompt: dict) -> np.ndarray:
    entry = server.run(prompt, timeout=600)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    videos = [i for i in entry["outputs"]["17"]["images"] if i["filename"].endswith(".mp4")]
    return video_checks.read_frames(server.output_path(videos[0])).astype(np.int16)


def disc(face, ratio=0.4, grow=0.0) -> np.ndarray:
    return face_mask(face, HW, ratio, grow)


@pytest.mark.timeout(600)
def test_mask_replaces_the_circle_of_the_face_it_covers(comfy_env):
    from fom_pipeline.faces import make_faces, parse_boxes
    from fom_pipeline.faces.paste import feather_width

    faces = make_faces(HW, parse_boxes(BOXES))
    x1, y1, x2, y2 = (int(v) for v in faces[0].box)
    mask = np.zeros(HW, np.uint8)
    mask[y1 - 60 : y2 + 60, x1 + 20 : x2 - 20] = 255  # face 1: taller and narrower than its circle
    upload(comfy_env, "fom_mask.png", mask)
    prompt = paste_prompt("fom/mask")
    prompt["30"] = {"class_type": "LoadImageMask", "inputs": {"image": "fom_mask.png", "channel": "red"}}
    prompt["14"]["inputs"]["mask"] = ["30", 0]
    masked = rendered(comfy_env, prompt)
    whole = rendered(comfy_env, paste_prompt("fom/mask_whole", ratio=1.0, feather=0.0))  # each whole window
    assert masked.shape == whole.shape == (CLIP_FRAMES, *HW, 3)
    photo = video_checks.read_photo(comfy_env.base_dir / "input" / assets.PHOTO_MULTI).astype(np.int16)

    on = mask > 127
    core = eroded(on, int(np.ceil(feather_width(faces[0], 0.4, None))) + 4)
    assert (core & ~disc(faces[0])).sum() > 500  # the mask reaches past the old circle
    assert np.abs(masked[:, core] - whole[:, core]).mean() < 2.5, "inside the mask: the animation"
    assert np.abs(masked[:, core] - photo[core]).mean() > video_checks.FACE_CHANGED_MEAN
    near = ~eroded(~on, 4) | disc(faces[1], grow=4)
    old_circle = disc(faces[0]) & ~near
    background = (~near & ~disc(faces[0], grow=4)) | old_circle
    diff = np.abs(masked[:, background] - photo[background])
    assert old_circle.sum() > 1000, "the old circle outside the mask is the photo"
    assert diff.mean() < video_checks.BACKGROUND_MEAN and np.percentile(diff, 99) <= video_checks.BACKGROUND_P99
    own = disc(faces[1], 0.2)  # face 3 is not covered: its circle as before
    assert np.abs(masked[:, own] - whole[:, own]).mean() < 2.5
    assert np.abs(masked[:, own] - photo[own]).mean() > video_checks.FACE_CHANGED_MEAN


def test_mask_of_the_wrong_size_is_the_paste_nodes_error(comfy_env):
    rgba = np.zeros((450, 600, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[100:300, 200:400, 3] = 0  # painted in the mask editor: Load Image's MASK is 1 there
    upload(comfy_env, "fom_mask_small.png", rgba)
    prompt = paste_prompt("fom/mask_small")
    prompt["31"] = {"class_type": "LoadImage", "inputs": {"image": "fom_mask_small.png"}}
    prompt["14"]["inputs"]["mask"] = ["31", 1]
    entry = comfy_env.run(prompt, timeout=300)
    assert entry["status"]["status_str"] == "error"
    err = execution_error(entry)
    assert err["node_type"] == "FOMPasteFaces", err
    message = err["exception_message"].strip()
    assert "mask is 600x450 but the picture is 1200x900" in message and "\n" not in message, message


@pytest.mark.timeout(900)
def test_restoration_model_changes_every_face_and_keeps_the_frames(comfy_env):
    assets.write_restore_model(comfy_env.base_dir / "models" / "upscale_models" / RESTORER, seed=1)
    restored_prompt = with_inputs(with_inputs(api("face_restoration"), "FOMFacesFromBoxes", boxes=BOXES),
                                  "UpscaleModelLoader", model_name=RESTORER)
    restored = rendered(comfy_env, with_inputs(restored_prompt, "SaveVideo", filename_prefix="fom/restored_test"))
    plain = rendered(comfy_env, paste_prompt("fom/not_restored"))
    assert restored.shape == plain.shape == (CLIP_FRAMES, *HW, 3)
    from fom_pipeline.faces import make_faces, parse_boxes

    faces = make_faces(HW, parse_boxes(BOXES))
    for i, face in enumerate(faces):  # each pasted face differs from the run without restoration
        core = disc(face, 0.2)
        changed = float(np.abs(restored[:, core] - plain[:, core]).mean())
        assert changed > 5, f"face {i + 1} is not restored ({changed:.2f})"
    outside = ~(disc(faces[0], grow=4) | disc(faces[1], grow=4))
    assert np.abs(restored[:, outside] - plain[:, outside]).mean() < 1.0
