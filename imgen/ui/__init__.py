"""The Gradio user interface: one module per tab. Handlers call the task modules and never touch tensors."""
