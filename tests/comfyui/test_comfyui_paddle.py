"""PaddleGAN's checkpoints in a real ComfyUI: FOMLoadModel lists .pdparams files from the fom model
folder and runs them (the standard 512 model and the mobile model, as PaddleGAN's own golden
checkpoints from ../shared/golden/paddle), and a .safetensors converted from one."""

from __future__ import annotations

import shutil

import assets
import pytest
from comfy_host import execution_error, shared_dir
from conftest import CLIP_FRAMES
from workflow_files import api, with_inputs

PADDLE_FILES = {"paddle-mobile.pdparams": 256, "paddle-tiny-512.pdparams": 512}


@pytest.fixture(scope="module")
def paddle_models(comfy_env):
    folder = comfy_env.base_dir / "models" / "fom"
    for name in PADDLE_FILES:
        shutil.copy(shared_dir() / "golden" / "paddle" / name, folder / name)
    import fom_pipeline as fp

    fp.convert(folder / "paddle-mobile.pdparams", folder / "paddle-mobile-converted.safetensors")
    return comfy_env


def test_model_folder_lists_paddle_files(paddle_models):
    info = paddle_models.get("/object_info/FOMLoadModel").json()["FOMLoadModel"]
    options = info["input"]["required"]["ckpt_name"][1]["options"]
    for name in (*PADDLE_FILES, "paddle-mobile-converted.safetensors", assets.CHECKPOINT):
        assert name in options, options


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", [*PADDLE_FILES, "paddle-mobile-converted.safetensors"])
def test_paddle_checkpoint_runs_the_single_face_workflow(paddle_models, name):
    prompt = with_inputs(api("single_face"), "FOMLoadModel", ckpt_name=name)
    prompt = with_inputs(prompt, "SaveVideo", filename_prefix=f"fom/paddle_{name.split('.')[0]}")
    entry = paddle_models.run(prompt, timeout=280)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    assert f"FOM: loading {name}" in paddle_models.log_text()
    video = next(item for out in entry["outputs"].values() for item in out.get("images", [])
                 if item["filename"].endswith(".mp4"))
    info = assets.probe(paddle_models.output_path(video))
    size = PADDLE_FILES.get(name, 256)
    assert (info["frames"], info["width"], info["height"]) == (CLIP_FRAMES - 1, size, size), info
