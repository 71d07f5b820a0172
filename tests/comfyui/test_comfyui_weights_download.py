"""A release picked in FOMLoadModel that is not on disk downloads by itself inside the real host:
from a mirror on 127.0.0.1 (FOM_WEIGHTS_MIRROR, the same setting users behind a firewall use), into
ComfyUI/models/fom/, once, checked before it is moved into place; a download that is not a
checkpoint fails in one line and leaves nothing behind."""

from __future__ import annotations

import http.server
import threading

import pytest
from comfy_host import ARTIFACTS, ComfyServer, execution_error, free_port
from workflow_files import model_prompt

from fom_pipeline.testing import random_model, write_model_pdparams


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A plain HTTP server over a folder: a real (generated) 512 release and an HTML page posing as the
    mobile release; ``mirror.requests`` lists the paths asked for."""
    root = tmp_path_factory.mktemp("mirror")
    write_model_pdparams(root / "vox-cpk-512.pdparams", random_model(seed=4))
    (root / "vox-mobile.pdparams").write_text("<html><body>Access denied</body></html>")
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):  # noqa: N802 (http.server's name)
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    httpd.requests = requests
    httpd.root = root
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def online_server(tmp_path_factory, mirror, comfy_host):
    base = tmp_path_factory.mktemp("comfy_download")
    server = ComfyServer(base_dir=base, port=free_port(), host=comfy_host,
                         log_path=ARTIFACTS / f"comfyui-server-download-{comfy_host.name}.log")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FOM_ALLOW_DOWNLOAD", "1")
        mp.setenv("FOM_WEIGHTS_MIRROR", mirror.url + "/")
        server.start()
    import cv2
    import numpy as np

    image = (np.random.default_rng(1).random((256, 256, 3)) * 255).astype("uint8")
    cv2.imwrite(str(base / "input" / "face.png"), image)
    yield server
    server.stop()


def _prompt(ckpt_name: str, batch_size: int = 8) -> dict:
    return model_prompt("face.png", ckpt_name, batch_size=batch_size)


@pytest.mark.timeout(300)
def test_a_missing_release_downloads_once_into_models_fom(online_server, mirror):
    dest = online_server.base_dir / "models" / "fom" / "vox-cpk-512.pdparams"
    assert not dest.exists()
    entry = online_server.run(_prompt("vox-cpk-512.pdparams"), timeout=240)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    assert dest.is_file() and dest.read_bytes() == (mirror.root / "vox-cpk-512.pdparams").read_bytes()
    assert mirror.requests == ["/vox-cpk-512.pdparams"]
    log = online_server.log_text()
    assert f"FOM: downloading vox-cpk-512.pdparams from {mirror.url}/vox-cpk-512.pdparams" in log
    assert "FOM: loading vox-cpk-512.pdparams" in log
    assert not [p.name for p in dest.parent.iterdir() if ".part" in p.name]  # hidden partials too

    # Another run (a changed downstream input) finds the file: no second download.
    again = online_server.run(_prompt("vox-cpk-512.pdparams", batch_size=4), timeout=240)
    assert again["status"]["status_str"] == "success", execution_error(again)
    assert mirror.requests == ["/vox-cpk-512.pdparams"]


@pytest.mark.timeout(300)
def test_a_download_that_is_not_a_checkpoint_fails_in_one_line_and_leaves_nothing(online_server, mirror):
    entry = online_server.run(_prompt("vox-mobile.pdparams"), timeout=240)
    assert entry["status"]["status_str"] == "error"
    err = execution_error(entry)
    assert err["node_type"] == "FOMLoadModel"
    message = err["exception_message"].strip()
    assert "\n" not in message and "vox-mobile.pdparams" in message, message
    fom = online_server.base_dir / "models" / "fom"
    assert not [p.name for p in fom.iterdir() if p.name.lstrip(".").startswith("vox-mobile")], list(fom.iterdir())
