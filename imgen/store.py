"""The checkpoint store: find, verify, download (from the Hugging Face Hub) and load the models in the registry.

Where a model's weights come from, in order:

1. ``weights/<file>`` (bundled with the app; ``IMGEN_WEIGHTS_DIR`` overrides the folder), if its sha256 matches
   the registry's;
2. the Hugging Face Hub cache (``HF_HUB_CACHE``), at the registry's pinned revision, if its sha256 matches;
3. a download from the Hub repo at the pinned revision (a 40-hex commit sha, never a branch), verified before use.

Only ``.safetensors`` files are ever loaded (no pickles). Every failure a user can hit is a :class:`StoreError`
whose message is a sentence meant to be shown in the web UI.

Environment read at call time: ``IMGEN_WEIGHTS_DIR``, ``IMGEN_REGISTRY``, ``HF_ENDPOINT``, ``HF_HUB_CACHE`` (else
``HF_HOME``/hub, else huggingface_hub's default) and ``HF_HUB_OFFLINE``. ``huggingface_hub`` reads its own
constants once at import, so the endpoint and cache folder are always passed to it explicitly.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from torch import nn

from .device import pick_device

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
DEFAULT_REGISTRY = PACKAGE_DIR / "registry.json"
DEFAULT_WEIGHTS_DIR = REPO_ROOT / "weights"
DEFAULT_ENDPOINT = "https://huggingface.co"
SAFE_SUFFIX = ".safetensors"

SOURCE_BUNDLED = "bundled"
SOURCE_HUB_CACHE = "hub cache"
SOURCE_MISSING = "missing"
SOURCE_BUNDLED_BAD = "bundled (checksum mismatch)"
SOURCE_HUB_CACHE_BAD = "hub cache (checksum mismatch)"

_COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TRUE = {"1", "true", "yes", "on"}


class StoreError(Exception):
    """A model cannot be provided. The message is a sentence for the end user (it is shown in the web UI)."""


@dataclass
class ModelEntry:
    """One model of the registry (``imgen/registry.json`` -> ``models`` -> name)."""

    name: str
    task: str
    arch: str
    file: str
    config: dict = field(default_factory=dict)
    repo_id: str | None = None
    revision: str | None = None   # Hub commit holding the file; None = not published yet (bundled only)
    sha256: str | None = None
    licence: str = ""
    data: str = ""
    card: str | None = None
    repo_type: str = "model"

    @property
    def short_revision(self) -> str:
        return self.revision[:12] if self.revision else "unpublished"


_ENTRY_FIELDS = [f.name for f in fields(ModelEntry) if f.name != "name"]


def _hash_file(path: Path) -> str:
    """sha256 of a file (module-level so tests can count calls)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file, as the registry records it."""
    return _hash_file(Path(path))


def export_safetensors(model: nn.Module, arch: str, path: str | Path, extra: dict | None = None) -> str:
    """Write the model's state dict (fp32, contiguous) with ``arch`` and ``config`` in the metadata: the one format
    :meth:`Store.load` reads. ``extra`` entries (and any tensors a model carries besides its parameters, e.g.
    latent directions) are stored too. Returns the file's sha256."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().contiguous().cpu() if v.dtype.is_floating_point else v.detach().contiguous().cpu()
             for k, v in model.state_dict().items()}
    meta = {"format": "imgen/1", "arch": arch, "config": json.dumps(model.config.to_dict())}
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return sha256_file(path)


def _silent_tqdm_class():
    try:
        from huggingface_hub.utils.tqdm import silent_tqdm
        return silent_tqdm
    except ImportError:  # pragma: no cover - older/newer layouts
        class _Silent:
            def __init__(self, *a, **k): pass
            def __enter__(self): return self
            def __exit__(self, *exc): return False
            def update(self, n=1): pass
            def close(self): pass
        return _Silent


def _why(exc: BaseException, revision: str | None = None) -> str:
    """A short, user-facing reason for a huggingface_hub / network failure."""
    from huggingface_hub import errors as hf_errors
    try:
        import httpx2 as httpx_mod
    except ImportError:  # pragma: no cover
        httpx_mod = None

    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, hf_errors.OfflineModeIsEnabled):
            return "downloads are disabled (HF_HUB_OFFLINE is set)"
        if isinstance(e, hf_errors.RevisionNotFoundError):
            return f"the repo has no revision {revision or '?'}"
        if isinstance(e, hf_errors.RemoteEntryNotFoundError):
            return "the repo has no such file at that revision"
        if isinstance(e, (hf_errors.RepositoryNotFoundError, hf_errors.GatedRepoError)):
            return "the repo does not exist or is not accessible"
        if httpx_mod is not None:
            if isinstance(e, httpx_mod.ConnectError):
                return "the server could not be reached"
            if isinstance(e, httpx_mod.TimeoutException):
                return "the server did not answer in time"
            if isinstance(e, httpx_mod.RemoteProtocolError):
                return "the connection broke off during the download"
        if isinstance(e, hf_errors.HfHubHTTPError) and getattr(e, "response", None) is not None:
            return f"the server answered HTTP {e.response.status_code}"
        if isinstance(e, ConnectionError):
            return "the server could not be reached"
        if isinstance(e, OSError) and "Consistency check failed" in str(e):
            return "the download was incomplete"
        nxt = e.__cause__ or e.__context__
        if nxt is None:
            break
        e = nxt
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class Store:
    """Registry-driven checkpoint store. Thread-safe; loaded modules are kept in a bounded LRU."""

    def __init__(self, weights_dir: str | Path | None = None, registry_path: str | Path | None = None,
                 endpoint: str | None = None, cache_dir: str | Path | None = None, max_loaded: int | None = None,
                 progress: bool = True):
        self._weights_dir = Path(weights_dir) if weights_dir is not None else None
        self._registry_path = Path(registry_path) if registry_path is not None else None
        self._endpoint = endpoint
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        # every model the app serves stays loaded at once (12 > the 8 it uses; all of them together are ~40 MB
        # of weights), so switching tabs never reloads; IMGEN_MAX_LOADED bounds it on a smaller machine
        self.max_loaded = max(1, int(max_loaded if max_loaded is not None else os.environ.get("IMGEN_MAX_LOADED", 12)))
        self.progress = progress
        self._lock = threading.RLock()
        self._loaded: OrderedDict[tuple[str, str], nn.Module] = OrderedDict()
        # task runners built over loaded modules, (kind, name, device) -> runner; they live exactly as long as
        # their module stays in _loaded (eviction, unload and a registry update drop them too)
        self._runners: dict[tuple[str, str, str], Any] = {}
        self._load_locks: dict[tuple[str, str], threading.Lock] = {}
        self._fetch_locks: dict[str, threading.Lock] = {}
        self._sha_cache: OrderedDict[tuple[str, int, int], str] = OrderedDict()
        self._registry_cache: tuple[tuple, dict] | None = None

    # -- configuration (resolved at call time unless given explicitly) --------------------------------------------
    @property
    def weights_dir(self) -> Path:
        if self._weights_dir is not None:
            return self._weights_dir
        env = os.environ.get("IMGEN_WEIGHTS_DIR")
        return Path(env) if env else DEFAULT_WEIGHTS_DIR

    @property
    def registry_path(self) -> Path:
        if self._registry_path is not None:
            return self._registry_path
        env = os.environ.get("IMGEN_REGISTRY")
        return Path(env) if env else DEFAULT_REGISTRY

    @property
    def endpoint(self) -> str:
        ep = self._endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
        return ep.rstrip("/")

    @property
    def cache_dir(self) -> Path:
        if self._cache_dir is not None:
            return self._cache_dir
        env = os.environ.get("HF_HUB_CACHE")
        if env:
            return Path(env).expanduser()
        home = os.environ.get("HF_HOME")
        if home:
            return Path(home).expanduser() / "hub"
        from huggingface_hub import constants
        return Path(constants.HF_HUB_CACHE)

    @staticmethod
    def offline() -> bool:
        """HF_HUB_OFFLINE (read now), or offline mode fixed when huggingface_hub was imported."""
        if (os.environ.get("HF_HUB_OFFLINE") or "").strip().lower() in _TRUE:
            return True
        try:
            from huggingface_hub import constants
            return bool(constants.HF_HUB_OFFLINE)
        except ImportError:  # pragma: no cover
            return True

    # -- registry ---------------------------------------------------------------------------------------------
    def _raw_registry(self) -> dict:
        path = self.registry_path
        try:
            st = path.stat()
        except OSError as e:
            raise StoreError(f"The model registry {path} could not be read ({e.strerror or e}).") from e
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            if self._registry_cache is not None and self._registry_cache[0] == key:
                return self._registry_cache[1]
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise StoreError(f"The model registry {path} could not be read: {e}.") from e
        if not isinstance(raw, dict) or not isinstance(raw.get("models", {}), dict):
            raise StoreError(f"The model registry {path} is not valid: it needs a \"models\" object.")
        with self._lock:
            self._registry_cache = (key, raw)
        return raw

    def _make_entry(self, name: str, d: dict, hub: dict) -> ModelEntry:
        missing = [k for k in ("task", "arch", "file") if not d.get(k)]
        if missing:
            raise StoreError(f"The model registry entry {name!r} is incomplete (missing: {', '.join(missing)}).")
        kw = {k: d[k] for k in _ENTRY_FIELDS if k in d}
        kw.setdefault("repo_id", hub.get("repo_id"))
        kw.setdefault("repo_type", hub.get("repo_type") or "model")
        if kw.get("sha256"):
            kw["sha256"] = str(kw["sha256"]).lower()
        return ModelEntry(name=name, **kw)

    def entries(self) -> list[ModelEntry]:
        raw = self._raw_registry()
        hub = raw.get("hub") or {}
        return [self._make_entry(n, d, hub) for n, d in (raw.get("models") or {}).items()]

    def entry(self, name: str) -> ModelEntry:
        raw = self._raw_registry()
        models = raw.get("models") or {}
        if name not in models:
            known = ", ".join(sorted(models)) or "none"
            raise StoreError(f"There is no model called {name!r} in the registry (known models: {known}).")
        return self._make_entry(name, models[name], raw.get("hub") or {})

    def entries_for_task(self, task: str) -> list[ModelEntry]:
        return [e for e in self.entries() if e.task == task]

    def update_entry(self, name: str, **fields_: Any) -> ModelEntry:
        """Set fields of a registry entry (creating it if needed) and write the registry back.

        Existing keys keep their position, new keys are appended (new entries get the canonical field order);
        the file is written atomically with indent 2.
        """
        unknown = sorted(set(fields_) - set(_ENTRY_FIELDS))
        if unknown:
            raise ValueError(f"unknown registry field(s) {unknown}; allowed: {_ENTRY_FIELDS}")
        path = self.registry_path
        with self._lock:
            raw = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"models": {}}
            models = raw.setdefault("models", {})
            if name in models:
                cur = models[name]
                for k, v in fields_.items():
                    cur[k] = v
            else:
                cur = {k: fields_[k] for k in _ENTRY_FIELDS if k in fields_}
            self._make_entry(name, cur, raw.get("hub") or {})  # validate before writing
            models[name] = cur
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            os.replace(tmp, path)
            self._registry_cache = None
            self.unload(name)
        return self.entry(name)

    # -- verification -------------------------------------------------------------------------------------------
    def _digest(self, path: Path) -> str:
        """sha256 of ``path`` (symlinks resolved), cached by (path, size, mtime_ns)."""
        real = path.resolve()
        st = real.stat()
        key = (str(real), st.st_size, st.st_mtime_ns)
        with self._lock:
            hit = self._sha_cache.get(key)
            if hit is not None:
                self._sha_cache.move_to_end(key)
                return hit
        digest = _hash_file(real)
        with self._lock:
            self._sha_cache[key] = digest
            while len(self._sha_cache) > 256:
                self._sha_cache.popitem(last=False)
        return digest

    def _matches(self, path: Path, e: ModelEntry) -> bool:
        try:
            return bool(e.sha256) and self._digest(path) == e.sha256
        except OSError:
            return False

    def _check_file_name(self, e: ModelEntry) -> None:
        p = Path(e.file)
        if p.suffix.lower() != SAFE_SUFFIX:
            raise StoreError(f"The model {e.name!r} points to '{e.file}', which is not a {SAFE_SUFFIX} file; "
                             f"only {SAFE_SUFFIX} weights are loaded (other formats can run code), so it was refused.")
        if p.is_absolute() or ".." in p.parts or not e.file.strip():
            raise StoreError(f"The model {e.name!r} has an invalid file name '{e.file}' in the registry.")

    def _hub_cached_path(self, e: ModelEntry) -> Path | None:
        if not e.repo_id or not e.revision:
            return None
        from huggingface_hub import try_to_load_from_cache
        try:
            p = try_to_load_from_cache(e.repo_id, e.file, cache_dir=str(self.cache_dir), revision=e.revision,
                                       repo_type=e.repo_type)
        except Exception:  # noqa: BLE001 - a malformed cache is just "not cached"
            return None
        return Path(p) if isinstance(p, str) else None

    def _discard_cached(self, pointer: Path) -> None:
        """Delete a Hub-cache file: the blob behind the snapshot symlink, then the symlink."""
        blob = pointer
        try:
            blob = pointer.resolve()
            cache = self.cache_dir.resolve()
            if blob != pointer and cache in blob.parents:
                blob.unlink(missing_ok=True)
            if pointer.is_symlink() or pointer.exists():
                pointer.unlink()
        except OSError as err:
            log.warning("could not delete %s: %s", pointer, err)
        with self._lock:
            for k in [k for k in self._sha_cache if k[0] in (str(pointer), str(blob))]:
                del self._sha_cache[k]

    # -- locate / fetch ---------------------------------------------------------------------------------------
    def locate(self, name: str) -> tuple[Path | None, str]:
        """Where a model's weights are, without any network access.

        Returns (path, source), source one of "bundled", "hub cache", "missing", "bundled (checksum mismatch)",
        "hub cache (checksum mismatch)". A mismatching bundled file is reported only when the Hub cache has no
        good copy.
        """
        e = self.entry(name)
        bundled = self.weights_dir / e.file
        bundled_bad = False
        if bundled.is_file():
            if self._matches(bundled, e):
                return bundled, SOURCE_BUNDLED
            bundled_bad = True
        cached = self._hub_cached_path(e)
        if cached is not None:
            if self._matches(cached, e):
                return cached, SOURCE_HUB_CACHE
            if not bundled_bad:
                return cached, SOURCE_HUB_CACHE_BAD
        if bundled_bad:
            return bundled, SOURCE_BUNDLED_BAD
        return None, SOURCE_MISSING

    def _fetch_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._fetch_locks.setdefault(name, threading.Lock())

    def fetch(self, name: str, progress: bool | None = None) -> Path:
        """A verified local path to the model's weights, downloading them from the Hub if needed."""
        e = self.entry(name)
        self._check_file_name(e)
        if not e.sha256 or not _SHA256.match(e.sha256):
            raise StoreError(f"The model file '{e.file}' has no valid sha256 in the registry, so it cannot be "
                             "verified and will not be loaded.")
        with self._fetch_lock(name):
            bundled = self.weights_dir / e.file
            bundled_bad = False
            if bundled.is_file():
                if self._matches(bundled, e):
                    return bundled
                bundled_bad = True
                log.warning("%s does not match its sha256 in the registry; not using it", bundled)
            cached = self._hub_cached_path(e)
            if cached is not None:
                if self._matches(cached, e):
                    return cached
                log.warning("cached %s does not match its sha256; deleting it", cached)
                self._discard_cached(cached)
            return self._download(e, bundled_bad=bundled_bad,
                                  progress=self.progress if progress is None else progress)

    def _unavailable(self, e: ModelEntry, why: str, bundled_bad: bool, hint: str | None = None) -> StoreError:
        wd = self.weights_dir
        where = (f"the copy in {wd} does not match its checksum" if bundled_bad
                 else f"it is not bundled in {wd}")
        hint = hint or f"Check the network connection (or HF_ENDPOINT), or put the file in {wd}."
        return StoreError(
            f"The model file '{e.file}' ({e.name}) is not available: {where}, and it could not be downloaded "
            f"from the Hugging Face Hub repo '{e.repo_id}' (revision {e.short_revision}) because {why}. {hint}")

    def _download(self, e: ModelEntry, bundled_bad: bool, progress: bool) -> Path:
        wd = self.weights_dir
        if not e.revision:
            raise self._unavailable(e, "it has not been published on the Hub yet (the registry pins no revision)",
                                    bundled_bad, f"Put the file in {wd} (train and export it, or copy it there).")
        if not e.repo_id:
            raise self._unavailable(e, "the registry names no Hub repo for it", bundled_bad,
                                    f"Put the file in {wd}.")
        if not _COMMIT_SHA.match(e.revision):
            raise self._unavailable(e, f"the registry revision {e.revision!r} is not a pinned commit sha",
                                    bundled_bad,
                                    f"Pin a 40-character commit sha in the registry, or put the file in {wd}.")
        if self.offline():
            raise self._unavailable(e, "downloads are disabled (HF_HUB_OFFLINE is set)", bundled_bad,
                                    f"Unset HF_HUB_OFFLINE to download it, or put the file in {wd}.")

        import huggingface_hub as hf
        from huggingface_hub import constants
        endpoint, cache_dir = self.endpoint, self.cache_dir

        # Preflight HEAD without retries: hf_hub_download retries an unreachable/5xx server with backoff for
        # ~23 s before giving up; this answers at once. It also lets us refuse a file whose LFS sha256 (the
        # X-Linked-Etag) is not the registry's before downloading a byte.
        url = hf.hf_hub_url(e.repo_id, e.file, repo_type=e.repo_type, revision=e.revision, endpoint=endpoint)
        try:
            meta = hf.get_hf_file_metadata(url, timeout=constants.HF_HUB_ETAG_TIMEOUT, endpoint=endpoint)
        except Exception as err:  # noqa: BLE001 - every failure becomes a user-facing StoreError
            raise self._unavailable(e, _why(err, e.revision), bundled_bad) from err
        if meta.etag and _SHA256.match(meta.etag.lower()) and meta.etag.lower() != e.sha256:
            raise StoreError(
                f"Checksum mismatch for '{e.file}' in the Hugging Face Hub repo '{e.repo_id}' (revision "
                f"{e.short_revision}): the Hub's copy has sha256 {meta.etag[:12]}…, the registry expects "
                f"{e.sha256[:12]}…; refusing to download or load it.")

        log.info("downloading %s from %s@%s", e.file, e.repo_id, e.short_revision)
        try:
            local = hf.hf_hub_download(
                e.repo_id, filename=e.file, repo_type=e.repo_type, revision=e.revision,
                endpoint=endpoint, cache_dir=str(cache_dir),
                tqdm_class=None if progress else _silent_tqdm_class())
        except Exception as err:  # noqa: BLE001
            raise self._unavailable(e, _why(err, e.revision), bundled_bad) from err
        local = Path(local)
        try:
            digest = self._digest(local)
        except OSError as err:
            raise self._unavailable(e, f"the downloaded file could not be read ({err})", bundled_bad) from err
        if digest != e.sha256:
            self._discard_cached(local)
            raise StoreError(
                f"Checksum mismatch for '{e.file}' downloaded from the Hugging Face Hub repo '{e.repo_id}' "
                f"(revision {e.short_revision}): got sha256 {digest[:12]}…, the registry expects "
                f"{e.sha256[:12]}…. The download was deleted; refusing to load it.")
        return local

    # -- load -------------------------------------------------------------------------------------------------
    def load(self, name: str, device: Any = None) -> nn.Module:
        """The model in eval mode, without gradients, on ``pick_device(device)``; cached (LRU of max_loaded)."""
        dev = pick_device(str(device) if device is not None else None)
        key = (name, str(dev))
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            klock = self._load_locks.setdefault(key, threading.Lock())
        with klock:
            with self._lock:
                if key in self._loaded:
                    self._loaded.move_to_end(key)
                    return self._loaded[key]
            e = self.entry(name)
            path = self.fetch(name)
            model = self._build(e, path).to(dev)
            with self._lock:
                self._loaded[key] = model
                self._loaded.move_to_end(key)
                while len(self._loaded) > self.max_loaded:
                    old, _ = self._loaded.popitem(last=False)
                    self._drop_runners(lambda k, old=old: k[1:] == old)
                    log.debug("evicted %s from the model cache", old)
            return model

    def runner(self, name: str, device: Any, build: Callable[[nn.Module], Any], kind: str) -> Any:
        """The task runner ``build(module)`` of the model ``name`` on ``device``, one per (kind, name, device),
        kept as long as the store keeps the module: evicting or unloading the model, or updating its registry
        entry, drops its runners as well, so no runner outlives the weights it was built on."""
        dev = str(pick_device(str(device) if device is not None else None))
        key = (kind, name, dev)
        with self._lock:
            if key in self._runners and (name, dev) in self._loaded:
                self._loaded.move_to_end((name, dev))
                return self._runners[key]
        module = self.load(name, device)
        built = build(module)                       # may be slow (an ONNX export): outside the lock
        with self._lock:
            if self._loaded.get((name, dev)) is module:
                built = self._runners.setdefault(key, built)
        return built

    def runners(self) -> list[tuple[str, str, str]]:
        """Keys (kind, name, device) of the cached runners."""
        with self._lock:
            return list(self._runners)

    def _drop_runners(self, which: Callable[[tuple[str, str, str]], bool]) -> None:
        for k in [k for k in self._runners if which(k)]:
            del self._runners[k]

    def _build(self, e: ModelEntry, path: Path) -> nn.Module:
        if path.suffix.lower() != SAFE_SUFFIX:  # belt and braces: never hand anything else to a loader
            raise StoreError(f"Refusing to load '{path.name}': only {SAFE_SUFFIX} files are loaded.")
        from safetensors import safe_open
        from .models import build_model
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                meta = f.metadata() or {}
                state = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as err:  # noqa: BLE001
            raise StoreError(f"The model file '{e.file}' ({e.name}) could not be read as safetensors: {err}.") from err
        arch = meta.get("arch") or e.arch
        try:
            config = json.loads(meta["config"]) if meta.get("config") else dict(e.config or {})
        except ValueError:
            config = dict(e.config or {})
        if arch != e.arch:
            log.warning("%s: file says arch %r, registry says %r; using the file's", e.name, arch, e.arch)
        try:
            model = build_model(arch, config)
            model.load_state_dict(state, strict=True)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise StoreError(f"The model file '{e.file}' ({e.name}) does not fit architecture {arch!r}: "
                             f"{str(err).splitlines()[0] if str(err) else type(err).__name__}.") from err
        model.eval()
        model.requires_grad_(False)
        return model

    def loaded(self) -> list[tuple[str, str]]:
        """Keys (name, device) of the modules in the in-process cache, oldest first."""
        with self._lock:
            return list(self._loaded)

    def unload(self, name: str | None = None) -> None:
        """Drop cached modules (of ``name``, or all) and the runners built on them."""
        with self._lock:
            for k in [k for k in self._loaded if name is None or k[0] == name]:
                del self._loaded[k]
            self._drop_runners(lambda k: name is None or k[1] == name)

    # -- reporting ----------------------------------------------------------------------------------------------
    def describe(self) -> list[dict]:
        """One row per model for the CLI / About tab (no network access)."""
        rows = []
        for e in self.entries():
            try:
                path, source = self.locate(e.name)
            except StoreError:
                path, source = None, SOURCE_MISSING
            size_mb = None
            if path is not None:
                try:
                    size_mb = round(path.stat().st_size / 1e6, 2)
                except OSError:
                    pass
            rows.append({"name": e.name, "task": e.task, "arch": e.arch, "file": e.file, "licence": e.licence,
                         "data": e.data, "source": source, "path": str(path) if path else None,
                         "size_mb": size_mb, "revision": e.revision, "repo_id": e.repo_id, "card": e.card})
        return rows


# -- module-level default store -------------------------------------------------------------------------------
_DEFAULT: Store | None = None
_DEFAULT_LOCK = threading.Lock()


def default_store() -> Store:
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Store()
        return _DEFAULT


def set_default_store(store: Store | None) -> None:
    """Replace (or with None, reset) the module-level store."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        _DEFAULT = store


def load(name: str, device: Any = None) -> nn.Module:
    return default_store().load(name, device)


def entries() -> list[ModelEntry]:
    return default_store().entries()


def entry(name: str) -> ModelEntry:
    return default_store().entry(name)


def entries_for_task(task: str) -> list[ModelEntry]:
    return default_store().entries_for_task(task)


def locate(name: str) -> tuple[Path | None, str]:
    return default_store().locate(name)


def fetch(name: str, progress: bool = True) -> Path:
    return default_store().fetch(name, progress=progress)


def describe() -> list[dict]:
    return default_store().describe()


def update_entry(name: str, **fields_: Any) -> ModelEntry:
    return default_store().update_entry(name, **fields_)
