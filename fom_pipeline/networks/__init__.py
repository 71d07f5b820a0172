"""The three FOMM networks, one per file as in the original release (plus PaddleGAN's mobile blocks)."""

from .dense_motion import DenseMotionNetwork
from .generator import OcclusionAwareGenerator
from .keypoint_detector import KPDetector

__all__ = ["DenseMotionNetwork", "KPDetector", "OcclusionAwareGenerator"]
