"""Weights folder and downloads, against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import pickle
import threading
from collections import OrderedDict
from pathlib import Path

import pytest
from kit import CodePayload, load_node_module

import fom_pipeline as fp
from fom_pipeline import weights
from fom_pipeline.errors import WeightsMissingError

PAYLOAD = bytes(range(256)) * 2048  # 512 KiB, several read chunks
PADDLE = "https://paddlegan.bj.bcebos.com/applications/first_order_model/"


class Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}  # more paths the tests serve: "/name" -> body

    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path in self.files:
            body = self.files[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/good.bin":
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
    with pytest.raises(WeightsMissingError) as info:
        weights.ensure_weights("vox-cpk-512", allow_download=False)
    assert str(info.value).endswith(f"download {PADDLE}vox-cpk-512.pdparams and save it as "
                                    f"{tmp_path / 'fom' / 'vox-cpk-512.pdparams'}")


@pytest.mark.parametrize("key", sorted(weights.KNOWN_WEIGHTS))
def test_each_known_release_downloads_where_the_nodes_and_the_finder_look(key, release_at, tmp_path):
    """Fetched from its URL, every known file lands in the model folder ComfyUI lists for its kind, with
    an extension that folder accepts, and is found again by its key and by every spelling it has."""
    info = weights.KNOWN_WEIGHTS[key]
    assert info.url.startswith("https://") and info.url.rsplit("/", 1)[1] == info.filename
    folders = load_node_module("common").FOLDER_EXTENSIONS
    release_at(key, PAYLOAD)
    root = tmp_path / "models"
    path = weights.ensure_weights(key, root, allow_download=True, progress=False, check=False)
    assert path == root / info.subdir / info.filename and path.read_bytes() == PAYLOAD
    assert info.subdir in folders and path.suffix in folders[info.subdir]
    for name in (key, info.filename, *info.aliases):
        assert weights.find_weights(name, [root]) == path, name


@pytest.mark.parametrize("on_disk", ["vox-mobile.pdparams", "vox_mobile.pdparams"])
def test_either_mobile_spelling_is_found_on_disk(tmp_path, on_disk):
    (tmp_path / "fom").mkdir()
    (tmp_path / "fom" / on_disk).write_bytes(b"x")
    for name in ("vox-mobile", "vox-mobile.pdparams", "vox_mobile.pdparams"):
        assert weights.find_weights(name, [tmp_path]) == tmp_path / "fom" / on_disk
        assert weights.ensure_weights(name, tmp_path, allow_download=False) == tmp_path / "fom" / on_disk
    assert weights.release_key("vox_mobile.pdparams") == "vox-mobile"
    assert weights.release_key("vox-cpk.pth.tar") is None


def test_offline_mobile_error_names_the_seed_url_and_exact_path(tmp_path):
    with pytest.raises(WeightsMissingError) as info:
        weights.ensure_weights("vox-mobile", tmp_path, allow_download=False)
    message = str(info.value)
    assert message == ("vox-mobile.pdparams is missing (downloads are turned off, FOM_ALLOW_DOWNLOAD=0): download "
                       f"{PADDLE}vox-mobile.pdparams and save it as {tmp_path / 'fom' / 'vox-mobile.pdparams'}")
    assert "\n" not in message
    assert not (tmp_path / "fom").exists()


@pytest.fixture
def release_at(server, monkeypatch):
    """Point a KNOWN_WEIGHTS entry at the local server, serving ``body``."""

    def point(key: str, body: bytes) -> str:
        info = weights.KNOWN_WEIGHTS[key]
        path = f"/{key}/{info.filename}"
        Handler.files[path] = body
        monkeypatch.setitem(weights.KNOWN_WEIGHTS, key, weights.KnownWeights(
            info.filename, server + path, info.subdir, aliases=info.aliases))
        return server + path

    yield point
    Handler.files.clear()


def _tiny_pdparams(tmp_path) -> bytes:
    from fom_pipeline.testing import random_model, write_model_pdparams

    path = tmp_path / "made.pdparams"
    write_model_pdparams(path, random_model(seed=3))
    return path.read_bytes()


def test_release_download_is_checked_then_moved_into_place(release_at, tmp_path):
    url = release_at("vox-mobile", _tiny_pdparams(tmp_path))
    seen = []
    root = tmp_path / "models"
    path = weights.ensure_weights("vox-mobile", root, allow_download=True, progress=False,
                                  callback=lambda done, total: seen.append((done, total)))
    assert path == root / "fom" / "vox-mobile.pdparams" and leftovers(root / "fom") == ["vox-mobile.pdparams"]
    assert seen and seen[-1][0] == seen[-1][1] == path.stat().st_size
    model = fp.load_model(path)
    assert model.origin == "paddlegan" and model.image_size == 256
    # found now: no second download (the server would serve garbage)
    release_at("vox-mobile", b"garbage")
    assert weights.ensure_weights("vox-mobile", root, allow_download=True, progress=False) == path
    assert url.endswith("/vox-mobile/vox-mobile.pdparams")


@pytest.mark.parametrize("body", [b"<html>404 page of a proxy</html>" * 100, b"PK\x03\x04 not a zip" * 50])
def test_download_that_is_not_a_checkpoint_leaves_nothing(release_at, tmp_path, body):
    url = release_at("vox-cpk", body)
    root = tmp_path / "models"
    with pytest.raises(WeightsMissingError) as info:
        weights.ensure_weights("vox-cpk", root, allow_download=True, progress=False)
    message = str(info.value)
    assert message.startswith("vox-cpk.pdparams is missing (the downloaded file is not usable: vox-cpk.pdparams")
    assert f"download {url} and save it as {root / 'fom' / 'vox-cpk.pdparams'}" in message
    assert ".part" not in message and "\n" not in message
    assert leftovers(root / "fom") == []
    # check=False skips the check (what a plain file download does)
    assert weights.ensure_weights("vox-cpk", root, allow_download=True, progress=False, check=False).read_bytes() == body


def test_download_carrying_a_pickle_payload_is_refused_unrun(release_at, tmp_path):
    marker = tmp_path / "pwned"
    body = pickle.dumps({"generator": OrderedDict(a=CodePayload(marker)), "kp_detector": {}}, protocol=4)
    release_at("vox-cpk-512", body)
    root = tmp_path / "models"
    with pytest.raises(WeightsMissingError, match=r"not usable: .*refusing to load"):
        weights.ensure_weights("vox-cpk-512", root, allow_download=True, progress=False)
    assert not marker.exists() and leftovers(root / "fom") == []


def test_s3fd_download_is_checked_as_detector_weights(release_at, tmp_path):
    release_at("s3fd", _tiny_pdparams(tmp_path))  # a real file, but not S3FD weights
    root = tmp_path / "models"
    with pytest.raises(WeightsMissingError, match=r"s3fd-619a316812.pth is missing \(the downloaded file is not usable"):
        weights.ensure_weights("s3fd", root, allow_download=True, progress=False)
    assert leftovers(root / "face_detection") == []


def test_a_mirror_replaces_the_official_host(server, tmp_path, monkeypatch):
    Handler.files["/mirror/vox-cpk.pdparams"] = _tiny_pdparams(tmp_path)
    try:
        info = weights.KNOWN_WEIGHTS["vox-cpk"]
        assert weights.source_url(info) == info.url  # no mirror: the official URL
        monkeypatch.setenv("FOM_WEIGHTS_MIRROR", server + "/mirror/")
        assert weights.source_url(info) == server + "/mirror/vox-cpk.pdparams"
        root = tmp_path / "models"
        path = weights.ensure_weights("vox-cpk", root, allow_download=True, progress=False)
        assert path == root / "fom" / "vox-cpk.pdparams" and fp.load_model(path).origin == "paddlegan"
        monkeypatch.setenv("FOM_ALLOW_DOWNLOAD", "0")  # offline, the message names the mirror's URL
        with pytest.raises(WeightsMissingError, match=r"download http://127\.0\.0\.1:\d+/mirror/vox-cpk-512"):
            weights.ensure_weights("vox-cpk-512", root, progress=False)
    finally:
        Handler.files.clear()
