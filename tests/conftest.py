import os
import tempfile
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("IMGEN_THREADS", "2")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# exported ONNX graphs of test models go to a throw-away folder, never the user's cache
os.environ.setdefault("IMGEN_CACHE", tempfile.mkdtemp(prefix="imgen-test-cache-"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared/data is not beside the repository")
    return SHARED
