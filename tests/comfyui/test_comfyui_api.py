"""Headless API: the saved API workflows run to completion on the real server; model reuse; errors;
cancel (in test_comfyui_streaming.py). Inputs are generated (see assets.py); the output videos are checked with PyAV."""

import assets
import pytest
import video_checks
from comfy_host import PromptError, execution_error
from conftest import CLIP_FRAMES
from workflow_files import WORKFLOWS, api, fast, with_inputs

# name -> (frames, width, height, fps, audio)
EXPECTED = {
    "multi_face_animation": (CLIP_FRAMES, 1200, 900, 30.0, True),
    "single_face": (CLIP_FRAMES - 1, 256, 256, 25.0, False),
    "faces_by_hand_two_drivers": (CLIP_FRAMES, 1200, 900, 30.0, True),
    "face_restoration": (CLIP_FRAMES, 1200, 900, 30.0, True),
    # the source video's timeline (5 frames at 25 fps, no sound); the 30 fps driver is re-timed to it
    "faces_in_a_video": (CLIP_FRAMES - 1, 512, 512, 25.0, False),
}


def _sfd_boxes(server):
    """The generated S3FD (the host's own weights file) as ``photo -> raw boxes``, for video_checks."""

    def detect(photo):
        from fom_pipeline.faces import load_face_detector

        weights = server.base_dir / "models" / "face_detection" / assets.SFD_WEIGHTS
        return load_face_detector(weights_path=weights, device="cpu").detect(photo.astype("float32") / 255.0)[0]

    return detect


def _video_output(server, entry: dict) -> dict:
    for out in entry["outputs"].values():
        for item in out.get("images", []):
            if item["filename"].endswith(".mp4"):
                return item
    raise AssertionError(f"no video in outputs: {entry['outputs']}")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", WORKFLOWS)
def test_api_workflow_runs_and_writes_video(comfy_env, name):
    entry = comfy_env.run(fast(name), timeout=280)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    path = comfy_env.output_path(_video_output(comfy_env, entry))
    assert path.is_file() and path.stat().st_size > 0
    info = assets.probe(path)
    frames, width, height, fps, audio = EXPECTED[name]
    assert (info["frames"], info["width"], info["height"]) == (frames, width, height), info
    assert info["fps"] == pytest.approx(fps, rel=1e-3)
    assert info["audio"] is audio
    # Pixels: a face (not the photo) inside every paste circle, the photo untouched outside them. Not
    # motion: the random test checkpoint's faces barely change with the driving frames (see video_checks).
    video = video_checks.read_frames(path)
    assert video.shape == (frames, height, width, 3)
    inputs = comfy_env.base_dir / "input"
    if name == "faces_in_a_video":  # the generated detector's boxes are fixed 512 px anchors, not faces:
        return  # where faces are pasted onto a video is measured in test_comfyui_video_source.py
    pasted = video_checks.paste_circles(fast(name), inputs, _sfd_boxes(comfy_env))
    if pasted is None:  # the output is the animated face itself
        video_checks.assert_animated_not_photo(video, video_checks.source_photo(fast(name), inputs))
    else:
        video_checks.assert_faces_moved_background_still(video, *pasted, min_motion=None)


def test_multi_face_workflow_takes_every_face(comfy_env):
    # The shipped file asks for all faces (max_faces 0); its detection part alone, with a preview of
    # the crops, shows that all 16 boxes of the generated detector go on (the run test keeps 5).
    shipped = api("multi_face_animation")
    assert shipped["6"]["inputs"]["max_faces"] == 0
    prompt = {k: shipped[k] for k in ("1", "5", "6")}
    prompt["20"] = {"class_type": "PreviewImage", "inputs": {"images": ["6", 1]}, "_meta": {"title": "crops"}}
    entry = comfy_env.run(prompt, timeout=120)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    assert len(entry["outputs"]["20"]["images"]) == 16


@pytest.mark.timeout(300)
def test_second_run_reuses_loaded_model(comfy_env):
    def loads() -> int:
        return comfy_env.log_text().count(f"FOM: loading {assets.CHECKPOINT} ")

    first = with_inputs(api("single_face"), "FOMLoadModel", warp_border="paddlegan")
    before = loads()
    assert comfy_env.run(first)["status"]["status_str"] == "success"
    assert loads() == before + 1  # a fresh (file, options) key: a real load

    # The same graph again: ComfyUI reuses the loaded model and everything computed from it (the
    # loader and the transfer are reported as cached, not executed); nothing reloads. A timing would
    # prove less: the tiny test model loads in milliseconds.
    again = with_inputs(first, "SaveVideo", filename_prefix="fom/reuse")
    entry = comfy_env.run(again)
    assert entry["status"]["status_str"] == "success"
    cached = {node for event, data in entry["status"]["messages"] if event == "execution_cached"
              for node in data["nodes"]}
    assert {"4", "7"} <= cached, cached
    assert loads() == before + 1

    # Another prompt evicts ComfyUI's own cache of the loader. 0.3.75: the pack's cache still has the
    # model. 0.33: its RAM-pressure cache evicts the earlier prompt's outputs and the model goes with
    # them, as ComfyUI's own models do (test_comfyui_model_management), so going back loads it again.
    other = with_inputs(api("single_face"), "FOMLoadModel", warp_border="plain")
    assert comfy_env.run(other)["status"]["status_str"] == "success"
    assert loads() == before + 2
    back = with_inputs(first, "SaveVideo", filename_prefix="fom/reuse_back")
    assert comfy_env.run(back)["status"]["status_str"] == "success"
    if comfy_env.host.newer:
        assert loads() == before + 3, "the model outlived the loader output ComfyUI evicted"
    else:
        assert loads() == before + 2, "the model was loaded again instead of reused"


def test_missing_checkpoint_is_a_node_error(comfy_env):
    bad = with_inputs(api("single_face"), "FOMLoadModel", ckpt_name="no-such-model.pth.tar")
    with pytest.raises(PromptError) as err:
        comfy_env.queue_prompt(bad)
    errors = err.value.body["node_errors"]["4"]["errors"]
    assert any("no-such-model.pth.tar" in e["details"] and "not found" in e["details"] for e in errors), errors


def test_ratio_out_of_range_is_a_node_error(comfy_env):
    bad = with_inputs(api("faces_by_hand_two_drivers"), "FOMPasteFaces", ratio=1.5)
    with pytest.raises(PromptError) as err:
        comfy_env.queue_prompt(bad)
    node_errors = err.value.body["node_errors"]
    assert set(node_errors) == {"14", "15"}
    assert node_errors["14"]["errors"][0]["type"] == "value_bigger_than_max"
    assert "ratio" in node_errors["14"]["errors"][0]["details"]


@pytest.mark.timeout(300)
def test_no_face_found_is_a_clear_error_and_server_goes_on(comfy_env):
    # The generated detector scores every box 0.982 (see assets.write_sfd_weights): 0.99 finds none.
    bad = with_inputs(api("multi_face_animation"), "FOMDetectFaces", threshold=0.99)
    entry = comfy_env.run(bad, timeout=280)
    assert entry["status"]["status_str"] == "error"
    err = execution_error(entry)
    assert err["node_type"] == "FOMDetectFaces"
    assert "no face found" in err["exception_message"]
    assert "\n" not in err["exception_message"].strip()
    good = comfy_env.run(with_inputs(api("single_face"), "SaveVideo", filename_prefix="fom/after_error"))
    assert good["status"]["status_str"] == "success"
