"""Cold start and memory of the real app process.

    python -m benchmarks.app_startup [--warm]

Starts ``python app.py`` in a fresh process on a free 127.0.0.1 port, then measures: process start -> HTTP
200; process start -> the first API request answered (``/denoise`` on a small photo, including the model
load and the one-time ONNX export when the cache is cold); then one request per tab (whichever of
``/inpaint``, ``/sample``, ``/stylize`` exist) and the server's resident memory (VmRSS, VmHWM) after them.
``IMGEN_CACHE`` points at a fresh temporary folder unless ``warm_cache`` is set, so the ONNX exports count.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _proc_status(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS", "VmHWM")):
            k, v = line.split(":")
            out[k] = int(v.split()[0]) / 1024  # MiB
    return out


def measure(warm_cache: bool = False, timeout: float = 120) -> dict:
    from PIL import Image
    from gradio_client import Client, handle_file
    from imgen.ui.common import sample_image
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="imgen-bench-app-")
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": os.path.join(tmp, "gradio")}
    if not warm_cache:
        env["IMGEN_CACHE"] = os.path.join(tmp, "cache")
    photo = os.path.join(tmp, "photo.png")
    Image.open(sample_image("astronaut.png")).convert("RGB").resize((256, 256)).save(photo)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.perf_counter()
    log = open(os.path.join(tmp, "app.log"), "wb")   # a file, not a pipe nobody reads (a full pipe blocks the app)
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        while True:
            if proc.poll() is not None:
                log.flush()
                raise RuntimeError(f"app exited: {Path(tmp, 'app.log').read_text(errors='replace')[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                if time.perf_counter() - t0 > timeout:
                    raise TimeoutError("the app did not answer HTTP") from None
                time.sleep(0.05)
        http_up = time.perf_counter() - t0
        c = Client(url, verbose=False, analytics_enabled=False, download_files=os.path.join(tmp, "dl"))
        c.predict(handle_file(photo), "Manual", 25, False, 25, "Trained U-Net (imgen)", False, api_name="/denoise")
        first = time.perf_counter() - t0
        api = c.view_api(print_info=False, return_format="dict")["named_endpoints"]
        per_tab = {"/denoise": round(first, 2)}
        if "/inpaint" in api:
            import numpy as np
            layer = np.zeros((256, 256, 4), np.uint8)
            layer[100:140, 60:200, 3] = 255
            Image.fromarray(layer, "RGBA").save(os.path.join(tmp, "layer.png"))
            editor = {"background": handle_file(photo), "layers": [handle_file(os.path.join(tmp, "layer.png"))],
                      "composite": None}
            model = api["/inpaint"]["parameters"][-1].get("parameter_default") or "OpenCV Telea (classical)"
            t = time.perf_counter()
            c.predict(editor, None, 0, 0, False, "Only the masked area at full resolution", 512, model,
                      api_name="/inpaint")
            per_tab["/inpaint"] = round(time.perf_counter() - t, 2)
        if "/sample" in api:
            from imgen.ui.explore_tab import N_SLIDERS, model_names
            t = time.perf_counter()
            c.predict(model_names()[0], 1, 0, 0.7, *[0.0] * N_SLIDERS, api_name="/sample")
            per_tab["/sample"] = round(time.perf_counter() - t, 2)
        if "/stylize" in api:
            params = api["/stylize"]["parameters"]
            args = [handle_file(photo) if i == 0 or "image" in str(p.get("component", "")).lower()
                    else p.get("parameter_default") for i, p in enumerate(params)]  # photo doubles as reference
            t = time.perf_counter()
            c.predict(*args, api_name="/stylize")
            per_tab["/stylize"] = round(time.perf_counter() - t, 2)
        mem = _proc_status(proc.pid)
        c.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"http_up_s": round(http_up, 2), "first_request_answered_s": round(first, 2),
            "cache": "warm" if warm_cache else "cold (fresh IMGEN_CACHE: ONNX exports included)",
            "seconds_per_first_request": per_tab, "rss_mib_after_one_request_per_tab": round(mem.get("VmRSS", 0), 1),
            "peak_rss_mib": round(mem.get("VmHWM", 0), 1)}


if __name__ == "__main__":
    import argparse
    import json
    ap = argparse.ArgumentParser(prog="python -m benchmarks.app_startup", description="cold start and memory of app.py")
    ap.add_argument("--warm", action="store_true", help="keep the ONNX cache (default: a cold, empty one)")
    print(json.dumps(measure(warm_cache=ap.parse_args().warm), indent=2))
