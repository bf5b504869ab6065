"""``celery -A cleancenter.jobs.worker_app ...``: the app for Celery's own tools (inspect,
purge, flower, or a plain ``celery worker``), made from the settings (config file and
CLEANCENTER_* variables). ``cleancenter worker`` is the usual way to run a worker."""

from __future__ import annotations

from cleancenter.config import load_settings
from cleancenter.jobs.app import celery_app

app = celery_app(load_settings())
