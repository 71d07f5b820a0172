"""Weights folder and downloads, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from fom_pipeline import weights
from fom_pipeline.errors import WeightsMissingError

PAYLOAD = bytes(range(256)) * 2048  # 512 KiB, several read chunks


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/good.bin":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/cut.bin":  # promises the whole file, sends a third, hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_success_with_checks(server, tmp_path):
    dest = tmp_path / "models" / "fom" / "good.bin"
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    seen = []
    out = weights.download(
        f"{server}/good.bin",
        dest,
        sha256=sha,
        size=len(PAYLOAD),
        progress=True,
        allow_download=True,
        callback=lambda done, total: seen.append((done, total)),
    )
    assert out == dest and dest.read_bytes() == PAYLOAD
    assert leftovers(dest.parent) == ["good.bin"]
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and len(seen) > 1
    # a sha256 prefix (torch-hub style) is accepted too
    weights.download(
        f"{server}/good.bin", tmp_path / "p.bin", sha256=sha[:10], progress=False, allow_download=True
    )


def test_interrupted_download_leaves_nothing(server, tmp_path):
    dest = tmp_path / "cut.bin"
    with pytest.raises(WeightsMissingError, match="cut.bin is missing .*try again") as info:
        weights.download(f"{server}/cut.bin", dest, progress=False, allow_download=True)
    assert f"{server}/cut.bin" in str(info.value)
    assert leftovers(tmp_path) == []

    def interrupt(done, total):  # the user presses Ctrl+C half way through
        if done > len(PAYLOAD) // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        weights.download(f"{server}/good.bin", dest, progress=False, allow_download=True, callback=interrupt)
    assert leftovers(tmp_path) == []


def test_size_and_checksum_mismatch_rejected(server, tmp_path):
    dest = tmp_path / "good.bin"
    dest_existing = tmp_path / "keep.bin"
    with pytest.raises(WeightsMissingError, match="expected 123"):
        weights.download(f"{server}/good.bin", dest, size=123, progress=False, allow_download=True)
    with pytest.raises(WeightsMissingError, match="sha256 .* does not match"):
        weights.download(f"{server}/good.bin", dest, sha256="0" * 64, progress=False, allow_download=True)
    assert leftovers(tmp_path) == []
    # a failed re-download never clobbers a file already in place
    dest_existing.write_bytes(b"old")
    with pytest.raises(WeightsMissingError):
        weights.download(f"{server}/good.bin", dest_existing, size=1, progress=False, allow_download=True)
    assert dest_existing.read_bytes() == b"old" and leftovers(tmp_path) == ["keep.bin"]


def test_offline_and_forbidden_give_clear_errors(server, tmp_path, monkeypatch):
    dest = tmp_path / "face_detection" / "s3fd-619a316812.pth"
    monkeypatch.setenv("FOM_ALLOW_DOWNLOAD", "0")
    with pytest.raises(WeightsMissingError) as info:
        weights.download(f"{server}/good.bin", dest)
    message = str(info.value)
    assert "s3fd-619a316812.pth" in message and f"{server}/good.bin" in message
    assert str(tmp_path / "face_detection") in message and "FOM_ALLOW_DOWNLOAD=0" in message
    monkeypatch.delenv("FOM_ALLOW_DOWNLOAD")
    with pytest.raises(WeightsMissingError, match="download failed"):
        weights.download(f"{server}/missing.bin", dest, progress=False)
    with pytest.raises(WeightsMissingError, match="download failed"):  # nothing listens on port 9
        weights.download("http://127.0.0.1:9/x.bin", dest, progress=False, timeout=5)
    assert not dest.exists() and leftovers(dest.parent) == []
    assert weights.downloads_allowed(False) is False


def test_models_dir_and_find_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("FOM_MODELS_DIR", raising=False)
    assert weights.models_dir() == weights.PACK_ROOT / "models"
    monkeypatch.setenv("FOM_MODELS_DIR", str(tmp_path))
    assert weights.models_dir() == tmp_path
    assert weights.find_weights("vox-cpk") is None
    (tmp_path / "fom").mkdir()
    (tmp_path / "fom" / "vox-cpk.pdparams").write_bytes(b"x")
    assert weights.find_weights("vox-cpk") == tmp_path / "fom" / "vox-cpk.pdparams"
    assert weights.find_weights("vox-cpk.pdparams", [tmp_path]) == tmp_path / "fom" / "vox-cpk.pdparams"
    assert weights.ensure_weights("vox-cpk", allow_download=False) == tmp_path / "fom" / "vox-cpk.pdparams"
    with pytest.raises(WeightsMissingError, match=r"vox-cpk-512.pdparams .* put it in .*fom"):
        weights.ensure_weights("vox-cpk-512", allow_download=False)


def test_known_urls():
    known = weights.KNOWN_WEIGHTS
    assert known["s3fd"].url == "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth"
    base = "https://paddlegan.bj.bcebos.com/applications/first_order_model/"
    assert known["vox-cpk"].url == base + "vox-cpk.pdparams"
    assert known["vox-cpk-512"].url == base + "vox-cpk-512.pdparams"
    assert known["vox-mobile"].url.startswith(base) and known["vox-mobile"].subdir == "fom"
    assert known["s3fd"].subdir == "face_detection"
