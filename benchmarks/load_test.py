"""Bounded load test of the web app: N concurrent API users mixing every tab, then a burst past the queue.

Run it::

    python -m benchmarks.load_test --users 16 --requests 6 --json out.json   # prints the report, writes JSON
    IMGEN_LOAD_TEST=1 python -m pytest tests/test_load.py -s              # the full 16-user run as a test
    python -m pytest tests/test_load.py                                   # only the small smoke run (< 40 s)

With no ``url`` the app (``app.build_demo()``) is started in this process on 127.0.0.1 at a free port and
closed afterwards; a given ``url`` must be on 127.0.0.1 / localhost (nothing else is ever contacted).

Two phases, each bounded by a request count and by ``timeout_s``:

1. **Load**: ``users`` threads, each with its own :class:`gradio_client.Client`, send ``requests_per_user``
   requests one after another, cycling through a fixed mix of the app's named endpoints with small valid
   inputs (a 128 px crop of a scikit-image sample): ``/denoise`` (trained U-Net, OpenCV NLM), ``/inpaint``
   (OpenCV Telea, and the trained network when one is registered), the Explore endpoints ``/sample``,
   ``/variations``, ``/interpolate`` (4 frames) and ``/project`` (10 steps) when an explorer model is
   installed, and ``/stylize`` when it exists. An endpoint the app does not expose is skipped (listed under
   ``skipped``). The mix is ordered so that ``users * requests_per_user >=`` the number of endpoints
   exercises every one of them. Outputs are checked (image sizes, frame counts, state JSON), not just calls.
2. **Burst**: one slow request (/denoise on a 1024 px image) occupies the model worker, then ``burst`` jobs
   (/denoise on a 256 px crop) are submitted at once from several clients with ``client.submit``. The
   app's queue holds ``max_size`` events (``demo.queue(max_size=32)`` in app.py); the rest must be refused
   politely. Then one normal request must still succeed.

How a refusal surfaces: Gradio's ``Queue.push`` answers ``POST /gradio_api/queue/join`` with HTTP 503
("Queue is full. Max size is N and size is N.") and gradio_client (2.x) turns that into
``gradio_client.utils.QueueError("Queue is full! Please try again.")``, raised by ``Job.result()`` /
``Client.predict()``. Those are counted as ``queue_full``; any other exception, a wrong output or a timeout
is an error (a healthy app has 0).

Memory: the resident set size of this process (VmRSS from /proc/self/status, or psutil), sampled every
0.2 s. With the in-process app that is the server (plus the small client threads); with a ``url`` it is
not measured.
"""
from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import numpy as np
from PIL import Image

QUEUE_FULL = "gradio_client.utils.QueueError: Queue is full! Please try again."
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
EXPLORE = ("/sample", "/variations", "/interpolate", "/project")
SMALL = 128          # px: the images the load phase sends
BURST_SIDE = 256     # px: the images the burst sends
BLOCKER_SIDE = 1024  # px: the slow request that holds the model worker while the burst arrives


# ------------------------------------------------------------------------------------------------ memory
def rss_mb() -> float | None:
    """Resident set size of this process in MiB (None where it cannot be read)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2 ** 20


class _RssSampler(threading.Thread):
    def __init__(self, every: float = 0.2):
        super().__init__(daemon=True, name="rss-sampler")
        self.every, self.peak, self.samples = every, None, 0
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            v = rss_mb()
            if v is not None:
                self.peak = v if self.peak is None else max(self.peak, v)
                self.samples += 1
            if self._halt.wait(self.every):
                return

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


# ------------------------------------------------------------------------------------------------ inputs
@dataclass
class Inputs:
    folder: Path
    small: str      # SMALL px RGB photo
    layer: str      # an RGBA brush stroke over it (the inpaint editor's layer)
    burst: str      # BURST_SIDE px photo
    blocker: str    # BLOCKER_SIDE px photo


def make_inputs(folder: Path) -> Inputs:
    from imgen.ui.common import sample_image
    photo = Image.open(sample_image("astronaut.png")).convert("RGB")   # 512 x 512
    folder.mkdir(parents=True, exist_ok=True)
    small = photo.crop((160, 40, 160 + SMALL, 40 + SMALL))
    layer = np.zeros((SMALL, SMALL, 4), np.uint8)
    layer[56:68, 20:108] = (255, 0, 255, 255)                        # a magenta stroke, as the brush draws it
    paths = {"small": folder / "small.png", "layer": folder / "layer.png", "burst": folder / "burst.png",
             "blocker": folder / "blocker.png"}
    small.save(paths["small"])
    Image.fromarray(layer, "RGBA").save(paths["layer"])
    photo.crop((128, 0, 128 + BURST_SIDE, BURST_SIDE)).save(paths["burst"])
    photo.resize((BLOCKER_SIDE, BLOCKER_SIDE), Image.LANCZOS).save(paths["blocker"])
    return Inputs(folder, **{k: str(v) for k, v in paths.items()})


# ------------------------------------------------------------------------------------------------ the mix
@dataclass
class Case:
    label: str
    api: str
    args: Callable[[Inputs], tuple]
    check: Callable[[Any, Inputs], None]


def _param(api: dict, endpoint: str, name: str) -> dict:
    for p in api[endpoint]["parameters"]:
        if p.get("parameter_name") == name:
            return p
    raise KeyError(f"{endpoint} has no parameter {name!r}")


def _choices(api: dict, endpoint: str, name: str) -> list:
    p = _param(api, endpoint, name)
    enum = (p.get("type") or {}).get("enum") or []
    return list(enum) or ([p["parameter_default"]] if p.get("parameter_has_default") else [])


def _size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def _expect(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def _check_denoise(out, inp: Inputs) -> None:
    (before, after), download, report = out
    _expect(_size(after) == (SMALL, SMALL) and _size(download) == (SMALL, SMALL), "denoise: wrong output size")
    _expect("σ" in report, "denoise: no report")


def _check_inpaint(out, inp: Inputs) -> None:
    (before, after), download, used, report = out
    _expect(_size(after) == (SMALL, SMALL) and _size(used) == (SMALL, SMALL), "inpaint: wrong output size")
    a, b = np.asarray(Image.open(inp.small).convert("RGB")), np.asarray(Image.open(after).convert("RGB"))
    hole = np.asarray(Image.open(used).convert("L")) > 127
    _expect(hole.any() and np.array_equal(a[~hole], b[~hole]), "inpaint: pixels outside the mask changed")


def _check_sample(out, inp: Inputs) -> None:
    img, download, state = out
    _expect(_size(img)[0] > 0 and "seed" in json.loads(state), "sample: bad image or state")


def _check_image(out, inp: Inputs) -> None:
    _expect(_size(out)[0] > 0, "no image")


def _check_interpolate(out, inp: Inputs) -> None:
    gif, strip = out
    with Image.open(gif) as g:
        _expect(g.n_frames == 4, f"interpolate: {g.n_frames} frames, not 4")
    _size(strip)


def _check_project(out, inp: Inputs) -> None:
    pair, state, report = out
    _size(pair[1])
    _expect("w" in json.loads(state), "project: no projected latent in the state")


def _generic_args(api: dict, endpoint: str) -> Callable[[Inputs], tuple]:
    """Arguments for an endpoint without a hand-written case (e.g. /stylize): images get the small photo,
    everything else its default (or Gradio's example value)."""
    from gradio_client import handle_file
    params = api[endpoint]["parameters"]

    def args(inp: Inputs) -> tuple:
        out = []
        for p in params:
            if p.get("component") in ("Image", "File", "Imageslider"):
                out.append(handle_file(inp.small))
            elif p.get("component") in ("Imageeditor", "ImageEditor"):
                out.append({"background": handle_file(inp.small), "layers": [], "composite": None})
            elif p.get("parameter_has_default"):
                out.append(p.get("parameter_default"))
            else:
                out.append(p.get("example_input"))
        return tuple(out)
    return args


def build_mix(api: dict) -> tuple[list[Case], dict[str, str]]:
    """The cases this app supports (one per endpoint first, then extra variants) and the skipped endpoints."""
    from gradio_client import handle_file
    first: list[Case] = []
    extra: list[Case] = []
    skipped: dict[str, str] = {}

    if "/denoise" in api:
        models = _choices(api, "/denoise", "model")
        trained = next((m for m in models if "classical" not in m.lower()), models[0])
        first.append(Case("denoise · trained U-Net", "/denoise",
                          lambda i: (handle_file(i.small), "Manual", 25, True, 25, trained, False), _check_denoise))
        nlm = next((m for m in models if "classical" in m.lower()), None)
        if nlm:
            extra.append(Case("denoise · OpenCV NLM", "/denoise",
                              lambda i: (handle_file(i.small), "Auto", 25, True, 15, nlm, False), _check_denoise))
    else:
        skipped["/denoise"] = "not in the app's API"

    if "/inpaint" in api:
        models = _choices(api, "/inpaint", "model")
        telea = next((m for m in models if "telea" in m.lower()), models[-1])

        def inpaint_args(model):
            return lambda i: ({"background": handle_file(i.small), "layers": [handle_file(i.layer)], "composite": None},
                              None, 0, 0, False, "Only the masked area at full resolution", 512, model)
        first.append(Case("inpaint · OpenCV Telea", "/inpaint", inpaint_args(telea), _check_inpaint))
        for m in models:
            if "classical" not in m.lower():
                extra.append(Case(f"inpaint · {m}", "/inpaint", inpaint_args(m), _check_inpaint))
    else:
        skipped["/inpaint"] = "not in the app's API"

    names = _choices(api, "/sample", "model") if "/sample" in api else []
    if not names:
        for e in EXPLORE:
            skipped[e] = "no explorer model installed" if e in api or "/sample" in api else "not in the app's API"
    else:
        model = names[0]
        n_dirs = len(api["/sample"]["parameters"]) - 4
        first.append(Case("explore · sample", "/sample", lambda i: (model, 3, 0.5, 0.7, *[0.0] * n_dirs),
                          _check_sample))
        if "/variations" in api:
            n_var = len(api["/variations"]["parameters"]) - 5
            first.append(Case("explore · variations", "/variations",
                              lambda i: (model, 4, 0, 0.7, 1.0, *[0.0] * n_var), _check_image))
        else:
            skipped["/variations"] = "not in the app's API"
        if "/interpolate" in api:
            first.append(Case("explore · interpolate", "/interpolate", lambda i: (model, 1, 2, 4, 0.7),
                              _check_interpolate))
        else:
            skipped["/interpolate"] = "not in the app's API"
        if "/project" in api:
            first.append(Case("explore · project", "/project", lambda i: (model, handle_file(i.small), 10),
                              _check_project))
        else:
            skipped["/project"] = "not in the app's API"

    if "/stylize" in api:
        first.append(Case("stylize", "/stylize", _generic_args(api, "/stylize"),
                          lambda out, inp: _expect(out is not None, "stylize: no output")))
    else:
        skipped["/stylize"] = "not in the app's API"
    return first + extra, skipped


# ------------------------------------------------------------------------------------------------ calls
def _call(client, case: Case, inputs: Inputs, deadline: float) -> dict:
    """One request: status ok / queue_full / error / timeout, latency from submit to result (s)."""
    from gradio_client.utils import QueueError
    t0 = time.perf_counter()
    rec = {"case": case.label, "api": case.api}
    try:
        job = client.submit(*case.args(inputs), api_name=case.api)
        try:
            out = job.result(timeout=max(deadline - time.monotonic(), 0.5))
        except TimeoutError:
            job.cancel()
            raise
        case.check(out, inputs)
        rec["status"] = "ok"
    except QueueError:
        rec["status"] = "queue_full"
    except TimeoutError:
        rec.update(status="timeout", error="no answer before the time limit")
    except Exception as e:  # noqa: BLE001 - everything else is what the test is looking for
        rec.update(status="error", error=f"{type(e).__name__}: {str(e)[:300]}")
    rec["latency_s"] = time.perf_counter() - t0
    return rec


def _client(url: str, folder: Path):
    from gradio_client import Client
    folder.mkdir(parents=True, exist_ok=True)
    return Client(url, verbose=False, analytics_enabled=False, download_files=str(folder))


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def _summary(records: list[dict], key: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in records:
        s = out.setdefault(r[key], {"count": 0, "ok": 0, "errors": 0, "queue_full": 0, "_lat": []})
        s["count"] += 1
        if r["status"] == "ok":
            s["ok"] += 1
            s["_lat"].append(r["latency_s"])
        elif r["status"] == "queue_full":
            s["queue_full"] += 1
        else:
            s["errors"] += 1
    for s in out.values():
        lat = s.pop("_lat")
        s.update(p50_s=_pct(lat, 50), p95_s=_pct(lat, 95), max_s=round(max(lat), 3) if lat else None)
    return out


def _errors(records: list[dict], limit: int = 10) -> list[str]:
    return [f"{r['case']}: {r['error']}" for r in records if r["status"] in ("error", "timeout")][:limit]


# ------------------------------------------------------------------------------------------------ phases
def _load_phase(url: str, cases: list[Case], inputs: Inputs, users: int, requests_per_user: int,
                timeout_s: float) -> dict:
    records: list[dict] = []
    lock = threading.Lock()
    deadline = [0.0, 0.0]   # (start, deadline), set when every client is connected

    def go() -> None:
        deadline[0] = time.monotonic()
        deadline[1] = deadline[0] + timeout_s
    start = threading.Barrier(users + 1, action=go, timeout=timeout_s)

    def user(u: int) -> None:
        client = None
        try:
            client = _client(url, inputs.folder / f"user{u}")
        except Exception as e:  # noqa: BLE001
            with lock:
                records.append({"case": "connect", "api": "(connect)", "status": "error", "latency_s": 0.0,
                                "error": f"{type(e).__name__}: {e}"})
        try:
            start.wait()
        except threading.BrokenBarrierError:   # a client could not connect in time: the others go anyway
            with lock:
                if not deadline[1]:
                    go()
        try:
            for r in range(requests_per_user if client else 0):
                if time.monotonic() >= deadline[1]:
                    break
                # request r of every user runs side by side: mix them, and cover each endpoint early
                case = cases[(r * users + u) % len(cases)]
                rec = _call(client, case, inputs, deadline[1])
                rec["user"] = u
                with lock:
                    records.append(rec)
        finally:
            if client is not None:
                client.close()

    threads = [threading.Thread(target=user, args=(u,), daemon=True, name=f"load-user-{u}") for u in range(users)]
    for t in threads:
        t.start()
    try:
        start.wait()                 # all clients connected: go
    except threading.BrokenBarrierError:
        with lock:
            if not deadline[1]:
                go()
    for t in threads:
        t.join(max(deadline[1] - time.monotonic(), 0) + 30)
    wall = time.monotonic() - deadline[0]
    planned = users * requests_per_user
    return {
        "users": users, "requests_per_user": requests_per_user, "planned": planned, "sent": len(records),
        "wall_s": round(wall, 2), "hit_time_limit": wall >= timeout_s or len(records) < planned,
        "ok": sum(r["status"] == "ok" for r in records),
        "errors": sum(r["status"] in ("error", "timeout") for r in records),
        "timeouts": sum(r["status"] == "timeout" for r in records),
        "queue_full": sum(r["status"] == "queue_full" for r in records),
        "requests_per_s": round(len(records) / wall, 2) if wall > 0 else None,
        "per_endpoint": _summary(records, "api"), "per_case": _summary(records, "case"),
        "error_samples": _errors(records),
    }


def _burst_phase(url: str, inputs: Inputs, api: dict, burst: int, n_clients: int, timeout_s: float) -> dict:
    from gradio_client import handle_file
    from gradio_client.utils import QueueError, Status
    models = _choices(api, "/denoise", "model")
    trained = next((m for m in models if "classical" not in m.lower()), models[0])
    burst_case = Case("burst · denoise 256 px", "/denoise",
                      lambda i: (handle_file(i.burst), "Manual", 25, True, 25, trained, False),
                      lambda out, i: _expect(_size(out[1]) == (BURST_SIDE, BURST_SIDE), "burst: wrong size"))
    blocker_case = Case("burst · blocker 1024 px", "/denoise",
                        lambda i: (handle_file(i.blocker), "Manual", 25, True, 25, trained, False),
                        lambda out, i: _expect(_size(out[1]) == (BLOCKER_SIDE,) * 2, "blocker: wrong size"))
    clients = [_client(url, inputs.folder / f"burst{k}") for k in range(max(1, n_clients))]
    try:
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        # hold the (single) model worker so that the burst meets a busy queue, not one that drains as it fills
        blocker = clients[0].submit(*blocker_case.args(inputs), api_name="/denoise")
        while time.monotonic() < t0 + 30 and not blocker.done():
            if blocker.status().code in (Status.PROCESSING, Status.PROGRESS, Status.ITERATING):
                break
            time.sleep(0.05)
        jobs = [(clients[k % len(clients)].submit(*burst_case.args(inputs), api_name="/denoise"), time.perf_counter())
                for k in range(burst)]
        records = []
        for (job, t_sub) in [(blocker, time.perf_counter())] + jobs:
            case = blocker_case if job is blocker else burst_case
            rec = {"case": case.label, "api": case.api}
            try:
                out = job.result(timeout=max(deadline - time.monotonic(), 0.5))
                case.check(out, inputs)
                rec["status"] = "ok"
            except QueueError:
                rec["status"] = "queue_full"
            except TimeoutError:
                job.cancel()
                rec.update(status="timeout", error="no answer before the time limit")
            except Exception as e:  # noqa: BLE001
                rec.update(status="error", error=f"{type(e).__name__}: {str(e)[:300]}")
            rec["latency_s"] = time.perf_counter() - t_sub
            records.append(rec)
        wall = time.monotonic() - t0
        burst_recs = records[1:]
        # afterwards: a normal request on a fresh connection must be answered
        after_client = _client(url, inputs.folder / "after")
        try:
            dn = next(c for c in build_mix(api)[0] if c.api == "/denoise")
            after = _call(after_client, dn, inputs, time.monotonic() + min(timeout_s, 120))
        finally:
            after_client.close()
    finally:
        for c in clients:
            c.close()
    return {
        "submitted": burst, "clients": len(clients), "wall_s": round(wall, 2),
        "completed": sum(r["status"] == "ok" for r in burst_recs),
        "queue_full": sum(r["status"] == "queue_full" for r in burst_recs),
        "errors": sum(r["status"] in ("error", "timeout") for r in records),
        "blocker": records[0]["status"],
        "refusal": QUEUE_FULL,
        "error_samples": _errors(records),
        "after_burst": {"ok": after["status"] == "ok", "status": after["status"],
                        "latency_s": round(after["latency_s"], 3), "error": after.get("error")},
    }


# ------------------------------------------------------------------------------------------------ server
def _import_app():
    try:
        import app
    except ModuleNotFoundError as e:
        root = Path(__file__).resolve().parents[1]
        if e.name != "app" or not (root / "app.py").is_file():
            raise
        sys.path.insert(0, str(root))
        import app
    return app


def _check_local(url: str) -> None:
    host = urlparse(url).hostname
    if host not in LOCAL_HOSTS:
        raise ValueError(f"the load test only drives an app on 127.0.0.1 / localhost, not {host!r}")


def run_load_test(users: int = 16, requests_per_user: int = 6, timeout_s: float = 300, url: str | None = None,
                  *, burst: int | None = None, burst_clients: int = 4, max_size: int | None = None,
                  demo=None) -> dict:
    """Drive the app with ``users`` concurrent API clients, then a queue burst; returns the report (a dict).

    url: an app already running on 127.0.0.1 (default: start ``app.build_demo()`` in this process).
    timeout_s: the time limit of each phase (load, burst); requests not answered by then are errors.
    burst: jobs submitted at once (default: the queue's max_size + 16; 48 for app.py's max_size 32).
    max_size: rebuild the in-process app's queue with this max_size (e.g. 4, to keep a test's burst small).
    demo: a built, not yet launched ``gr.Blocks`` to serve instead of ``app.build_demo()``.
    """
    if users < 1 or requests_per_user < 0:
        raise ValueError("users must be >= 1 and requests_per_user >= 0")
    launched = None
    sampler = None
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="imgen-load-") as tmp:
        inputs = make_inputs(Path(tmp) / "inputs")
        t_start = time.monotonic()
        try:
            if url is None:
                if demo is None:
                    demo = _import_app().build_demo()
                if max_size is not None:
                    q = getattr(demo, "_queue", None)
                    demo.queue(max_size=max_size, default_concurrency_limit=getattr(q, "default_concurrency_limit", 1))
                _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1",
                                        server_port=None)
                launched = demo
                queue_max = demo._queue.max_size
                sampler = _RssSampler(0.2)
                sampler.start()
            else:
                _check_local(url)
                queue_max = max_size
            rss_before = rss_mb() if launched else None
            probe = _client(url, Path(tmp) / "probe")
            try:
                api = probe.view_api(print_info=False, return_format="dict")["named_endpoints"]
            finally:
                probe.close()
            cases, skipped = build_mix(api)
            if not cases:
                raise RuntimeError(f"the app at {url} exposes none of the endpoints the load test knows")
            report.update(url=url, in_process=launched is not None, queue_max_size=queue_max, timeout_s=timeout_s,
                          endpoints=sorted({c.api for c in cases}), cases=[c.label for c in cases], skipped=skipped)
            report["load"] = _load_phase(url, cases, inputs, users, requests_per_user, timeout_s)
            if "/denoise" in api:
                n = burst if burst is not None else (queue_max or 32) + 16
                report["burst"] = _burst_phase(url, inputs, api, n, burst_clients, timeout_s)
            else:
                report["burst"] = None
                skipped["(burst)"] = "needs /denoise"
            if sampler is not None:
                sampler.stop()
            report["rss_mb"] = None if not launched else {
                "before": round(rss_before, 1), "after": round(rss_mb(), 1),
                "peak": round(sampler.peak, 1), "samples": sampler.samples, "every_s": 0.2,
                "source": "VmRSS of this process (the in-process app and the clients)"}
        finally:
            if sampler is not None and sampler.is_alive():
                sampler.stop()
            if launched is not None:
                launched.close()
        report["total_wall_s"] = round(time.monotonic() - t_start, 2)
    load, b = report["load"], report["burst"]
    exercised = {api for api, s in load["per_endpoint"].items() if s["ok"] > 0}
    report["endpoints_not_exercised"] = sorted(set(report["endpoints"]) - exercised)
    report["queue_full"] = load["queue_full"] + (b["queue_full"] if b else 0)
    report["errors"] = load["errors"] + (b["errors"] if b else 0) + (0 if not b or b["after_burst"]["ok"] else 1)
    report["passed"] = (report["errors"] == 0 and not report["endpoints_not_exercised"]
                        and (b is None or b["queue_full"] > 0))
    return report


def format_report(report: dict) -> str:
    """A short human-readable summary (the JSON report has everything)."""
    load, b = report["load"], report["burst"]
    lines = [f"load test of {report['url']} (queue max_size {report['queue_max_size']}): {load['users']} users x "
             f"{load['requests_per_user']} requests in {load['wall_s']} s, {load['ok']} ok, {load['errors']} errors, "
             f"{load['queue_full']} refused (queue full)"]
    for api, s in sorted(load["per_endpoint"].items()):
        lines.append(f"  {api:<13} n={s['count']:<3} errors={s['errors']} queue_full={s['queue_full']} "
                     f"p50={s['p50_s']} s p95={s['p95_s']} s")
    for api, why in report["skipped"].items():
        lines.append(f"  {api:<13} skipped: {why}")
    if b:
        lines.append(f"burst: {b['submitted']} jobs from {b['clients']} clients: {b['completed']} done, "
                     f"{b['queue_full']} refused, {b['errors']} errors; afterwards: {b['after_burst']['status']}")
    if report.get("rss_mb"):
        r = report["rss_mb"]
        lines.append(f"RSS: {r['before']} MiB before, {r['peak']} peak, {r['after']} after")
    lines.append("PASSED" if report["passed"] else "FAILED")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(prog="python -m benchmarks.load_test", description="bounded load test of the app")
    ap.add_argument("--users", type=int, default=16, help="concurrent API clients")
    ap.add_argument("--requests", type=int, default=6, help="requests per client")
    ap.add_argument("--timeout", type=float, default=300, help="time limit of each phase, s")
    ap.add_argument("--json", default=None, help="also write the report here")
    a = ap.parse_args()
    rep = run_load_test(users=a.users, requests_per_user=a.requests, timeout_s=a.timeout)
    print(format_report(rep))
    if a.json:
        Path(a.json).write_text(json.dumps(rep, indent=2))
