"""shapedemo: `python app.py` (and the Hugging Face Space entry point)."""

from shapedemo.ui import build_demo

demo = build_demo()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=1, max_size=32).launch()
