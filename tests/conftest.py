import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
os.environ.setdefault("IMGEN_THREADS", "2")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# exported ONNX graphs of test models go to a throw-away folder, never the user's cache
os.environ.setdefault("IMGEN_CACHE", tempfile.mkdtemp(prefix="imgen-test-cache-"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared/data is not beside the repository")
    return SHARED


@pytest.fixture
def one_process(monkeypatch):
    """Run a trainer's main() in this process: no DDP environment, one thread (restored afterwards)."""
    import torch
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("IMGEN_THREADS", "1")
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def app_server():
    """The whole app (app.py's Blocks) served on 127.0.0.1, one for the session (building it takes seconds):
    (demo, url)."""
    import app
    demo = app.build_demo()
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", server_port=None)
    yield demo, url
    demo.close()


@pytest.fixture(scope="module")
def app_url(app_server) -> str:
    return app_server[1]
