"""The Celery app of a center: broker, queues and the delivery guarantees.

Two queues per center, ``<prefix>submissions`` and ``<prefix>backlog``: uploads and
analyst submissions go to the first, the honeypot backlog to the second. A worker listens
to both, submissions first. On Redis the queues are read in that strict order
(``queue_order_strategy=priority``); on RabbitMQ a worker takes from its queues in turn,
so a submission waits for at most about one backlog task per free worker slot either way.
(Per-message priorities would need ``x-max-priority`` queues on RabbitMQ and priority
lists on Redis, with opposite meanings and no reordering of what a worker already
prefetched; two queues behave the same on both brokers.)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from kombu.entity import Exchange, Queue
from sqlalchemy.engine import make_url

from cleancenter.config import Settings

SUBMISSIONS = "submissions"
BACKLOG = "backlog"
QUEUES = (SUBMISSIONS, BACKLOG)  # the order a worker reads them in
PRIORITY_SUBMISSION = 9
PRIORITY_BACKLOG = 0
PRIORITIES = {"submission": PRIORITY_SUBMISSION, "backlog": PRIORITY_BACKLOG}
TASK_ANALYZE = "cleancenter.analyze"


class JobsError(Exception):
    """Jobs cannot be handed to the broker (no broker set, or it cannot be reached)."""


def queue_name(settings: Settings, short: str) -> str:
    return settings.job_queue_prefix + short


def queue_for(settings: Settings, priority: int) -> str:
    return queue_name(settings, SUBMISSIONS if priority >= PRIORITY_SUBMISSION else BACKLOG)


def safe_broker_url(url: str) -> str:
    """The broker URL without its password, for messages and `jobs status`."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def is_redis(url: str) -> bool:
    return url.split("://", 1)[0] in ("redis", "rediss", "sentinel")


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker runs each task (the same limits as the in-process pool)."""

    timeout: float = 120.0
    memory_limit: int = 2 << 30


def celery_config(settings: Settings, options: WorkerOptions) -> dict[str, Any]:
    if not settings.broker_url:
        raise JobsError("no broker_url is set (CLEANCENTER_BROKER_URL, the config file's "
                        "broker_url, e.g. redis://127.0.0.1:6379/0 or "
                        "amqp://guest:guest@127.0.0.1:5672//)")
    exchange = Exchange(settings.job_queue_prefix + "jobs",  # type: ignore[no-untyped-call]
                        type="direct")
    queues = [Queue(queue_name(settings, q), exchange,  # type: ignore[no-untyped-call]
                    routing_key=queue_name(settings, q)) for q in QUEUES]
    transport: dict[str, Any] = {}
    if is_redis(settings.broker_url):
        visibility = settings.broker_visibility_timeout
        transport = {
            # strict order: submissions before the backlog
            "queue_order_strategy": "priority",
            # an unacknowledged task of a dead worker goes back to its queue after this
            "visibility_timeout": visibility,
            "unacked_restore_interval": max(1, min(10, int(visibility / 10))),
            "unacked_restore_throttle": 1,
        }
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 10,
        "task_queues": queues,
        "task_default_queue": queue_name(settings, BACKLOG),
        "task_default_exchange": exchange.name,
        "task_default_routing_key": queue_name(settings, BACKLOG),
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        # the delivery guarantees: a task is acknowledged after it ran, and given back
        # to the broker when its worker process dies; a worker holds one task per slot
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # the in-task alarm stops a long analysis; this is the backstop for a stuck one
        "task_time_limit": int(options.timeout * 2 + 60),
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "cleancenter_timeout": options.timeout,
        "cleancenter_memory_limit": options.memory_limit,
    }


_apps: dict[tuple[object, ...], Any] = {}
_apps_lock = threading.Lock()


def celery_app(settings: Settings, options: WorkerOptions | None = None) -> Any:
    """The Celery app for these settings (one per distinct settings in a process)."""
    from cleancenter.jobs.tasks import register

    options = options or WorkerOptions()
    key = (settings.broker_url, settings.job_queue_prefix, settings.broker_visibility_timeout,
           str(settings.data_dir), settings.database_url, options)
    with _apps_lock:
        app = _apps.get(key)
        if app is None:
            from celery import Celery  # type: ignore[import-untyped]

            app = Celery("cleancenter", set_as_current=False)
            app.conf.update(celery_config(settings, options))
            register(app, settings, options)
            _apps[key] = app
        return app


def database_label(settings: Settings) -> str:
    return make_url(settings.database_url).render_as_string(hide_password=True)
