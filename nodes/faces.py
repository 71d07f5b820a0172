"""Face nodes: detect faces or take boxes by hand, pick groups of faces, crop the driving video."""

from __future__ import annotations

import numpy as np
import torch
from comfy_api.v0_0_2 import io

from fom_pipeline.faces.select import SCORE_THRESHOLD

from .common import (
    CATEGORY,
    FOMNodeError,
    check_interrupt,
    engine_errors,
    progress_callback,
    to_image,
    to_numpy,
)
from .draw import draw_faces
from .types import FaceSet, FOMFaceDetectorType, FOMFacesType
from .video import StreamedVideo, frame_source

ORDERS = ["left_to_right", "largest", "top_to_bottom"]
CROP_MODES = ["square", "paddlegan"]
PREVIEW_CROP_SIZE = 256  # crops shown when their size follows the model
MAX_AUTO_DRIVING_SIZE = 1024


def _crop_inputs() -> list:
    return [
        io.Combo.Input("crop_mode", options=CROP_MODES, default="square",
                       tooltip="square: a square window crop_scale x the face box, centred (FOMM style). "
                               "paddlegan: the window PaddleGAN's demo crops."),
        io.Float.Input("crop_scale", default=2.0, min=1.0, max=4.0, step=0.05,
                       tooltip="Square window side as a multiple of the face box (square mode only)."),
        io.Int.Input("size", default=0, min=0, max=1024, step=64,
                     tooltip="Crop side in pixels. 0 = the model's own size: FOM Transfer Motion cuts the faces "
                             "again at its model's size (the crops shown here are 256 px)."),
    ]


def _faces_outputs() -> list:
    return [
        FOMFacesType.Output(display_name="faces", tooltip="The faces (boxes and crop windows)."),
        io.Image.Output(display_name="crops", tooltip="The face crops, one image per face, in face order."),
        io.Image.Output(display_name="preview", tooltip="The picture with each face's box and number."),
    ]


def _source_input() -> io.MultiType.Input:
    return io.MultiType.Input(io.Image.Input("image", tooltip="The picture whose faces will be animated; or a "
                                             "VIDEO (Load Video): the faces are found in its first frame and "
                                             "followed through it, each keeping its number."),
                              types=[io.Image, io.Video])


def _first_image(image, node: str) -> tuple[np.ndarray, object]:
    """The picture the faces are found in, and the source video's stream when ``image`` is a VIDEO."""
    if isinstance(image, torch.Tensor):
        arr = to_numpy(image)
        return (arr[0] if arr.ndim == 4 else arr), None
    from fom_pipeline.streams import as_float
    from fom_pipeline.video_source import first_frame

    video = frame_source(image, node)
    with engine_errors(node):
        return as_float(first_frame(video)), video


def _face_set(node: str, image: np.ndarray, boxes, scores, crop_mode, crop_scale, size, video=None,
              detector=None, threshold: float = 0.5) -> io.NodeOutput:
    from fom_pipeline.faces import crop_faces, make_faces

    tracks = None
    with engine_errors(node):
        records = make_faces(image.shape[:2], boxes, scores, crop_mode=crop_mode, crop_scale=crop_scale,
                             size=size or PREVIEW_CROP_SIZE)
        crops = to_image(crop_faces(image, records))
        if video is not None:
            from fom_pipeline.faces.track import track_faces

            tracks = track_faces(video, boxes, detector=detector, threshold=threshold, crop_mode=crop_mode, crop_scale=crop_scale,
                                 size=size or PREVIEW_CROP_SIZE, scores=scores,
                                 progress=progress_callback(max(1, video.frame_count)))
    preview = to_image(draw_faces(image, records)[None])
    return io.NodeOutput(FaceSet(records, crops, image, not size, video, tracks), crops, preview)


class FOMDetectFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMDetectFaces",
            display_name="FOM Detect Faces",
            category=CATEGORY,
            description="Find the faces in a picture (the first image of the batch) and crop each one the way "
                        "the model expects. The preview numbers the faces for FOM Select Faces.",
            inputs=[
                FOMFaceDetectorType.Input("detector", tooltip="From FOM Load Face Detector."),
                _source_input(),
                io.Float.Input("threshold", default=SCORE_THRESHOLD, min=0.0, max=1.0, step=0.01,
                               tooltip="Minimum detector score for a face."),
                io.Int.Input("max_faces", default=0, min=0, max=256,
                             tooltip="Keep only the largest faces, at most this many; 0 keeps all."),
                io.Combo.Input("order", options=ORDERS, default="left_to_right",
                               tooltip="How the kept faces are numbered: left to right, largest first or top to bottom."),
                *_crop_inputs(),
            ],
            outputs=_faces_outputs(),
        )

    @classmethod
    def execute(cls, detector, image, threshold, max_faces, order, crop_mode, crop_scale, size) -> io.NodeOutput:
        from fom_pipeline.faces import detect_faces

        img, video = _first_image(image, "FOMDetectFaces")
        check_interrupt()
        with engine_errors("FOMDetectFaces"):
            found = detect_faces(detector.get(), img, threshold=threshold, max_faces=max_faces, order=order)
        boxes = [box for box, _ in found]
        scores = [score for _, score in found]
        return _face_set("FOMDetectFaces", img, boxes, scores, crop_mode, crop_scale, size, video,
                         detector.get() if video is not None else None, threshold)


class FOMFacesFromBoxes(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMFacesFromBoxes",
            display_name="FOM Faces From Boxes",
            category=CATEGORY,
            description="Faces from boxes typed by hand (no detector, no detector weights needed). Same syntax "
                        "as the command line's --faces. For a VIDEO the boxes are in its first frame; the faces "
                        "are followed from there.",
            inputs=[
                _source_input(),
                io.String.Input("boxes", default="0,0,256,256", multiline=False,
                                tooltip="Face boxes in image pixels: x1,y1,x2,y2;x1,y1,x2,y2;..."),
                *_crop_inputs(),
            ],
            outputs=_faces_outputs(),
        )

    @classmethod
    def execute(cls, image, boxes, crop_mode, crop_scale, size) -> io.NodeOutput:
        from fom_pipeline.faces import parse_boxes

        img, video = _first_image(image, "FOMFacesFromBoxes")
        with engine_errors("FOMFacesFromBoxes"):
            parsed = parse_boxes(boxes)
        return _face_set("FOMFacesFromBoxes", img, parsed, None, crop_mode, crop_scale, size, video)


class FOMSelectFaces(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMSelectFaces",
            display_name="FOM Select Faces",
            category=CATEGORY,
            description="Keep some of the faces, by number (as in the preview), so groups of faces can follow "
                        "different driving videos.",
            inputs=[
                FOMFacesType.Input("faces", tooltip="From FOM Detect Faces or FOM Faces From Boxes."),
                io.String.Input("indices", default="1",
                                tooltip="Face numbers to keep, 1-based as in the preview: e.g. 1,3 or 2-4."),
            ],
            outputs=[
                FOMFacesType.Output(display_name="faces", tooltip="The kept faces, in the order given."),
                io.Image.Output(display_name="crops", tooltip="The kept faces' crops."),
            ],
        )

    @classmethod
    def execute(cls, faces: FaceSet, indices) -> io.NodeOutput:
        from fom_pipeline.faces import parse_face_numbers

        with engine_errors("FOMSelectFaces"):
            keep = parse_face_numbers(indices, len(faces))
        picked = faces.select(keep)
        return io.NodeOutput(picked, picked.crops)


class FOMCropDrivingVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FOMCropDrivingVideo",
            display_name="FOM Crop Driving Video",
            category=CATEGORY,
            description="Cut one fixed square window around the face out of every driving frame, for videos "
                        "that are not face crops already. The window comes from a box typed by hand, or from a "
                        "detector run on sampled frames (the union of the face boxes, enlarged by scale). "
                        "Streams: frames are cut when the keypoints node reads them.",
            inputs=[
                io.MultiType.Input(io.Video.Input("driving", tooltip="The driving video (Load Video), or "
                                                  "frames as an IMAGE batch (holds every frame)."),
                                   types=[io.Video, io.Image]),
                io.Int.Input("size", default=0, min=0, max=1024, step=64,
                             tooltip="Output side in pixels. 0 = the window's own size up to 1024 (the keypoints "
                                     "node resizes to its model's size)."),
                io.Float.Input("scale", default=1.8, min=1.0, max=4.0, step=0.05,
                               tooltip="Window side as a multiple of the face boxes' union (detector mode)."),
                io.String.Input("box", default="",
                                tooltip="Optional window x1,y1,x2,y2 in frame pixels, used as is; leave empty "
                                        "to find the face with the detector."),
                io.Int.Input("detect_every", default=0, min=0, max=1000,
                             tooltip="Run the detector on every n-th frame; 0 = about 5 frames a second "
                                     "(at most 300 frames in all)."),
                FOMFaceDetectorType.Input("detector", optional=True,
                                          tooltip="Face detector used when no box is typed."),
            ],
            outputs=[io.Video.Output(display_name="video",
                                     tooltip="The cropped driving video (computed as it is read; keeps the "
                                             "frame rate and audio).")],
        )

    @classmethod
    def execute(cls, driving, size, scale, box, detect_every, detector=None) -> io.NodeOutput:
        from fom_pipeline.faces import parse_boxes
        from fom_pipeline.pipeline import CroppedFrames, find_driving_window

        source = frame_source(driving, "FOMCropDrivingVideo")
        with engine_errors("FOMCropDrivingVideo"):
            if box.strip():
                parsed = parse_boxes(box)
                if len(parsed) != 1:
                    raise FOMNodeError(f"FOMCropDrivingVideo: give one window box, got {len(parsed)}")
                window = tuple(int(round(v)) for v in parsed[0])
            elif detector is not None:
                window = find_driving_window(detector.get(), source, scale, every=detect_every or None,
                                             progress=progress_callback(max(1, source.frame_count)))
            else:
                raise FOMNodeError("FOMCropDrivingVideo: type a window box x1,y1,x2,y2 or connect a face detector")
            side = size or min(MAX_AUTO_DRIVING_SIZE, window[2] - window[0])
            cropped = CroppedFrames(source, window, side)
        return io.NodeOutput(StreamedVideo(cropped, "FOMCropDrivingVideo"))
