"""gunicorn settings: ``gunicorn config.wsgi`` reads this file from the working directory.

Threads (gthread) rather than gunicorn's default sync workers: a sync worker is held by one
client for as long as that client takes to send its request, so a few clients sending a body a
byte at a time stall a process. In gthread a kept-alive connection waits in the worker's
poller; a new connection waits for its first bytes in a thread (up to 5 s, then it goes back to
the poller), and a request that trickles holds its thread for as long as it trickles. Without a
proxy in front, a handful of slow clients per process therefore stalls the site (about as many
as ``GUNICORN_THREADS``: 6 clients sending a byte a second stalled 2 processes of 4 threads on
the reference machine, 20 stalled 3 of 8). In production a buffering proxy (README: nginx)
takes whole requests first and sends gunicorn only complete ones. Every value can be set in
the environment; these are the defaults.
"""

import gc
import multiprocessing
import os
import sys

from operations.logs import logging_config

bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
# Processes: one per core, each with a few threads for requests that wait on PostgreSQL or Redis.
# WEB_CONCURRENCY is the name platforms set. A request here is mostly Python: its waits (one
# PostgreSQL and one Redis round trip, a fraction of a millisecond each) are short next to its
# CPU, so more threads buy no throughput, only turns at the GIL: each thread's request waits for
# the others' CPU at every round trip, which is what the slowest requests are made of. On the
# reference machine (2 cores, bench/load.py side by side): 2 processes of 4 threads gave the
# subscribe endpoint a p99 of 63-79 ms at 32 connections where 3 of 8 gave 95-111 ms, at the same
# throughput (bench/README.md, "Load"). Raise GUNICORN_THREADS where requests wait on slower
# things, or where no buffering proxy stands in front (a client sending its body slowly holds a
# thread).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A worker silent this long (a request stuck in the main loop) is killed and replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On TERM, requests in flight get this long to finish.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Idle kept-alive connections wait in the poller, not in a thread, and are closed after this.
keepalive = 5
# Recycle workers now and then (with jitter so they do not restart together), a bound on any
# slow growth of a process's memory. Rarely: a recycle re-imports the app (about 0.5 s of CPU on
# a 2-core machine) and the requests in flight on that worker wait up to half a second. At a sale
# day's 1,000 requests a second over the 3 workers measured then, 10,000 recycled each worker
# every 30 s and put those waits into the p99 (bench/README.md, "Load": 108 ms at 8
# connections, 20 ms without).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "100000"))
max_requests_jitter = max_requests // 10


# How long a thread running Python keeps the GIL while another thread waits for it (Python's
# default is 5 ms). A subscribe waits for the GIL after each of its round trips; in a process
# also running a long request (an Integration API call of 10,000 entries is 0.3-1.4 s), it
# waited up to 5 ms each time. On the reference machine, subscribes at 8 connections beside two
# such calls in a loop (bench/load_beside_integration.py): 215-426 requests a second, p99
# 103-368 ms, with 5 ms; 337-557 a second, p99 64-117 ms, with 1 ms, the calls a fifth slower;
# alone, a few per cent at most, inside the machine's drift (bench/README.md, "Load").
GIL_SWITCH_INTERVAL_SECONDS = 0.001


def post_worker_init(worker: object) -> None:
    """Once a worker has loaded the app: move every object it holds into the garbage
    collector's permanent generation (``gc.freeze``), which full collections skip, and set the
    GIL's switch interval (``GIL_SWITCH_INTERVAL_SECONDS``). The app's modules, settings and
    URL patterns are some 110,000 objects that live as long as the worker; each full collection
    walked them all, a pause of all the worker's threads of about 80 ms on the reference
    machine, a few times a minute under load. Frozen, a full collection walks only what
    requests left since: 10-20 ms there in a single-threaded loop, a median of 42-71 ms rather
    than 93-104 ms under load (bench/README.md, "Load")."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)


# Headers: gunicorn's bounds, stated.
limit_request_line = 8190
limit_request_fields = 100
# Proxies allowed to set X-Forwarded-*: the local one by default.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# gunicornc's control socket: one fixed path per user by default, which two sites (or a test
# run next to a site) on one machine would fight over. Set GUNICORN_CONTROL_SOCKET to a path to
# have it.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "/run/gunicorn-unused.ctl")
control_socket_disable = "GUNICORN_CONTROL_SOCKET" not in os.environ

# Access log without query strings: %(U)s is the path alone, so the Shop API's ?email= never
# reaches a log. Remote address, request line, status, bytes, milliseconds, user agent.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
# gunicorn's own lines go through the project's logging (LOG_FORMAT, json by default here).
logconfig_dict = logging_config(
    log_format=os.environ.get("LOG_FORMAT", "json"), level=os.environ.get("LOG_LEVEL", "INFO")
)
