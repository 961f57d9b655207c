"""shapedemo: `python app.py` (and the Hugging Face Space entry point)."""

from shapedemo.app.page import build_demo, launch_kwargs

demo = build_demo()

if __name__ == "__main__":
    # one comparison at a time: two timing runs sharing 2 cores would distort each other
    demo.queue(default_concurrency_limit=1, max_size=32).launch(**launch_kwargs())
