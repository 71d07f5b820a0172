"""S3FD weights are read by us without running pickle code, then handed to face-alignment's network;
face-alignment's own loading (a bare torch.load in older releases, a URL fetch) is never used."""

from __future__ import annotations

import pickle
import types

import numpy as np
import pytest
import torch
from face_alignment.detection.sfd import sfd_detector as fa_sfd
from face_alignment.detection.sfd.net_s3fd import s3fd
from kit import CodePayload
from safetensors.torch import save_file

from fom_pipeline.errors import CheckpointError
from fom_pipeline.faces import load_face_detector
from fom_pipeline.sfd_weights import read_sfd_state_dict


def _weights(seed: int = 0) -> dict:
    """Seeded S3FD weights whose conv5_3 head fires everywhere (boxes are its 64 px anchors)."""
    torch.manual_seed(seed)
    state = s3fd().state_dict()
    for name, value in state.items():
        if "mbox" in name:
            value.zero_()
        elif name.endswith("weight") and value.ndim == 4:
            value.normal_(0, 0.02)
    for name, value in state.items():
        if "mbox_conf.bias" in name:
            value.fill_(-10.0)
            value[0] = 10.0
    state["conv5_3_norm_mbox_conf.bias"][:] = torch.tensor([-10.0, 10.0])
    return state


@pytest.fixture(scope="module")
def weights_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sfd")
    state = _weights()
    torch.save(state, folder / "s3fd.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "s3fd.safetensors"))
    return folder


@pytest.fixture
def face_alignment_loading_forbidden(monkeypatch):
    """face-alignment's SFDDetector module loses torch.load and the URL loader: any use fails loudly."""

    def forbidden(*args, **kwargs):
        raise AssertionError("face-alignment's own weight loading was used")

    monkeypatch.setattr(fa_sfd, "torch", types.SimpleNamespace(load=forbidden))
    monkeypatch.setattr(fa_sfd, "load_state_dict_from_url", forbidden, raising=False)
    monkeypatch.setattr(fa_sfd, "load_url", forbidden, raising=False)


def _image() -> np.ndarray:
    return np.random.default_rng(0).random((128, 160, 3), dtype=np.float32)


def test_pth_and_safetensors_load_without_face_alignments_loader(weights_files, face_alignment_loading_forbidden):
    found = {}
    for name in ("s3fd.pth", "s3fd.safetensors"):
        detector = load_face_detector("sfd", weights_path=weights_files / name, device="cpu")
        net = detector.backend_detector.face_detector
        assert torch.equal(net.conv1_1.weight, _weights()["conv1_1.weight"])
        found[name] = detector.detect(_image())[0]
    # the conv5_3 anchors (stride 16, 64 px) come back, the same from both files
    assert found["s3fd.pth"] and found["s3fd.pth"] == found["s3fd.safetensors"]
    x1, y1, x2, y2, score = found["s3fd.pth"][0]
    assert (x2 - x1, y2 - y1) == pytest.approx((64, 64), abs=1) and score > 0.99


@pytest.mark.parametrize("writer", ["torch.save", "pickle protocol 2"])
def test_pickle_with_a_payload_is_refused_and_never_runs(tmp_path, face_alignment_loading_forbidden, writer):
    marker = tmp_path / "pwned"
    state = dict(_weights())
    state["conv1_1.weight"] = CodePayload(marker)
    path = tmp_path / "s3fd-619a316812.pth"
    if writer == "torch.save":
        torch.save(state, path)
    else:
        path.write_bytes(pickle.dumps(state, protocol=2))
    with pytest.raises(CheckpointError) as info:
        load_face_detector("sfd", weights_path=path, device="cpu")
    message = str(info.value)
    assert message.startswith("s3fd-619a316812.pth: refusing to load: the file needs code execution"), message
    assert "system" in message and "\n" not in message
    assert not marker.exists()


def test_wrong_or_broken_files_are_clear_errors(tmp_path):
    wrong = tmp_path / "other.pth"
    torch.save({"conv1_1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(CheckpointError, match=r"^other.pth is not usable S3FD weights \(.*\); download https://"):
        load_face_detector("sfd", weights_path=wrong, device="cpu")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a pickle at all" * 20)
    with pytest.raises(CheckpointError, match=r"^garbage.pth is not usable S3FD weights"):
        load_face_detector("sfd", weights_path=garbage, device="cpu")
    empty = tmp_path / "empty.safetensors"
    save_file({}, str(empty))
    with pytest.raises(CheckpointError, match="holds no tensor state dict"):
        read_sfd_state_dict(empty)


def test_wrapped_state_dict_and_dataparallel_names_are_accepted(tmp_path):
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in _weights().items()}}, path)
    state = read_sfd_state_dict(path)
    assert set(state) == set(_weights()) and torch.equal(state["fc7.bias"], _weights()["fc7.bias"])
