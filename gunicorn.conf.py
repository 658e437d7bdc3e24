"""gunicorn's settings, read from the working directory at start (``gunicorn cryptooracle.wsgi``).

Sized for a 1 GB dyno or instance: a worker imports TensorFlow when it loads the app
and holds ~0.8 GB after its first forecast (docs/benchmarks.md, "Memory"), so one
sync worker fits, not the several Heroku's buildpack sets in WEB_CONCURRENCY when it
is unset: set WEB_CONCURRENCY=1 there. ``max_requests`` recycles a worker before
cached models and fragmentation grow it past the dyno (with jitter, so several
workers never restart together). The app is not preloaded in the master: forking
after TensorFlow has started its threads can deadlock a child. Flags on the command
line override what is here.
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = f"0.0.0.0:{_int('PORT', 8000)}"
workers = _int("WEB_CONCURRENCY", 1)
threads = _int("GUNICORN_THREADS", 1)
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)
# The first forecast in a worker imports Keras and loads the model: seconds, not minutes.
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = 5
# Heartbeat files in memory, not on a container's overlay disk, which can stall them.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = "-"
errorlog = "-"
# Proxies (Heroku's router, the EB load balancer and nginx) set X-Forwarded-*; Django's
# SECURE_PROXY_SSL_HEADER and NUM_PROXIES read them, so gunicorn need not trust them.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
