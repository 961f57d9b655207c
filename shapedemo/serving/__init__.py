"""Serving: the batcher, the HTTP server (OpenAI and TEI routes, metrics), load tests, the in-process traffic stream."""
