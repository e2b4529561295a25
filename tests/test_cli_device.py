"""The command line's registry commands (against the fake Hub) and device selection."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from hub_server import FakeHub
from imgen.device import configure_threads, pick_device
from imgen.models import build_model
from imgen.store import export_safetensors

REPO = "imgen-project/cli-test"
REV = hashlib.sha1(b"cli pinned").hexdigest()


def run_cli(*args, env=None, timeout=120):
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "imgen", *args], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("models", "download", "denoise", "eval", "bench"):
        assert cmd in r.stdout


@pytest.mark.slow
def test_models_lists_bundled_checkpoint():
    r = run_cli("models", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["denoise-unet"]["source"] == "bundled"
    assert rows["denoise-unet"]["path"].endswith("weights/denoise-unet.safetensors")


@pytest.fixture
def hub_env(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "tiny.safetensors"
    sha = export_safetensors(build_model("denoise_unet", {"widths": [4, 8], "blocks": 1}), "denoise_unet", path)
    reg = {"hub": {"repo_id": REPO, "repo_type": "model"},
           "models": {"tiny": {"task": "denoise", "arch": "denoise_unet", "config": {"widths": [4, 8], "blocks": 1},
                               "file": "tiny.safetensors", "repo_id": REPO, "revision": REV, "sha256": sha,
                               "licence": "MIT", "data": "synthetic", "card": None}}}
    (tmp_path / "registry.json").write_text(json.dumps(reg))
    (tmp_path / "weights").mkdir()
    with FakeHub() as hub:
        hub.add_file(REPO, REV, "tiny.safetensors", path.read_bytes())
        env = {"IMGEN_REGISTRY": str(tmp_path / "registry.json"), "IMGEN_WEIGHTS_DIR": str(tmp_path / "weights"),
               "HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "0"}
        yield hub, env


@pytest.mark.slow
def test_download_prefetches_then_models_reports_cache(hub_env):
    hub, env = hub_env
    r = run_cli("download", env=env)
    assert r.returncode == 0, r.stderr
    assert "tiny:" in r.stdout and "tiny.safetensors" in r.stdout
    assert any(REV in q.path for q in hub.requests)        # the pinned revision was asked for
    r = run_cli("models", "--json", env=env)
    assert json.loads(r.stdout)[0]["source"] == "hub cache"


@pytest.mark.slow
def test_download_offline_gives_one_clear_message(hub_env):
    hub, env = hub_env
    r = run_cli("download", "tiny", env={**env, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 1
    assert "tiny.safetensors" in r.stderr and REPO in r.stderr
    assert "Traceback" not in r.stderr
    assert not hub.requests


def test_pick_device(monkeypatch):
    monkeypatch.delenv("IMGEN_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device().type == expected
    assert pick_device("cpu").type == "cpu"
    monkeypatch.setenv("IMGEN_DEVICE", "cpu")
    assert pick_device().type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            pick_device("cuda")


def test_configure_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("IMGEN_THREADS", "1")
        assert configure_threads() == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_onnx_runner_exports_falls_back_with_a_warning_and_names_the_backend():
    import numpy as np
    from imgen.runtime import OnnxModule, backend_name, onnx_runner
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1).eval()
    runner = onnx_runner(conv, (torch.zeros(1, 3, 8, 8),), ["x"], "test conv", cpu, backend="onnx")
    assert isinstance(runner, OnnxModule) and backend_name(runner, cpu) == "onnxruntime"
    # its threads do not spin after a run (they would starve the PyTorch / NumPy work that follows on 2 cores)
    options = runner.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    x = torch.rand(1, 3, 20, 12)                                 # dynamic height and width
    with torch.inference_mode():
        assert np.allclose(runner(x.numpy()), conv(x).numpy(), atol=1e-5)
    assert onnx_runner(conv, (torch.zeros(1, 3, 8, 8),), ["x"], "test conv", cpu, backend="torch") is None

    class NotExportable(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("no trace for you")

    with pytest.warns(UserWarning, match="ONNX Runtime unavailable for the broken net .*no trace for you"):
        assert onnx_runner(NotExportable(), (torch.zeros(1, 3, 8, 8),), ["x"], "broken net", cpu, "onnx") is None
    assert backend_name(None, cpu) == "torch (cpu)"


@pytest.mark.slow
def test_help_lists_training_commands():
    r = run_cli("--help")
    assert all(cmd in r.stdout for cmd in ("train", "export", "data"))
    r = run_cli("train", "gan", "--help")
    assert r.returncode == 0 and "--minutes" in r.stdout and "python -m imgen train gan" in r.stdout


def test_reports_record_the_command_as_typed_global_options_included(tmp_path):
    from imgen.cli import build_parser, command_line
    argv = ["--device", "cpu", "eval", "gan", "--n", "10", "--set", "emoji"]
    args = build_parser().parse_args(argv)
    args.argv = argv
    assert command_line(args) == "python -m imgen --device cpu eval gan --n 10 --set emoji"
    args.argv = ["eval", "stylize", "--data", "my photos"]
    assert command_line(args) == "python -m imgen eval stylize --data 'my photos'"


@pytest.mark.slow
def test_eval_denoise_unknown_model_is_one_line(shared_data):
    r = run_cli("eval", "denoise", "--data", str(shared_data / "eval/denoise/Set12"), "--model", "bogus",
                "--limit", "1")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("eval denoise:") and "no model called 'bogus'" in r.stderr


def test_onnx_export_leaves_the_shared_module_as_it_was():
    from imgen.runtime import onnx_runner
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(3, 3, 3, padding=1).double().train()     # e.g. a cached module someone else holds
    before = {k: v.clone() for k, v in conv.state_dict().items()}
    assert onnx_runner(conv, (torch.zeros(1, 3, 8, 8),), ["x"], "fp64 conv", torch.device("cpu"), "onnx") is not None
    assert conv.training and conv.weight.dtype == torch.float64
    assert all(torch.equal(v, before[k]) for k, v in conv.state_dict().items())


def test_eval_and_bench_have_one_parser_per_task_with_the_tasks_defaults():
    from imgen.cli import build_parser
    from imgen.tasks import inpaint, stylize
    p = build_parser()
    assert p.parse_args(["eval", "inpaint", "--data", "d"]).max_side == inpaint.MAX_SIDE
    assert p.parse_args(["eval", "stylize", "--data", "d"]).max_side == stylize.DEFAULT_MAX_SIDE
    assert p.parse_args(["bench", "stylize"]).max_side == stylize.DEFAULT_MAX_SIDE
    for argv in (["eval", "denoise"], ["eval", "denoise", "--data", "d", "--masks", "objects"],
                 ["bench", "denoise"], ["bench", "inpaint", "--sigma", "25"]):
        with pytest.raises(SystemExit):              # --data required; another task's option refused
            p.parse_args(argv)
