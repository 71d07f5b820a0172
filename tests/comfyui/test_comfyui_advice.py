"""An engine error shown in a node gives the node's advice (its inputs), not the command line's flags."""

from __future__ import annotations

import assets
import torch
from comfy_host import execution_error
from workflow_files import model_prompt


def test_missing_device_error_names_the_nodes_input(comfy_env):
    prompt = model_prompt(assets.PHOTO_FACE, assets.CHECKPOINT)
    prompt["2"]["inputs"]["device"] = "mps"  # never there on Linux
    entry = comfy_env.run(prompt)
    if torch.backends.mps.is_available():  # a Mac runs it
        assert entry["status"]["status_str"] == "success", execution_error(entry)
        return
    assert entry["status"]["status_str"] == "error"
    err = execution_error(entry)
    assert err["node_type"] == "FOMLoadModel"
    assert err["exception_message"].strip() == (
        "FOMLoadModel: device 'mps' asked for, but Apple MPS is not available (pick device cpu or auto)")
