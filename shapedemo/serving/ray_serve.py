"""``python -m shapedemo serve --ray``: the same server as replicas of a Ray Serve deployment.

Ray Serve does the routing (its HTTP proxy on ``--host:--port``), the replication, the autoscaling
and the restarts; each replica is the single-process server of ``shapedemo.serving.server``: its
own engine, batcher and compiled shapes, the same FastAPI routes (``create_app``), on one device
and its own CPU threads. A replica's constructor builds or reads the model, compiles and warms up
every shape of its strategy's compile set (``Batcher.start``), and returns only then: Ray routes
no request to a replica before it is ready, and its health check (``check_health``) fails under
the same condition as ``GET /health``'s 503, so Ray replaces a replica whose worker died.

``/metrics`` and ``/info`` answer for the whole application although Ray's proxy hands a request
to one replica: every replica sends its Prometheus text and its facts to a one-replica ``Board``
deployment each ``REPORT_S`` seconds and keeps the board's answer (every replica heard from
within ``STALE_S``), so any replica renders every replica's series, each with a ``replica``
label, and lists the replicas and their shapes. Another replica's series are at most
``REPORT_S`` old; the answering replica's are current.

Ray is imported inside functions only: the app and the single-process ``serve`` never need it
(``pip install 'shapedemo[ray]'``).

>>> RayOptions.build(replicas=2).deployment_options()["num_replicas"]
2
>>> replica_device("GPU", 1, ["CPU", "GPU.0", "GPU.1"]), replica_device("CPU", 1, ["CPU"])
('GPU.1', 'CPU')
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

from shapedemo.planning.plan import PlanError
from shapedemo.runtime.devices import parse_device
from shapedemo.serving.server import Metrics, ServeSettings, Service, create_app

__all__ = [
    "APP_NAME",
    "GatheredMetrics",
    "RayOptions",
    "RayService",
    "application",
    "build",
    "merge_metrics",
    "pin_cpus",
    "replica_device",
    "run_ray",
]

APP_NAME = "shapedemo"
"""The Ray Serve application's name (``serve status``, ``serve delete shapedemo``)."""

REPORT_S = 1.0
"""How often a replica sends its metrics and facts to the board."""

STALE_S = 6.0
"""A replica not heard from for this long is gone from ``/metrics`` and ``/info``."""

INSTALL_HINT = "serve --ray needs Ray Serve: pip install 'shapedemo[ray]' (or pip install 'ray[serve]')"


@dataclass(frozen=True)
class RayOptions:
    """Where and how many: the cluster's address (``"local"``: a Ray instance of this process on
    127.0.0.1), the replicas (fixed, or autoscaled within ``min_replicas..max_replicas`` on
    ``target_in_flight`` requests per replica) and the CPUs each replica reserves and runs on.

    >>> RayOptions.build(replicas=1, min_replicas=1, max_replicas=3).deployment_options()["autoscaling_config"]["max_replicas"]
    3
    >>> RayOptions.build(replicas=4, max_replicas=2)
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: --replicas 4 is outside --min-replicas 1 .. --max-replicas 2
    """

    address: str = "local"
    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_in_flight: int = 16
    replica_cpus: float = 1.0

    @classmethod
    def build(
        cls,
        *,
        address: str | None = "local",
        replicas: int = 1,
        min_replicas: int | None = None,
        max_replicas: int | None = None,
        target_in_flight: int = 16,
        replica_cpus: float = 1.0,
    ) -> "RayOptions":
        if not 1 <= replicas <= 1024:
            raise PlanError(f"--replicas {replicas} is outside 1..1024")
        if min_replicas is not None and not 0 <= min_replicas <= 1024:
            raise PlanError(f"--min-replicas {min_replicas} is outside 0..1024")
        if max_replicas is not None and not 1 <= max_replicas <= 1024:
            raise PlanError(f"--max-replicas {max_replicas} is outside 1..1024")
        if not 1 <= target_in_flight <= 10_000:
            raise PlanError(f"--target-in-flight {target_in_flight} is outside 1..10000")
        if not 0 < replica_cpus <= 1024:
            raise PlanError(f"--replica-cpus {replica_cpus} must be above 0")
        if min_replicas is not None or max_replicas is not None:
            low = min_replicas if min_replicas is not None else min(replicas, 1)
            high = max_replicas if max_replicas is not None else max(replicas, low)
            if not low <= replicas <= high:
                raise PlanError(f"--replicas {replicas} is outside --min-replicas {low} .. --max-replicas {high}")
            min_replicas, max_replicas = low, high
        return cls(
            address=address or "local", replicas=replicas, min_replicas=min_replicas,
            max_replicas=max_replicas, target_in_flight=target_in_flight, replica_cpus=float(replica_cpus),
        )

    @property
    def autoscaled(self) -> bool:
        return self.max_replicas is not None

    def deployment_options(self) -> dict[str, Any]:
        """Keywords of ``Replica.options``: the replica count or the autoscaling bounds, the
        requests a replica holds at once (four times the target: the batcher groups them) and
        the CPUs Ray reserves for it."""
        options: dict[str, Any] = {
            "max_ongoing_requests": 4 * self.target_in_flight,
            "ray_actor_options": {"num_cpus": self.replica_cpus},
            "health_check_period_s": 2.0,
            "health_check_timeout_s": 30.0,
            "graceful_shutdown_timeout_s": 10.0,
        }
        if self.autoscaled:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas, "max_replicas": self.max_replicas,
                "initial_replicas": self.replicas, "target_ongoing_requests": self.target_in_flight,
            }
        else:
            options["num_replicas"] = self.replicas
        return options


# ---- one replica: its device and CPU threads -------------------------------------------------


def replica_device(device: str, local_rank: int, available: Sequence[str]) -> str:
    """The device of the replica ranked ``local_rank`` on its machine: a device family given
    without an index (``GPU``, ``NPU``) and present several times (``GPU.0``, ``GPU.1``) is
    dealt out one per replica; anything else (``CPU``, ``GPU.1``, ``AUTO:...``) is kept.

    >>> replica_device("NPU", 3, ["CPU", "NPU"]), replica_device("GPU", 2, ["GPU.0", "GPU.1"])
    ('NPU', 'GPU.0')
    """
    family = [d for d in available if parse_device(d).type == device and "." in d]
    if device == "CPU" or len(family) < 2:
        return device
    return sorted(family)[local_rank % len(family)]


def pin_cpus(cpus: int, local_rank: int) -> list[int] | None:
    """Pin this process to ``cpus`` cores of its own (the ``local_rank``-th group of the cores it
    may use), where the machine has enough for every replica up to this rank not to overlap; the
    cores, or None (left unpinned)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    start = local_rank * cpus
    if cpus < 1 or start + cpus > len(allowed):
        return None
    cores = allowed[start : start + cpus]
    # every thread of the process (0 is only the calling one); threads made later inherit it
    tasks = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]
    for tid in tasks:
        try:
            os.sched_setaffinity(int(tid), cores)
        except OSError:  # a thread that ended meanwhile
            pass
    return cores


# ---- metrics of every replica ----------------------------------------------------------------


def merge_metrics(texts: Mapping[str, str]) -> str:
    """Prometheus texts of several replicas as one, every sample labelled ``replica``.

    >>> print(merge_metrics({"b": "# HELP x_total X\\n# TYPE x_total counter\\nx_total 2.0\\n",
    ...                      "a": "# HELP x_total X\\n# TYPE x_total counter\\nx_total 1.0\\n"}), end="")
    # HELP x_total X
    # TYPE x_total counter
    x_total{replica="a"} 1.0
    x_total{replica="b"} 2.0
    """
    from prometheus_client.exposition import generate_latest
    from prometheus_client.metrics_core import Metric
    from prometheus_client.parser import text_string_to_metric_families
    from prometheus_client.samples import Sample

    families: dict[str, Metric] = {}
    for replica in sorted(texts):
        for family in text_string_to_metric_families(texts[replica]):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
            for s in family.samples:
                merged.samples.append(Sample(s.name, {"replica": replica, **s.labels}, s.value, s.timestamp, s.exemplar))

    class Merged:
        def collect(self) -> Any:
            return iter(families.values())

    return generate_latest(Merged()).decode("utf-8")  # type: ignore[arg-type]


class GatheredMetrics(Metrics):
    """A replica's own metrics (what it observes) that render as every replica's: its own
    series, current, and the others' as the board last gave them."""

    def __init__(self, replica: str) -> None:
        super().__init__()
        self.replica = replica
        self.peers: dict[str, dict[str, Any]] = {}

    def own_text(self) -> str:
        return super().render()[0].decode("utf-8")

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST

        texts = {rid: entry["metrics"] for rid, entry in self.peers.items() if rid != self.replica}
        texts[self.replica] = self.own_text()
        return merge_metrics(texts).encode("utf-8"), CONTENT_TYPE_LATEST


@dataclass
class RayService(Service):
    """The single-process service, whose ``/info`` also lists every replica and its shapes."""

    facts: dict[str, Any] | None = None

    def replica_facts(self) -> dict[str, Any]:
        metrics = self.metrics
        return {
            **(self.facts or {}),
            "state": self.batcher.state,
            "ready": self.batcher.ready,
            "startup_s": self.batcher.startup_s,
            "compiled_shapes": self.batcher.shape_info,
            "compiled_under_traffic": metrics.registry.get_sample_value("shapedemo_compiled_under_traffic_total") or 0.0,
        }

    def info(self) -> dict[str, Any]:
        out = super().info()
        own = self.replica_facts()
        peers = getattr(self.metrics, "peers", {})
        rows = {rid: entry["info"] for rid, entry in peers.items()}
        rows[own["replica"]] = {**own, "reported_s_ago": 0.0}
        out["serving"] = "ray"
        out["answered_by"] = own["replica"]
        out["replicas"] = [rows[rid] for rid in sorted(rows)]
        return out


def build_service(settings: ServeSettings, *, replica: str, local_rank: int, cpus: float, log: Callable[[str], None]) -> RayService:
    """A replica's service: its device, its cores pinned, its engine's threads set to its CPUs."""
    import openvino as ov

    from shapedemo.model import default_spec, load_model
    from shapedemo.runtime.engine import Engine

    threads = max(1, int(cpus))
    cores = pin_cpus(threads, local_rank)
    core = ov.Core()
    device = replica_device(settings.device, local_rank, core.available_devices)
    loaded = load_model(settings.model or default_spec())
    engine = Engine(loaded, device=device, precision=settings.precision, core=core, ov_config=settings.ov_config)
    if parse_device(engine.device).type == "CPU":
        engine.config["INFERENCE_NUM_THREADS"] = threads
    settings = replace(settings, device=device)
    import ray

    context = ray.get_runtime_context()
    facts = {
        "replica": replica, "node_ip": ray.util.get_node_ip_address(), "node_id": context.get_node_id(),
        "pid": os.getpid(), "device": engine.device, "precision": engine.inference_precision,
        "cpu_threads": threads, "pinned_cores": cores, "local_rank": local_rank,
    }
    service = RayService.from_engine(settings, engine, log=log, metrics=GatheredMetrics(replica))
    service.facts = facts
    return service


# ---- the deployments (classes made on first use: Ray is imported only then) -----------------


def _deployments() -> tuple[Any, Any]:
    from ray import serve

    quiet = {"enable_access_log": False}  # a line per request (and per report) otherwise

    @serve.deployment(name="board", num_replicas=1, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000, logging_config=quiet)
    class Board:
        """Every replica's last metrics text and facts; forgets one silent for ``STALE_S``."""

        def __init__(self) -> None:
            self.entries: dict[str, dict[str, Any]] = {}

        def exchange(self, replica: str, metrics: str, info: dict[str, Any]) -> dict[str, dict[str, Any]]:
            now = time.monotonic()
            self.entries[replica] = {"metrics": metrics, "info": info, "seen": now}
            self.entries = {rid: e for rid, e in self.entries.items() if now - e["seen"] <= STALE_S}
            return {
                rid: {"metrics": e["metrics"], "info": {**e["info"], "reported_s_ago": round(now - e["seen"], 2)}}
                for rid, e in self.entries.items()
            }

    @serve.deployment(name="embedder", logging_config=quiet)
    @serve.ingress()
    class Replica:
        """One single-process server: ready (every shape compiled, warmed up) before Ray
        routes to it; the routes of ``create_app``."""

        async def __init__(self, settings: ServeSettings, board: Any, cpus: float = 1.0) -> None:
            context = serve.get_replica_context()
            self.replica = context.replica_id.unique_id
            rank = getattr(context, "rank", None)
            local_rank = int(getattr(rank, "local_rank", 0) or 0)
            self.board = board

            def log(line: str) -> None:
                print(f"[replica {self.replica}] {line}", file=sys.stderr, flush=True)

            self.service = await asyncio.to_thread(build_service, settings, replica=self.replica, local_rank=local_rank, cpus=cpus, log=log)
            self.service.batcher.start()
            await asyncio.to_thread(self.service.batcher.wait_ready)  # a failed start-up raises: Ray retries, then reports
            await self._report()
            self._reporter = asyncio.get_running_loop().create_task(self._report_forever())

        def __serve_build_asgi_app__(self) -> Any:
            return create_app(self.service)

        async def check_health(self) -> None:
            batcher = self.service.batcher
            if not batcher.ready:
                raise RuntimeError(f"replica {self.replica} is {batcher.state}: {batcher.error or 'its worker is not running'}")

        async def _report(self) -> None:
            metrics = self.service.metrics
            metrics.peers = await self.board.exchange.remote(self.replica, metrics.own_text(), self.service.replica_facts())

        async def _report_forever(self) -> None:
            while True:
                await asyncio.sleep(REPORT_S)
                try:
                    await self._report()
                except Exception as exc:  # the board restarting: the next round retries
                    print(f"[replica {self.replica}] report to the board failed: {exc}", file=sys.stderr, flush=True)

        def __del__(self) -> None:
            self.service.batcher.stop(timeout=5.0)

    return Board, Replica


def application(settings: ServeSettings, options: RayOptions) -> Any:
    """The Ray Serve application: the replicas (ingress) and their board."""
    board, replica = _deployments()
    return replica.options(**options.deployment_options()).bind(settings, board.bind(), options.replica_cpus)


_ARG_TYPES: dict[str, Callable[[Any], Any]] = {
    "model": str, "device": str, "precision": str, "strategy": str, "seq_buckets": str, "batch_sizes": str,
    "max_seq": int, "pack_seq": int, "max_wait_ms": float, "max_batch_tokens": int, "max_texts": int,
    "max_queue": int, "truncate": lambda v: str(v).lower() in ("1", "true", "yes"), "config_file": str,
    "replicas": int, "min_replicas": int, "max_replicas": int, "target_in_flight": int, "replica_cpus": float,
}
_RAY_ARGS = ("replicas", "min_replicas", "max_replicas", "target_in_flight", "replica_cpus")


def build(args: Mapping[str, Any]) -> Any:
    """An application builder for Ray Serve config files (``import_path:
    shapedemo.serving.ray_serve:build``, KubeRay's ``RayService``, ``serve run``): ``args`` are
    ``serve``'s flags with underscores (``model``, ``strategy``, ``seq_buckets``, ...,
    ``replicas``, ``min_replicas``, ``max_replicas``, ``target_in_flight``, ``replica_cpus``);
    the proxy's host and port come from the config's ``http_options``.

    >>> build({"replicas": "two"})
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: serve args: replicas='two' is not a int
    """
    unknown = sorted(set(args) - set(_ARG_TYPES))
    if unknown:
        raise PlanError(f"serve args: unknown {', '.join(unknown)}; known: {', '.join(_ARG_TYPES)}")
    values: dict[str, Any] = {}
    for key, value in args.items():
        try:
            values[key] = _ARG_TYPES[key](value)
        except (TypeError, ValueError):
            raise PlanError(f"serve args: {key}={value!r} is not a {getattr(_ARG_TYPES[key], '__name__', 'value')}") from None
    options = RayOptions.build(address=None, **{k: values.pop(k) for k in _RAY_ARGS if k in values})
    return application(ServeSettings.build(**values), options)


def _serve_proxy(ray: Any) -> tuple[str, int] | None:
    """Host and port of the proxy of a Ray Serve already running on the cluster, or None."""
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    try:
        controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    except ValueError:
        return None
    http = ray.get(controller.get_http_config.remote())
    return str(http.host), int(http.port)


def _free_port(host: str) -> int:
    """A port free on ``host`` now (Ray's proxy takes a number, not 0)."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


# ---- the command ----------------------------------------------------------------------------


def run_ray(settings: ServeSettings, options: RayOptions, *, log: Callable[[str], None] | None = None) -> int:
    """Connect to the cluster (or start one on 127.0.0.1), start Ray Serve's proxy on
    ``settings.host:port`` (or use the one already running there), deploy, serve until SIGINT or
    SIGTERM, then delete the application; stop Ray Serve if it was started here, and disconnect
    (which stops the Ray instance of ``--ray`` without an address)."""
    local = options.address == "local"
    if local:  # read when Ray is imported: the node's address stays 127.0.0.1 (else Ray swaps in the LAN one)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        from ray import serve
    except ImportError:
        raise PlanError(INSTALL_HINT) from None

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    log = log or say
    port = settings.port or _free_port(settings.host)
    import logging

    try:
        if local:
            ray.init(
                address="local", _node_ip_address="127.0.0.1", include_dashboard=False,
                logging_level=logging.WARNING, configure_logging=True,
            )
        else:
            ray.init(address=options.address, logging_level=logging.WARNING)
    except Exception as exc:
        raise PlanError(f"cannot reach the Ray cluster at {options.address}: {' '.join(str(exc).split())[:300]}") from None
    running = _serve_proxy(ray)
    if running is not None and (settings.port, settings.host) not in ((running[1], running[0]), (0, running[0])):
        ray.shutdown()
        raise PlanError(
            f"Ray Serve already runs on this cluster with its proxy on {running[0]}:{running[1]}: give --host {running[0]} "
            f"--port {running[1]}, or stop it first (serve shutdown)"
        )
    port = running[1] if running is not None else port
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        serve.start(http_options={"host": settings.host, "port": port})
        count = f"{options.min_replicas}..{options.max_replicas} replicas (starting with {options.replicas})" if options.autoscaled else f"{options.replicas} replica(s)"
        log(
            f"serve --ray: Ray Serve's proxy listening on http://{settings.host}:{port}; deploying {count} on "
            f"{'a local Ray instance' if local else options.address}, each takes traffic once its shapes are compiled"
        )
        try:
            serve.run(application(settings, options), name=APP_NAME, route_prefix="/")
        except Exception as exc:
            raise PlanError(f"start-up failed: {' '.join(str(exc).split())[-400:]}") from None
        log(f"serve --ray: ready on http://{settings.host}:{port} ({APP_NAME}: {count})")
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            if running is None:  # Serve was started here: stop it (its proxy, its controller)
                serve.shutdown()
            else:
                serve.delete(APP_NAME)
        finally:
            ray.shutdown()
    return 0
