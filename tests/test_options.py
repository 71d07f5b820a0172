"""Options as checked values (fom_pipeline.options) and the tensor/array conversion (fom_pipeline.arrays):
one check per option, the same words from the engine and the command line, checks made before any
network runs, and the options reaching the model unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fom_pipeline import cli
from fom_pipeline import pipeline as P
from fom_pipeline.arrays import as_numpy, as_tensor
from fom_pipeline.errors import InputError
from fom_pipeline.faces import make_faces, paste_faces
from fom_pipeline.keypoints import Keypoints
from fom_pipeline.options import RATIO_RANGE, AnimationOptions, PasteOptions


@pytest.mark.parametrize(("fields", "message"), [
    ({"ratio": 1.5}, "ratio 1.5 is out of range; use 0.1 to 1.0 (PaddleGAN's demo uses 0.4)"),
    ({"ratio": 0.05}, "ratio 0.05 is out of range; use 0.1 to 1.0"),
    ({"feather": -2.0}, "feather -2.0 must be 0 (hard edge) or more pixels"),
    ({"feather": float("nan")}, "feather nan must be 0"),
    ({"color_match": "hsv"}, "color_match 'hsv' is unknown; use False, True, 'lab' or 'rgb'"),
    ({"shape": "oval"}, "shape 'oval' is unknown; choose 'circle' or 'rect'"),
    ({"order": "random"}, "order 'random' is unknown; choose one of given, smallest_on_top"),
])
def test_paste_options_refuse_bad_values_in_one_line(fields, message):
    with pytest.raises(InputError) as err:
        PasteOptions(**fields)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_paste_options_accept_the_range_ends_and_name_the_colour_space():
    assert PasteOptions(ratio=RATIO_RANGE[0]).ratio == RATIO_RANGE[0]
    assert PasteOptions(ratio=RATIO_RANGE[1], feather=0).feather == 0
    assert [PasteOptions(color_match=c).color_space for c in (False, True, "lab", "rgb", "none")] == \
        [None, "lab", "lab", "rgb", None]
    with pytest.raises(AttributeError):  # frozen: checked once, never changed after
        PasteOptions().ratio = 2.0  # type: ignore[misc]


def test_the_ratio_range_is_worded_alike_by_engine_and_command_line(capsys):
    faces = make_faces((64, 64), [(16, 16, 48, 48)], size=32)
    with pytest.raises(InputError) as engine:
        paste_faces(np.zeros((64, 64, 3), np.float32), faces, np.zeros((1, 1, 32, 32, 3), np.float32), ratio=1.5)
    with pytest.raises(SystemExit) as exit_:
        cli.parse_args(["--source_image", "a.png", "--driving_video", "b.mp4", "--ratio", "1.5"])
    assert exit_.value.code == 2
    assert f"error: argument --ratio: {engine.value}" in capsys.readouterr().err


@pytest.mark.parametrize(("reference", "expected"), [(0, 0), ("first", 0), (np.int64(3), 3), ("best", "best")])
def test_animation_options_take_an_index_first_or_best(reference, expected):
    assert AnimationOptions(reference_frame=reference).reference_frame == expected


@pytest.mark.parametrize("reference", [-1, "middle", True, 2.5])
def test_animation_options_refuse_other_reference_frames(reference):
    with pytest.raises(InputError, match="reference frame .* is unknown; use a driving frame index"):
        AnimationOptions(reference_frame=reference)


class RecordingModel:
    """Stands in for FOMModel: records the options animate_batches receives and yields flat grey crops."""

    image_size = 32

    def __init__(self):
        self.calls: list[dict] = []

    def animate_batches(self, source, keypoints, batch_size=8, **options):
        self.calls.append(options)
        for start in range(0, len(keypoints), batch_size):
            yield torch.full((min(batch_size, len(keypoints) - start), 32, 32, 3), 0.5)


def _driving(frames: int) -> P.DrivingKeypoints:
    return P.DrivingKeypoints(Keypoints(torch.zeros(frames, 10, 2)), fps=25.0)


def test_face_animation_hands_its_options_to_the_model():
    model = RecordingModel()
    options = AnimationOptions(relative=False, adapt_scale=False, relative_jacobian=True, reference_frame=2)
    animation = P.FaceAnimation(model, np.zeros((1, 32, 32, 3), np.float32), _driving(4), options, batch_size=3)
    assert animation.frames().shape == (1, 4, 32, 32, 3)
    assert model.calls == [options.as_kwargs()]
    by_fields = P.FaceAnimation(model, np.zeros((32, 32, 3), np.float32), _driving(4), relative=False,
                                adapt_scale=False, relative_jacobian=True, reference_frame=2)
    assert by_fields.options == options
    with pytest.raises(TypeError, match="either options or its fields"):
        P.FaceAnimation(model, np.zeros((1, 32, 32, 3), np.float32), _driving(4), options, relative=True)
    with pytest.raises(InputError, match=r"reference frame 4 is outside the driving video \(frames 0..3\)"):
        P.FaceAnimation(model, np.zeros((1, 32, 32, 3), np.float32), _driving(4), reference_frame=4)


class UntouchableAnimation:
    """An animation that fails the test if anything asks it for frames."""

    faces, frame_count, fps, audio, batch_size, size = 1, 4, 25.0, None, 2, 32

    def batches(self, faces=None):
        raise AssertionError("the paste ran the animation before checking its inputs")


def test_pasted_frames_check_options_and_photo_before_any_frame_is_made():
    faces = make_faces((64, 64), [(16, 16, 48, 48)], size=32)
    photo = np.zeros((64, 64, 3), np.float32)
    with pytest.raises(InputError, match="feather -1.0 must be 0"):
        P.PastedFrames(photo, faces, UntouchableAnimation(), feather=-1.0)
    with pytest.raises(InputError, match="only 16x16 px"):
        P.PastedFrames(np.zeros((16, 16, 3), np.float32), make_faces((16, 16), [(2, 2, 14, 14)], size=32),
                       UntouchableAnimation())
    pasted = P.PastedFrames(photo, faces, UntouchableAnimation(), PasteOptions(ratio=0.5, shape="rect"))
    assert pasted.options == PasteOptions(ratio=0.5, shape="rect")
    with pytest.raises(TypeError, match="either options or its fields"):
        P.PastedFrames(photo, faces, UntouchableAnimation(), PasteOptions(), ratio=0.5)


def test_as_numpy_and_as_tensor():
    grad = torch.ones(2, 3, requires_grad=True) * 2
    assert as_numpy(grad).tolist() == [[2.0] * 3] * 2
    half = as_numpy(torch.full((2, 2), 0.25, dtype=torch.bfloat16))  # numpy has no bf16
    assert half.dtype == np.float32 and float(half[0, 0]) == 0.25
    array = np.arange(6, dtype=np.float32)
    assert as_numpy(array, np.float32) is array  # no copy when the type is already right
    assert as_numpy([1, 2], np.float64).dtype == np.float64
    shared = as_tensor(array)
    shared[0] = 7
    assert array[0] == 7  # shares the array's memory
    strided = as_tensor(np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::-1])  # negative strides are copied
    assert strided[0].tolist() == [3.0, 2.0, 1.0, 0.0]
