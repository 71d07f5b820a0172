"""The command line: PaddleGAN's ``first-order-demo.py`` made solid, plus ``convert``.

``python -m fom_pipeline --source_image IMG --driving_video VID [...]`` animates the faces of a photo;
``python -m fom_pipeline convert IN OUT.safetensors`` converts a checkpoint. A front end only: it parses
the flags (args), builds the job with each check made once (job), calls the engine and reports (run,
main); everything it computes is done by the same engine functions the ComfyUI nodes call.
"""

from .args import build_convert_parser, build_parser, parse_args
from .main import main

__all__ = ["build_convert_parser", "build_parser", "main", "parse_args"]
