"""The page (Gradio): one module per tab; thin handlers over the runner."""
