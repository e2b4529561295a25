"""A tiny stand-in for the Hugging Face Hub's file-resolve protocol, for tests of :mod:`imgen.store`.

It speaks enough of the protocol for the *real* ``huggingface_hub`` client (no mocking of the client):

* ``HEAD``/``GET /{repo_id}/resolve/{revision}/{filename}`` on the "hub" origin. For LFS files (the default, as
  for ``.safetensors`` on the real Hub) the answer is a ``302`` to a second origin (the "CDN", another port) with
  ``X-Repo-Commit``, ``X-Linked-Etag: "<sha256>"`` and ``X-Linked-Size``; ``huggingface_hub`` 2.x does not follow a
  redirect to another origin for the metadata call and downloads from ``Location`` directly. For plain git files
  (``lfs=False``) the answer is a ``200`` with ``ETag: "<git blob oid>"`` and the bytes.
* ``GET``/``HEAD /cdn/{sha256}`` on the CDN origin, with ``Range: bytes=N-`` / ``bytes=N-M`` support (``206`` +
  ``Content-Range``), which the client uses to resume an interrupted download.
* ``GET /api/models/{repo_id}[/revision/{revision}]`` (model info JSON with ``sha`` and ``siblings``).
* Hub error headers: unknown repo -> ``404`` ``X-Error-Code: RepoNotFound``; unknown revision -> ``404``
  ``X-Error-Code: RevisionNotFound``; unknown file -> ``404`` ``X-Error-Code: EntryNotFound`` (+ ``X-Repo-Commit``).
* Never sends ``X-Xet-Hash`` (so the client uses plain HTTP even with ``hf_xet`` installed).

Failure knobs: ``corrupt`` (serve altered bytes under the right headers), ``abort_gets`` (cut the next N body GETs
after half of the promised bytes; -1 = all), ``abort_then_status`` (after a cut, answer every request with this
status), ``fail_status`` (answer every request with this status), and :meth:`stop` / :meth:`start` (server down:
connections are refused; :meth:`start` reopens the same ports).

Every request is recorded in :attr:`requests` (method, path, headers, origin) for assertions.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

__all__ = ["FakeHub", "Recorded", "git_blob_oid"]


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what the Hub sends as ETag for non-LFS files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    origin: str  # "hub" or "cdn"

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers.items():
            if k.lower() == name:
                return v
        return None


@dataclass
class _File:
    data: bytes
    lfs: bool
    sha256: str = field(init=False)
    oid: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.oid = git_blob_oid(self.data)


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+?)(?:/revision/(?P<rev>[^/]+))?/?$")
_CDN = re.compile(r"^/cdn/(?P<sha>[0-9a-f]{64})$")
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


class FakeHub:
    """A threaded fake Hub on 127.0.0.1 (two random free ports: hub + CDN). Use as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._commits: dict[tuple[str, str], dict[str, _File]] = {}   # (repo, commit sha) -> files
        self._refs: dict[tuple[str, str], str] = {}                   # (repo, branch) -> commit sha
        self.requests: list[Recorded] = []
        self.corrupt = False
        self.abort_gets = 0
        self.abort_then_status: int | None = None
        self.fail_status: int | None = None
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._ports: dict[str, int] = {}

    # -- content -----------------------------------------------------------------------------------------------
    def add_file(self, repo_id: str, revision: str, filename: str, data: bytes, *, lfs: bool = True,
                 ref: str | None = None) -> str:
        """Put ``filename`` in commit ``revision`` (a 40-hex sha) of ``repo_id``; optionally point branch
        ``ref`` (e.g. "main") at that commit. Returns the file's sha256."""
        if not re.fullmatch(r"[0-9a-f]{40}", revision):
            raise ValueError("revision must be a 40-hex commit sha; use ref= for branch names")
        f = _File(bytes(data), lfs)
        with self._lock:
            self._commits.setdefault((repo_id, revision), {})[filename] = f
            if ref is not None:
                self._refs[(repo_id, ref)] = revision
        return f.sha256

    def set_ref(self, repo_id: str, ref: str, revision: str) -> None:
        with self._lock:
            self._refs[(repo_id, ref)] = revision

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._ports['hub']}"

    @property
    def cdn_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._ports['cdn']}"

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def start(self) -> "FakeHub":
        """Start (or restart, on the same ports) both origins."""
        if self._servers:
            return self
        for origin in ("hub", "cdn"):
            server = ThreadingHTTPServer(("127.0.0.1", self._ports.get(origin, 0)), self._handler_class(origin))
            server.daemon_threads = True
            self._ports[origin] = server.server_address[1]
            t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                 name=f"fakehub-{origin}", daemon=True)
            t.start()
            self._servers[origin], self._threads[origin] = server, t
        return self

    def stop(self) -> None:
        """Server down: stop listening (later connections are refused)."""
        for origin, server in list(self._servers.items()):
            server.shutdown()
            server.server_close()
            self._threads[origin].join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- helpers for assertions ----------------------------------------------------------------------------------
    def gets(self) -> list[Recorded]:
        """Body downloads (GETs on the CDN or on a non-LFS resolve URL)."""
        return [r for r in self.requests if r.method == "GET" and (r.origin == "cdn" or "/resolve/" in r.path)]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- protocol ----------------------------------------------------------------------------------------------
    def _resolve_commit(self, repo: str, rev: str) -> str | None:
        if (repo, rev) in self._commits:
            return rev
        return self._refs.get((repo, rev))

    def _repo_known(self, repo: str) -> bool:
        return any(r == repo for r, _ in self._commits)

    def _by_sha256(self, sha: str) -> _File | None:
        for files in self._commits.values():
            for f in files.values():
                if f.sha256 == sha:
                    return f
        return None

    def _handler_class(self, origin: str):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: a stopped server is really gone
            server_version = "FakeHub/1.0"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_HEAD(self) -> None:
                self._handle(head=True)

            def do_GET(self) -> None:
                self._handle(head=False)

            # ---------------------------------------------------------------------------------------------
            def _handle(self, head: bool) -> None:
                path = urlsplit(self.path).path
                with hub._lock:
                    hub.requests.append(Recorded(self.command, unquote(path), dict(self.headers.items()), origin))
                    fail = hub.fail_status
                try:
                    if fail is not None:
                        return self._error(fail, "ServerError", "fake hub failure", head)
                    if origin == "cdn":
                        return self._cdn(path, head)
                    m = _RESOLVE.match(path)
                    if m:
                        return self._resolve(unquote(m["repo"]), unquote(m["rev"]), unquote(m["file"]), head)
                    m = _API.match(path)
                    if m:
                        return self._api(unquote(m["repo"]), unquote(m["rev"] or "main"), head)
                    return self._error(404, None, "not found", head)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _error(self, status: int, code: str | None, message: str, head: bool,
                       extra: dict[str, str] | None = None) -> None:
                body = json.dumps({"error": message}).encode()
                self.send_response(status)
                if code:
                    self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", message)
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _lookup(self, repo: str, rev: str, filename: str | None, head: bool):
                with hub._lock:
                    if not hub._repo_known(repo):
                        self._error(404, "RepoNotFound", "Repository not found", head)
                        return None
                    commit = hub._resolve_commit(repo, rev)
                    if commit is None:
                        self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
                        return None
                    files = hub._commits[(repo, commit)]
                    if filename is None:
                        return commit, files
                    f = files.get(filename)
                    if f is None:
                        self._error(404, "EntryNotFound", f"{filename} does not exist on \"{rev}\"", head,
                                    {"X-Repo-Commit": commit})
                        return None
                    return commit, f

            def _resolve(self, repo: str, rev: str, filename: str, head: bool) -> None:
                found = self._lookup(repo, rev, filename, head)
                if found is None:
                    return
                commit, f = found
                if f.lfs:
                    # Like the Hub: redirect to the CDN, with the LFS object's identity in X-Linked-* headers.
                    location = f"{hub.cdn_endpoint}/cdn/{f.sha256}?filename={quote(filename)}"
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("X-Repo-Commit", commit)
                    self.send_header("ETag", f'"{git_blob_oid(b"pointer " + f.sha256.encode())}"')
                    self.send_header("X-Linked-Etag", f'"{f.sha256}"')
                    self.send_header("X-Linked-Size", str(len(f.data)))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._body(f, head, {"X-Repo-Commit": commit, "ETag": f'"{f.oid}"'})

            def _cdn(self, path: str, head: bool) -> None:
                m = _CDN.match(path)
                with hub._lock:
                    f = hub._by_sha256(m["sha"]) if m else None
                if f is None:
                    return self._error(404, None, "no such object", head)
                self._body(f, head, {"ETag": f'"{f.sha256}"'})

            def _api(self, repo: str, rev: str, head: bool) -> None:
                found = self._lookup(repo, rev, None, head)
                if found is None:
                    return
                commit, files = found
                info = {"id": repo, "modelId": repo, "sha": commit, "private": False,
                        "siblings": [{"rfilename": name, "size": len(f.data),
                                      **({"lfs": {"sha256": f.sha256, "size": len(f.data)}} if f.lfs else {})}
                                     for name, f in sorted(files.items())]}
                body = json.dumps(info).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _body(self, f: _File, head: bool, headers: dict[str, str]) -> None:
                data = f.data
                if hub.corrupt and data:
                    b = bytearray(data)
                    for i in range(len(b) // 2, min(len(b), len(b) // 2 + 64)):
                        b[i] ^= 0xFF
                    data = bytes(b)
                size = len(data)
                start, end, status = 0, size - 1, 200
                rng = self.headers.get("Range")
                if rng:
                    m = _RANGE.match(rng)
                    if not m or (not m[1] and not m[2]):
                        return self._error(416, None, "bad range", head, {"Content-Range": f"bytes */{size}"})
                    if m[1]:
                        start = int(m[1])
                        end = min(int(m[2]), size - 1) if m[2] else size - 1
                    else:  # suffix range: last N bytes
                        start = max(0, size - int(m[2]))
                    if start >= size or start > end:
                        return self._error(416, None, "range not satisfiable", head,
                                           {"Content-Range": f"bytes */{size}"})
                    status = 206
                chunk = data[start:end + 1]
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.send_header("Content-Length", str(len(chunk)))
                self.end_headers()
                if head:
                    return
                with hub._lock:
                    abort = hub.abort_gets != 0
                    if abort and hub.abort_gets > 0:
                        hub.abort_gets -= 1
                    if abort and hub.abort_then_status is not None:
                        hub.fail_status = hub.abort_then_status
                if abort:
                    # Full Content-Length was promised; send half and hang up.
                    self.wfile.write(chunk[: len(chunk) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

        return Handler
