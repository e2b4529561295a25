"""Tests of imgen.store against a fake Hub (tests/hub_server.py) driven by the real huggingface_hub client."""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from huggingface_hub import constants as hf_constants

from hub_server import FakeHub
from imgen import store as store_mod
from imgen.models import build_model
from imgen.store import ModelEntry, Store, StoreError
from imgen.store import export_safetensors

TINY = {"widths": [4, 8], "blocks": 1}
REPO = "imgen-project/imgen-weights-test"
FILE = "denoise-tiny.safetensors"
REV = hashlib.sha1(b"pinned commit").hexdigest()
REV_MAIN = hashlib.sha1(b"newer commit on main").hexdigest()


def _export(tmp: Path, seed: int, name: str) -> SimpleNamespace:
    torch.manual_seed(seed)
    model = build_model("denoise_unet", TINY)
    path = tmp / name
    sha = export_safetensors(model, "denoise_unet", path)
    x = torch.rand(1, 3, 16, 16)
    sigma = torch.tensor([25.0])
    with torch.no_grad():
        y = model(x, sigma)
    return SimpleNamespace(path=path, data=path.read_bytes(), sha=sha, x=x, sigma=sigma, y=y)


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    d = tmp_path_factory.mktemp("artifacts")
    return SimpleNamespace(pinned=_export(d, 0, "pinned.safetensors"), main=_export(d, 1, "main.safetensors"))


@pytest.fixture
def hub(art):
    with FakeHub() as h:
        h.add_file(REPO, REV, FILE, art.pinned.data)
        h.add_file(REPO, REV_MAIN, FILE, art.main.data, ref="main")
        yield h


def _entry(**over) -> dict:
    e = {"task": "denoise", "arch": "denoise_unet", "config": TINY, "file": FILE, "repo_id": REPO,
         "revision": REV, "sha256": None, "licence": "MIT", "data": "synthetic", "card": "denoise-tiny.md"}
    e.update(over)
    return e


@pytest.fixture
def env(tmp_path, monkeypatch, hub, art):
    """Isolated HF cache / weights / registry, HF_ENDPOINT -> fake hub; returns helpers."""
    cache, weights, registry = tmp_path / "hf-cache", tmp_path / "weights", tmp_path / "registry.json"
    weights.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("IMGEN_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("IMGEN_REGISTRY", str(registry))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "IMGEN_DEVICE"):
        monkeypatch.delenv(var, raising=False)
    # huggingface_hub fixes offline mode at import time; make the client usable even if the outer env set it.
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    store_mod.set_default_store(None)

    def write_registry(models: dict | None = None) -> None:
        if models is None:
            models = {"tiny": _entry(sha256=art.pinned.sha)}
        registry.write_text(json.dumps({"hub": {"repo_id": REPO, "repo_type": "model"}, "models": models},
                                       indent=2))

    def bundle(data: bytes | None = None, name: str = FILE) -> Path:
        p = weights / name
        p.write_bytes(art.pinned.data if data is None else data)
        return p

    write_registry()
    yield SimpleNamespace(cache=cache, weights=weights, registry=registry, write_registry=write_registry,
                          bundle=bundle, hub=hub, art=art)
    store_mod.set_default_store(None)


def _blobs(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and "blobs" in p.parts]


def _partials(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.name.endswith(".incomplete")]


def _out(model, a):
    with torch.no_grad():
        return model(a.x, a.sigma)


# 1 --------------------------------------------------------------------------------------------------------------
def test_first_load_downloads_into_cache_and_matches_original(env, art):
    s = Store(progress=False)
    assert s.locate("tiny") == (None, "missing")
    model = s.load("tiny", "cpu")
    assert torch.equal(_out(model, art.pinned), art.pinned.y)
    assert not model.training and not any(p.requires_grad for p in model.parameters())

    methods = [(r.method, r.origin) for r in env.hub.requests]
    assert ("HEAD", "hub") in methods and ("GET", "cdn") in methods
    assert len(env.hub.gets()) == 1
    path, source = s.locate("tiny")
    assert source == "hub cache"
    assert env.cache in path.parents and path.name == FILE
    assert path.resolve().name == art.pinned.sha  # blob named by the LFS sha256
    assert _partials(env.cache) == []


# 2 --------------------------------------------------------------------------------------------------------------
def test_second_store_same_cache_makes_no_request(env, art):
    Store(progress=False).load("tiny", "cpu")
    env.hub.clear()
    env.hub.stop()  # even with the server gone
    model = Store(progress=False).load("tiny", "cpu")
    assert env.hub.requests == []
    assert torch.equal(_out(model, art.pinned), art.pinned.y)


# 3 --------------------------------------------------------------------------------------------------------------
def test_pinned_revision_is_requested_not_main(env, art):
    model = Store(progress=False).load("tiny", "cpu")
    resolves = [r.path for r in env.hub.requests if "/resolve/" in r.path]
    assert resolves and all(p == f"/{REPO}/resolve/{REV}/{FILE}" for p in resolves)
    assert not any("/main/" in r.path for r in env.hub.requests)
    assert torch.equal(_out(model, art.pinned), art.pinned.y)
    assert not torch.equal(_out(model, art.main), art.main.y)  # it is not main's model
    assert (env.cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / REV / FILE).exists()


# 4 --------------------------------------------------------------------------------------------------------------
def test_wrong_registry_checksum_is_refused_before_download(env, art):
    env.write_registry({"tiny": _entry(sha256=art.main.sha)})
    s = Store(progress=False)
    with pytest.raises(StoreError, match="(?i)checksum mismatch") as ei:
        s.load("tiny", "cpu")
    assert FILE in str(ei.value) and REPO in str(ei.value)
    assert env.hub.gets() == []          # the Hub's X-Linked-Etag already disagreed
    assert _blobs(env.cache) == [] and s.loaded() == []
    assert s.locate("tiny") == (None, "missing")


def test_corrupted_download_is_deleted_and_refused(env, art):
    env.hub.corrupt = True
    s = Store(progress=False)
    with pytest.raises(StoreError, match="(?i)checksum mismatch.*refusing to load"):
        s.load("tiny", "cpu")
    assert len(env.hub.gets()) == 1
    assert _blobs(env.cache) == [] and _partials(env.cache) == []
    snap = env.cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / REV / FILE
    assert not snap.exists() and not snap.is_symlink()
    assert s.loaded() == [] and s.locate("tiny") == (None, "missing")
    # healthy again: downloads afresh and loads the right weights
    env.hub.corrupt = False
    model = s.load("tiny", "cpu")
    assert torch.equal(_out(model, art.pinned), art.pinned.y)
    assert len(env.hub.gets()) == 2


def test_corrupted_cache_file_is_replaced(env, art):
    path = Store(progress=False).fetch("tiny")
    blob = path.resolve()
    blob.write_bytes(b"\0" * len(art.pinned.data))
    s = Store(progress=False)
    assert s.locate("tiny")[1] == "hub cache (checksum mismatch)"
    env.hub.clear()
    model = s.load("tiny", "cpu")
    assert len(env.hub.gets()) == 1
    assert torch.equal(_out(model, art.pinned), art.pinned.y)
    assert s.locate("tiny")[1] == "hub cache"


# 5 --------------------------------------------------------------------------------------------------------------
def test_server_down_uses_bundled_file(env, art):
    env.bundle()
    env.hub.stop()
    s = Store(progress=False)
    model = s.load("tiny", "cpu")
    assert torch.equal(_out(model, art.pinned), art.pinned.y)
    assert s.locate("tiny") == (env.weights / FILE, "bundled")
    assert env.hub.requests == []


def test_server_down_without_bundle_fails_fast_and_clearly(env):
    env.hub.stop()
    s = Store(progress=False)
    t0 = time.monotonic()
    with pytest.raises(StoreError) as ei:
        s.load("tiny", "cpu")
    took = time.monotonic() - t0
    msg = str(ei.value)
    assert FILE in msg and REPO in msg and "not bundled" in msg and "could not be reached" in msg
    assert took < 5, f"took {took:.1f}s (hf_hub_download's own retries would take ~23 s)"
    assert _blobs(env.cache) == []


def test_offline_env_makes_no_request(env, monkeypatch, art):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read at call time, after huggingface_hub was imported
    s = Store(progress=False)
    with pytest.raises(StoreError) as ei:
        s.load("tiny", "cpu")
    msg = str(ei.value)
    assert FILE in msg and REPO in msg and "HF_HUB_OFFLINE" in msg
    assert env.hub.requests == []
    env.bundle()
    assert torch.equal(_out(s.load("tiny", "cpu"), art.pinned), art.pinned.y)
    assert env.hub.requests == []


# 6 --------------------------------------------------------------------------------------------------------------
def test_aborted_download_leaves_nothing_and_later_load_works(env, art):
    env.hub.abort_gets = 1             # cut the body after half of the promised Content-Length ...
    env.hub.abort_then_status = 503    # ... and the client's retry then meets a failing server
    s = Store(progress=False)
    with pytest.raises(StoreError) as ei:
        s.load("tiny", "cpu")
    assert FILE in str(ei.value) and REPO in str(ei.value)
    assert _blobs(env.cache) == [] and _partials(env.cache) == []
    assert s.locate("tiny") == (None, "missing") and s.loaded() == []
    env.hub.fail_status = env.hub.abort_then_status = None
    model = s.load("tiny", "cpu")
    assert torch.equal(_out(model, art.pinned), art.pinned.y)
    assert _partials(env.cache) == []


def test_interrupted_download_is_resumed_with_range(env, art, monkeypatch):
    # The client only writes in DOWNLOAD_CHUNK_SIZE (10 MiB) pieces, so a small file restarts from 0;
    # with small chunks it resumes from where the connection broke, with a Range request.
    monkeypatch.setattr(hf_constants, "DOWNLOAD_CHUNK_SIZE", 1024)
    env.hub.abort_gets = 1
    model = Store(progress=False).load("tiny", "cpu")
    assert torch.equal(_out(model, art.pinned), art.pinned.y)
    gets = env.hub.gets()
    assert len(gets) == 2 and gets[0].header("Range") is None
    rng = gets[1].header("Range")
    assert rng and rng.startswith("bytes=") and int(rng[6:].rstrip("-")) > 0


# 7 --------------------------------------------------------------------------------------------------------------
def test_bundled_file_with_matching_sha_needs_no_network(env, art):
    env.bundle()
    s = Store(progress=False)
    model = s.load("tiny", "cpu")
    assert torch.equal(_out(model, art.pinned), art.pinned.y)
    assert env.hub.requests == [] and not env.cache.exists()


def test_bundled_file_with_wrong_sha_is_not_used(env, art):
    env.bundle(art.main.data)  # a valid safetensors file, but not the registry's
    s = Store(progress=False)
    assert s.locate("tiny") == (env.weights / FILE, "bundled (checksum mismatch)")
    model = s.load("tiny", "cpu")
    assert len(env.hub.gets()) == 1  # fell back to the Hub
    assert torch.equal(_out(model, art.pinned), art.pinned.y)
    assert s.locate("tiny")[1] == "hub cache"


def test_bundled_file_with_wrong_sha_and_no_hub_is_refused(env, art):
    env.bundle(art.main.data)
    env.hub.stop()
    with pytest.raises(StoreError, match="does not match its checksum") as ei:
        Store(progress=False).load("tiny", "cpu")
    assert FILE in str(ei.value) and REPO in str(ei.value)


# 8 --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fname", ["denoise-tiny.pt", "denoise-tiny.bin", "denoise-tiny.safetensors.pkl"])
def test_non_safetensors_file_is_refused(env, art, fname):
    env.write_registry({"tiny": _entry(file=fname, sha256=art.pinned.sha)})
    env.bundle(name=fname)  # present and with the right sha: still refused
    s = Store(progress=False)
    with pytest.raises(StoreError, match=r"only \.safetensors") as ei:
        s.load("tiny", "cpu")
    assert fname in str(ei.value)
    assert env.hub.requests == [] and s.loaded() == []


def test_path_escaping_file_name_is_refused(env, art):
    env.write_registry({"tiny": _entry(file="../outside.safetensors", sha256=art.pinned.sha)})
    with pytest.raises(StoreError, match="invalid file name"):
        Store(progress=False).fetch("tiny")


# 9 --------------------------------------------------------------------------------------------------------------
def test_lru_bound_and_identity(env, art):
    env.write_registry({n: _entry(sha256=art.pinned.sha) for n in ("a", "b", "c")})
    env.bundle()
    s = Store(max_loaded=2, progress=False)
    a = s.load("a", "cpu")
    assert s.load("a", "cpu") is a and s.load("a") is a  # default device on this machine is cpu
    b = s.load("b", "cpu")
    assert b is not a
    s.load("a", "cpu")                   # refresh a: b is now the oldest
    s.load("c", "cpu")
    assert s.loaded() == [("a", "cpu"), ("c", "cpu")]
    assert s.load("a", "cpu") is a
    assert s.load("b", "cpu") is not b   # b was evicted and rebuilt
    assert len(s.loaded()) == 2


def test_runners_live_as_long_as_their_model(env, art):
    """The store owns the one cache of task runners: one per (kind, model, device), dropped when the model is
    evicted, unloaded or re-registered, so no runner keeps stale weights alive."""
    env.write_registry({n: _entry(sha256=art.pinned.sha) for n in ("a", "b", "c")})
    env.bundle()
    s = Store(max_loaded=2, progress=False)
    built = []

    def build(module):
        built.append(module)
        return ("runner", module)
    r = s.runner("a", "cpu", build, "test")
    assert r[1] is s.load("a", "cpu") and s.runner("a", "cpu", build, "test") is r and len(built) == 1
    assert s.runner("a", "cpu", build, "other kind") is not r and len(built) == 2
    s.load("b", "cpu")
    s.load("c", "cpu")                                          # a is evicted: its runners go with it
    assert s.runners() == []
    r2 = s.runner("a", "cpu", build, "test")
    assert r2 is not r and r2[1] is s.load("a", "cpu")          # rebuilt over the reloaded module
    s.unload("a")
    assert s.runners() == []
    s.runner("b", "cpu", build, "test")
    s.update_entry("b", licence="changed")                       # a re-export or edit drops it too
    assert s.runners() == [] and s.loaded() == [("c", "cpu")] or ("b", "cpu") not in s.loaded()


def test_concurrent_loads_download_once_and_share_the_module(env):
    s = Store(progress=False)
    results, errors = [], []

    def work():
        try:
            results.append(s.load("tiny", "cpu"))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(results) == 4
    assert all(m is results[0] for m in results)
    assert len(env.hub.gets()) == 1


# verification cache ----------------------------------------------------------------------------------------------
def test_bundled_sha_is_computed_once_per_file_version(env, monkeypatch):
    calls = []
    real = store_mod._hash_file
    monkeypatch.setattr(store_mod, "_hash_file", lambda p: calls.append(p) or real(p))
    path = env.bundle()
    s = Store(progress=False)
    for _ in range(3):
        assert s.locate("tiny")[1] == "bundled"
    s.load("tiny", "cpu")
    assert len(calls) == 1
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # file changed on disk
    assert s.locate("tiny")[1] == "bundled"
    assert len(calls) == 2


# registry ---------------------------------------------------------------------------------------------------------
def test_unknown_name_lists_known_models(env):
    with pytest.raises(StoreError, match="known models: tiny"):
        Store().entry("nope")


def test_unpublished_and_not_bundled_says_so(env, art):
    env.write_registry({"tiny": _entry(revision=None, sha256=art.pinned.sha)})
    with pytest.raises(StoreError, match="not been published") as ei:
        Store(progress=False).load("tiny", "cpu")
    assert FILE in str(ei.value) and "not bundled" in str(ei.value)
    assert env.hub.requests == []


def test_unknown_revision_on_the_hub(env, art):
    env.write_registry({"tiny": _entry(revision="f" * 40, sha256=art.pinned.sha)})
    with pytest.raises(StoreError, match="no revision ffffffffffff") as ei:
        Store(progress=False).load("tiny", "cpu")
    assert FILE in str(ei.value) and REPO in str(ei.value)


def test_entries_and_tasks(env, art):
    env.write_registry({"tiny": _entry(sha256=art.pinned.sha), "other": _entry(task="inpaint", card=None)})
    s = Store()
    es = s.entries()
    assert [e.name for e in es] == ["tiny", "other"] and all(isinstance(e, ModelEntry) for e in es)
    assert [e.name for e in s.entries_for_task("inpaint")] == ["other"]
    assert s.entry("tiny").config == TINY and s.entry("tiny").repo_type == "model"


def test_update_entry_keeps_order_and_is_seen_by_the_store(env, art):
    env.write_registry({"tiny": _entry(sha256=art.main.sha)})
    env.bundle()
    s = Store(progress=False)
    assert s.locate("tiny")[1] == "bundled (checksum mismatch)"
    keys_before = list(json.loads(env.registry.read_text())["models"]["tiny"])
    s.update_entry("tiny", sha256=art.pinned.sha, revision=None)
    text = env.registry.read_text()
    raw = json.loads(text)
    assert list(raw) == ["hub", "models"] and list(raw["models"]["tiny"]) == keys_before
    assert text.startswith('{\n  "hub": {\n    "repo_id"') and text.endswith("}\n")
    assert raw["models"]["tiny"]["sha256"] == art.pinned.sha and raw["models"]["tiny"]["revision"] is None
    assert s.locate("tiny")[1] == "bundled"
    # another Store (e.g. the web app) sees the change too
    assert Store().entry("tiny").sha256 == art.pinned.sha
    # new entries get the canonical order; unknown fields are rejected without writing
    s.update_entry("new", card="x.md", file="x.safetensors", arch="denoise_unet", task="denoise")
    assert list(json.loads(env.registry.read_text())["models"]["new"]) == ["task", "arch", "file", "card"]
    with pytest.raises(ValueError):
        s.update_entry("tiny", colour="blue")
    with pytest.raises(StoreError):
        s.update_entry("broken", file="y.safetensors")  # no task/arch
    assert "broken" not in json.loads(env.registry.read_text())["models"]


def test_update_entry_drops_stale_loaded_module(env, art):
    env.bundle()
    s = Store(progress=False)
    m = s.load("tiny", "cpu")
    s.update_entry("tiny", licence="CC-BY-4.0")
    assert s.loaded() == [] and s.load("tiny", "cpu") is not m


def test_describe_rows(env, art):
    env.write_registry({"tiny": _entry(sha256=art.pinned.sha), "gone": _entry(file="gone.safetensors")})
    env.bundle()
    rows = {r["name"]: r for r in Store().describe()}
    assert rows["tiny"]["source"] == "bundled" and rows["tiny"]["path"] == str(env.weights / FILE)
    assert rows["tiny"]["size_mb"] == round(len(art.pinned.data) / 1e6, 2)
    assert rows["tiny"]["revision"] == REV and rows["tiny"]["licence"] == "MIT" and rows["tiny"]["card"]
    assert rows["gone"]["source"] == "missing" and rows["gone"]["path"] is None
    assert {"name", "task", "arch", "file", "licence", "data", "source", "path", "size_mb", "revision",
            "card"} <= set(rows["tiny"])
    assert env.hub.requests == []


def test_module_level_functions_use_the_default_store(env, art):
    assert [e.name for e in store_mod.entries()] == ["tiny"]
    assert store_mod.locate("tiny") == (None, "missing")
    path = store_mod.fetch("tiny", progress=False)
    assert store_mod.locate("tiny") == (path, "hub cache")
    m = store_mod.load("tiny", "cpu")
    assert store_mod.load("tiny", "cpu") is m and store_mod.default_store() is store_mod.default_store()
    assert torch.equal(_out(m, art.pinned), art.pinned.y)
