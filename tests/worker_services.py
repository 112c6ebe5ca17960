"""A pytest plugin loaded before Django's settings (``-p tests.worker_services`` in
pyproject's addopts): under pytest-xdist each worker gets a Redis database of its own, as
pytest-django gives each its own test database. Redis holds the Celery queue, the channel
layer and the cache: shared, one worker's `celery worker` would take the other's tasks
(and look for their rows in the wrong database), and a page would hear the other's events.
The daphne and celery processes a worker starts inherit its environment, so they follow."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

#: Worker gwN uses Redis database FIRST + N: above the ones the suite and people use.
FIRST = 8


def _own_database(url: str, worker: str) -> str:
    index = int(worker.removeprefix("gw"))
    return urlunsplit(urlsplit(url)._replace(path=f"/{FIRST + index}"))


_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and os.environ.get("REDIS_URL"):
    os.environ["REDIS_URL"] = _own_database(os.environ["REDIS_URL"], _worker)
