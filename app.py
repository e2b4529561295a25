"""imgen's web app: ``python app.py`` serves it on http://127.0.0.1:7860 (GRADIO_SERVER_NAME/PORT override).

Tabs appear as their tasks land, in the order Explore · Inpaint · Denoise · Stylize · About (a tab whose
module is missing is left out).
"""
from __future__ import annotations

import importlib
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from imgen.device import configure_threads  # noqa: E402
from imgen.ui import about_tab  # noqa: E402
from imgen.ui.about_tab import device_line  # noqa: E402
from imgen.ui.common import UserError, escape_error_messages, max_upload_bytes, refuse_url_fetches  # noqa: E402

# (tab label, id, module under imgen.ui) in display order; a module that does not exist yet is skipped
TABS = [("Explore", "explore", "explore_tab"), ("Inpaint", "inpaint", "inpaint_tab"),
        ("Denoise", "denoise", "denoise_tab"), ("Stylize", "stylize", "stylize_tab")]


def available_tabs() -> list[tuple[str, str, object]]:
    out = []
    for label, tab_id, module in TABS:
        try:
            mod = importlib.import_module(f"imgen.ui.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"imgen.ui.{module}":
                raise  # the tab exists but something it imports is missing: a real error
            continue
        out.append((label, tab_id, mod))
    return out


CSS = """
footer {visibility: visible}
.imgen-footer {text-align: center; opacity: 0.7; font-size: 0.85em}
"""


SESSION_CAPACITY = 1000   # sessions whose state is kept in memory (Gradio's default, 10000, let RSS grow by ~2.2 GB)


class ImgenBlocks(gr.Blocks):
    """gr.Blocks with imgen's limits wherever it is launched (python app.py, tests, Spaces): an upload size that
    fits the pixel limit, a bounded number of sessions kept in memory, and a sentence for a request that
    leaves out arguments (Gradio's own error reaches API clients as ``error: null``); every error message is
    HTML-escaped and shortened, and no file input fetches a URL."""

    def launch(self, *args, **kwargs):
        escape_error_messages()
        refuse_url_fetches()
        kwargs.setdefault("max_file_size", max_upload_bytes())
        kwargs.setdefault("state_session_capacity", SESSION_CAPACITY)
        return super().launch(*args, **kwargs)

    def validate_inputs(self, block_fn, inputs):
        if len(inputs) < len(block_fn.inputs):
            raise UserError(f"This endpoint takes {len(block_fn.inputs)} values; the request sent {len(inputs)}. "
                           "See the API page (“Use via API”) for the list.")
        super().validate_inputs(block_fn, inputs)


def build_demo() -> gr.Blocks:
    configure_threads()
    # delete_cache: every hour, drop result and upload files older than an hour, so the disk never fills
    with ImgenBlocks(title="imgen", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# imgen · repair, denoise, explore and stylize images on a plain CPU")
        with gr.Tabs():
            for label, tab_id, mod in available_tabs():
                with gr.Tab(label, id=tab_id):
                    mod.build()
            with gr.Tab("About", id="about"):
                about_tab.build()
        gr.Markdown(device_line(), elem_classes="imgen-footer")
    demo.queue(max_size=32, default_concurrency_limit=1)
    return demo


def main() -> None:
    demo = build_demo()
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), css=CSS,
                theme=gr.themes.Soft(), footer_links=["api", "gradio", "settings"])


if __name__ == "__main__":
    main()
