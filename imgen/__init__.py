"""imgen: generative image models (denoise, inpaint, explore, stylize) as a package, a CLI and a Gradio app."""

__version__ = "0.1.0"
