"""The weights files the pack knows by name: where each is downloaded from and which models/ subfolder
it lives in. Plain data, imported by the modules that find, fetch and check weights."""

from __future__ import annotations

from dataclasses import dataclass

FOM_SUBDIR = "fom"
FACE_SUBDIR = "face_detection"


@dataclass(frozen=True)
class KnownWeights:
    """One downloadable weights file: its file name, official URL and models/ subfolder.

    ``aliases`` are other spellings of the same file that are accepted on disk.
    """

    filename: str
    url: str
    subdir: str
    sha256: str | None = None
    size: int | None = None
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.filename, *self.aliases)


# Official sources. S3FD: face-alignment's own URL (face_alignment/detection/sfd/sfd_detector.py).
# FOMM: PaddleGAN's releases as its demo's ppgan/apps/first_order_predictor.py names them (its
# mobile URL is .../vox-mobile.pdparams; later PaddleGAN code spells the file vox_mobile.pdparams, so
# that spelling is accepted on disk too).
_PADDLE = "https://paddlegan.bj.bcebos.com/applications/first_order_model/"
KNOWN_WEIGHTS: dict[str, KnownWeights] = {
    "s3fd": KnownWeights(
        "s3fd-619a316812.pth",
        "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
        FACE_SUBDIR,
    ),
    "vox-cpk": KnownWeights("vox-cpk.pdparams", _PADDLE + "vox-cpk.pdparams", FOM_SUBDIR),
    "vox-cpk-512": KnownWeights("vox-cpk-512.pdparams", _PADDLE + "vox-cpk-512.pdparams", FOM_SUBDIR),
    "vox-mobile": KnownWeights("vox-mobile.pdparams", _PADDLE + "vox-mobile.pdparams", FOM_SUBDIR,
                               aliases=("vox_mobile.pdparams",)),
}
# PaddleGAN's three FOMM releases, in the order front ends offer them.
FOM_RELEASES = ("vox-cpk", "vox-cpk-512", "vox-mobile")


def release_key(name: str) -> str | None:
    """The KNOWN_WEIGHTS key for a key or any accepted file name of it (``vox_mobile.pdparams``), else None."""
    if name in KNOWN_WEIGHTS:
        return name
    for key, info in KNOWN_WEIGHTS.items():
        if name in info.names:
            return key
    return None
