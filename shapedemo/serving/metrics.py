"""Prometheus metrics of one ``serve`` process (``GET /metrics``), in a registry of its own."""

from __future__ import annotations

from shapedemo.serving.batcher import Batcher, BatchRecord

__all__ = ["FRACTION_BUCKETS", "LATENCY_BUCKETS", "Metrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
FRACTION_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


class Metrics:
    """Prometheus metrics of one server, in a registry of its own (several apps may share a
    process, as in tests)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry()
        self.requests = Counter("shapedemo_requests", "HTTP requests answered, by route and status code", ["route", "code"], registry=r)
        self.latency = Histogram("shapedemo_request_latency_seconds", "Request latency in the server, arrival to answer", ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_delay = Histogram("shapedemo_queue_delay_seconds", "Time a request waited before its batch started", buckets=LATENCY_BUCKETS, registry=r)
        self.compute = Histogram("shapedemo_batch_compute_seconds", "Time a batch ran on the engine (all its calls)", buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("shapedemo_batch_size_texts", "Texts per batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=r)
        self.padding = Histogram("shapedemo_batch_padding_fraction", "Share of computed token slots that were padding, per batch", buckets=FRACTION_BUCKETS, registry=r)
        self.calls = Counter("shapedemo_calls", "Inference calls per compiled shape", ["shape", "packed"], registry=r)
        self.tokens = Counter("shapedemo_tokens", "Token slots: real (texts) and computed (with padding)", ["kind"], registry=r)
        self.compiled_under_traffic = Counter("shapedemo_compiled_under_traffic", "Shapes compiled after start-up (should stay 0)", registry=r)
        self.queue = Gauge("shapedemo_queue_texts", "Texts waiting for a batch", registry=r)
        self.gone = Counter("shapedemo_client_disconnects", "Clients that left before their answer (not server errors), by route and stage", ["route", "stage"], registry=r)
        self.dropped = Counter("shapedemo_dropped_requests", "Queued requests dropped before compute because their client left", registry=r)

    def watch(self, batcher: Batcher) -> None:
        """Observe every batch of ``batcher``; list its compiled shapes at 0 calls."""
        self.queue.set_function(lambda: batcher.queued_texts)
        for shape in batcher.shapes:
            self.calls.labels(shape="dynamic" if shape.dynamic else f"{shape.batch}x{shape.seq}", packed=str(shape.packed).lower())
        batcher.on_batch.append(self.observe_batch)
        batcher.on_drop.append(lambda record: self.dropped.inc())

    def observe_batch(self, record: BatchRecord) -> None:
        self.compute.observe(record.compute_ms / 1e3)
        self.batch_size.observe(record.texts)
        self.padding.observe(record.padding_fraction)
        self.tokens.labels(kind="real").inc(record.real_tokens)
        self.tokens.labels(kind="computed").inc(record.computed_tokens)
        if record.compiled_now:
            self.compiled_under_traffic.inc(record.compiled_now)
        for call in record.calls:
            shape = "dynamic" if call.dynamic else f"{call.batch}x{call.seq}"
            self.calls.labels(shape=shape, packed=str(call.packed).lower()).inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
