"""``/metrics``: Prometheus text behind METRICS_TOKEN, with figures from every process."""

import math
import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from klaviyo_sync.ratelimit import RateLimiter
from klaviyo_sync.services.stock import stock_figures_push
from klaviyo_sync.services.subscriptions import subscription_push, subscription_push_failed
from operations import metrics
from operations.metrics import metric_count, metric_observe, metrics_store
from shop.services import StockEntry, stock_entries_apply
from tests.operations.conftest import subscribe_in_sweden
from tests.redis_server import free_port
from tests.worker import PROJECT_ROOT, worker_environment

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-5f4dcc3b"


@pytest.fixture(autouse=True)
def _metrics_open(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client: Client | None = None) -> dict[tuple[str, tuple], float]:
    """``{(sample name, sorted labels): value}`` from an authorised scrape."""
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def key(name: str, **labels: str) -> tuple[str, tuple]:
    return name, tuple(sorted(labels.items()))


def test_metrics_are_closed_while_no_token_is_set(settings):
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 403
    assert set(response.json()["errors"]) == {"authorization"}


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"]
)
def test_metrics_refuse_a_missing_or_wrong_token_with_401(header):
    headers = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client().get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()["errors"]) == {"authorization"}
    assert TOKEN not in response.content.decode()


def test_web_requests_are_counted_and_timed_by_route_and_status():
    client = Client()
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no/such/page?email=ann@example.com")
    samples = scrape(client)
    ok = {"method": "GET", "route": "healthz", "status": "200"}
    assert samples[key("backinstock_http_request_duration_seconds_count", **ok)] == 2
    assert samples[key("backinstock_http_request_duration_seconds_bucket", le="+Inf", **ok)] == 2
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert samples[key("backinstock_http_request_duration_seconds_count", **unmatched)] == 1
    assert "ann@example.com" not in str(samples)


def test_a_cors_preflight_is_counted_under_the_route_it_asks_about(settings):
    """django-cors-headers answers a preflight before Django resolves the URL."""
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]
    client = Client()
    response = client.options(
        "/api/checkout-api/back-in-stock-subscription",
        HTTP_ORIGIN="https://shop.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://shop.example.com"
    samples = scrape(client)
    preflight = {
        "method": "OPTIONS",
        "route": "api/checkout-api/back-in-stock-subscription",
        "status": "200",
    }
    assert samples[key("backinstock_http_request_duration_seconds_count", **preflight)] == 1


def restocks_counted_by_another_process(amount: int, **environment: str) -> None:
    """A separate Python process (as a worker on another machine) counts ``amount`` restocks."""
    code = (
        "import django; django.setup();"
        "from operations.metrics import metric_count;"
        f"metric_count('restocks', {amount})"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env={**worker_environment(), **environment},
        check=True,
        timeout=60,
    )


def test_figures_recorded_by_another_process_are_shown():
    """A worker on another machine adds to the same counters the web process shows."""
    restocks_counted_by_another_process(3)
    metric_count("restocks", 2)
    assert scrape()[("backinstock_restocks_total", ())] == 5


def test_figures_stored_by_the_release_before_keep_adding_up():
    """A series' stored field is the JSON array earlier releases wrote, so after an upgrade the
    counts go on where they were instead of a second series beside them."""
    metrics_store().apply(
        [('["subscriptions_accepted","total",[["outcome","new"]],""]', 4.0)],
        batch_id="written-by-the-release-before",
    )
    metric_count("subscriptions_accepted", outcome="new")
    assert scrape()[key("backinstock_subscriptions_accepted_total", outcome="new")] == 5


def test_histograms_count_each_observation_in_its_bucket_and_the_sum():
    metric_observe("catalog_sync_duration_seconds", 3.0, full=True, state="completed")
    metric_observe("catalog_sync_duration_seconds", 100.0, full=True, state="completed")
    samples = scrape()
    labels = {"full": "true", "state": "completed"}

    def bucket(le: str) -> float:
        return samples[key("backinstock_catalog_sync_duration_seconds_bucket", le=le, **labels)]

    assert (bucket("1.0"), bucket("5.0"), bucket("300.0"), bucket("+Inf")) == (0, 1, 2, 2)
    assert samples[key("backinstock_catalog_sync_duration_seconds_sum", **labels)] == 103.0


def test_an_unknown_metric_or_wrong_labels_are_refused():
    with pytest.raises(KeyError):
        metric_count("no_such_metric")
    with pytest.raises(ValueError, match="labels"):
        metric_count("subscription_pushes", result="x")


def test_an_unreachable_redis_loses_figures_but_fails_nothing_and_quickly(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    for _ in range(50):
        metric_count("restocks")
    assert Client().get("/healthz").status_code == 200
    assert time.monotonic() - started < 1.0
    samples = scrape()
    assert samples[("backinstock_metrics_source_up", (("source", "redis"),))] == 0
    assert samples[("backinstock_metrics_source_up", (("source", "database"),))] == 1


def test_without_redis_the_figures_are_kept_in_the_process(settings):
    settings.REDIS_URL = ""
    metrics_store().clear()
    metric_count("restocks", 4)
    assert scrape()[("backinstock_restocks_total", ())] == 4


def test_the_waiting_shared_limiter_adds_its_wait_by_rate_class(settings):
    limiter = RateLimiter(limits={"catalog_write": (1, 100)}, sleep=lambda seconds: None)
    limiter.acquire("catalog_write")
    waited = limiter.acquire("catalog_write")
    assert waited > 0
    value = scrape()[
        ("backinstock_klaviyo_rate_limiter_wait_seconds_total", (("rate_class", "catalog_write"),))
    ]
    assert value == pytest.approx(waited, rel=0.01)


@pytest.mark.usefixtures("demo_catalog", "back_in_stock_on")
def test_domain_figures_follow_a_subscription_from_acceptance_to_klaviyo_and_a_restock(sandbox):
    ann, bob = subscribe_in_sweden("ann@example.com"), subscribe_in_sweden("bob@example.com")
    subscribe_in_sweden("ann@example.com")
    before = scrape()
    assert before[("backinstock_subscriptions_accepted_total", (("outcome", "new"),))] == 2
    assert before[("backinstock_subscriptions_accepted_total", (("outcome", "repeat"),))] == 1
    assert before[("backinstock_subscriptions", (("status", "pending"),))] == 2
    assert before[("backinstock_subscriptions_pending_oldest_age_seconds", ())] >= 0

    subscription_push(subscription_id=ann)
    subscription_push_failed(subscription_id=bob, reason="refused")
    stock_entries_apply(entries=[StockEntry("HD-1-BLK-M", "Stockholm", physical=40, allocated=0)])
    stock_figures_push(size_ids=[23400])

    after = scrape()
    assert after[("backinstock_subscription_pushes_total", (("outcome", "subscribed"),))] == 1
    assert after[("backinstock_subscription_pushes_total", (("outcome", "failed"),))] == 1
    assert after[("backinstock_subscriptions", (("status", "pending"),))] == 0
    assert after[("backinstock_subscriptions_pending_oldest_age_seconds", ())] == 0
    assert after[("backinstock_stock_figures_pushed_total", ())] == 1
    assert after[("backinstock_restocks_total", ())] == 1
    created = (("rate_class", "back_in_stock"), ("status", "202"))
    assert after[("backinstock_klaviyo_requests_total", created)] == 1


def _stored_restocks() -> float:
    """The restock counter as Redis holds it, without sending this process's own first."""
    return sum(value for field, value in metrics_store().read().items() if "restocks" in field)


def test_a_process_sums_its_figures_and_sends_them_together_within_the_flush_interval(settings):
    settings.METRICS_FLUSH_SECONDS = 0.3
    before = _stored_restocks()
    for _ in range(5):
        metric_count("restocks")

    held = _stored_restocks()
    deadline = time.monotonic() + 3
    while _stored_restocks() == before and time.monotonic() < deadline:
        time.sleep(0.05)

    assert held == before, "a figure is sent by the process's thread, not by the caller"
    assert _stored_restocks() == before + 5


def test_a_scrape_includes_what_its_own_process_holds(settings):
    settings.METRICS_FLUSH_SECONDS = 60
    metric_count("restocks", 7)
    assert scrape()[("backinstock_restocks_total", ())] == 7


def test_a_process_that_exits_sends_what_it_holds():
    restocks_counted_by_another_process(3, METRICS_FLUSH_SECONDS="60")
    assert _stored_restocks() == 3


def test_figures_recorded_while_redis_is_down_are_sent_once_it_is_back(settings, monkeypatch):
    from tests.redis_server import PrivateRedis

    private = PrivateRedis().start()
    try:
        settings.REDIS_URL = f"{private.url}/0"
        settings.METRICS_FLUSH_SECONDS = 0.2
        monkeypatch.setattr(metrics, "OUTAGE_PAUSE_SECONDS", 0.5)
        private.stop()
        for _ in range(5):
            metric_count("restocks")
        time.sleep(0.6)  # a send or two failed meanwhile

        private.start()
        deadline = time.monotonic() + 5
        while _stored_restocks() != 5 and time.monotonic() < deadline:
            time.sleep(0.1)

        assert _stored_restocks() == 5
    finally:
        private.stop()


def test_a_counter_of_fractions_takes_a_whole_amount_and_loses_nothing_beside_it(settings):
    """The rate limiter's waits are seconds: a whole second added to a field that holds a
    fraction, in one batch with other figures, is added, and so are the others."""
    settings.METRICS_FLUSH_SECONDS = 60  # sent by hand below
    metric_count("klaviyo_rate_limiter_wait_seconds", 0.25, rate_class="profiles")
    metrics.metrics_send_now()
    metric_count("klaviyo_rate_limiter_wait_seconds", 1.0, rate_class="profiles")
    metric_count("subscriptions_accepted", 5, outcome="new")
    metrics.metrics_send_now()

    figures = scrape()
    wait = key("backinstock_klaviyo_rate_limiter_wait_seconds_total", rate_class="profiles")
    assert figures[wait] == 1.25
    assert figures[key("backinstock_subscriptions_accepted_total", outcome="new")] == 5


def test_a_counter_refuses_an_amount_that_is_not_a_finite_number():
    for amount in (math.inf, -math.inf, math.nan, 10**400, -(10**400)):
        with pytest.raises(ValueError, match="finite"):
            metric_count("restocks", amount)
        with pytest.raises(ValueError, match="finite"):
            metric_observe(
                "http_request_duration_seconds", amount, method="GET", route="r", status=200
            )


def test_a_counter_refuses_a_negative_amount_and_keeps_what_it_had(settings):
    """A Prometheus counter only goes up: a decrease reads as a restart of the process."""
    settings.METRICS_FLUSH_SECONDS = 60  # sent by hand below
    metric_count("restocks", 2)
    for amount in (-1, -0.5):
        with pytest.raises(ValueError, match="negative"):
            metric_count("restocks", amount)
    metrics.metrics_send_now()
    assert scrape()[("backinstock_restocks_total", ())] == 2


# A process whose send fails while its Redis is stopped, and that exits once Redis runs again
# but before the pause after the failure is over (a worker recycled, a deploy, after a stall).
EXIT_AFTER_STALL = (
    "import sys, django; django.setup();"
    "from operations.metrics import metric_count, metrics_send_now;"
    "metric_count('restocks', 3); metrics_send_now(); print('sent', flush=True);"
    "sys.stdin.readline(); metric_count('restocks', 4)"
)


def _stored_restocks_at(url: str) -> float:
    stored = redis.Redis.from_url(url).hgetall(metrics.REDIS_KEY)
    return sum(float(value) for field, value in stored.items() if b"restocks" in field)


def test_a_process_that_exits_soon_after_a_stall_sends_all_it_holds():
    from tests.redis_server import PrivateRedis

    private = PrivateRedis().start()
    assert private.process is not None
    try:
        url = f"{private.url}/0"
        environment = {**worker_environment(), "REDIS_URL": url, "METRICS_FLUSH_SECONDS": "60"}
        os.kill(private.process.pid, signal.SIGSTOP)
        process = subprocess.Popen(
            [sys.executable, "-c", EXIT_AFTER_STALL],
            cwd=PROJECT_ROOT,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None and process.stdin is not None
            assert process.stdout.readline().strip() == "sent"  # and got no answer
        finally:
            os.kill(private.process.pid, signal.SIGCONT)
        process.stdin.write("go\n")
        process.stdin.close()
        assert process.wait(timeout=60) == 0

        assert _stored_restocks_at(url) == 7
    finally:
        private.stop()


def test_a_batch_a_stopped_redis_runs_when_it_resumes_counts_once(settings, monkeypatch):
    """A Redis stopped with SIGSTOP gives no answer, so the process keeps the batch and sends it
    again; but the stopped Redis runs the request waiting in its socket once it resumes. Either
    way round the batch counts once, and what was recorded meanwhile counts too."""
    from tests.redis_server import PrivateRedis

    private = PrivateRedis().start()
    assert private.process is not None
    try:
        settings.REDIS_URL = f"{private.url}/0"
        settings.METRICS_FLUSH_SECONDS = 60  # sent by hand below
        monkeypatch.setattr(metrics, "OUTAGE_PAUSE_SECONDS", 0.0)
        metric_count("restocks", 1)
        metrics.metrics_send_now()  # Redis now knows the script: the stopped one can run it
        metric_count("restocks", 3)
        os.kill(private.process.pid, signal.SIGSTOP)
        try:
            metrics.metrics_send_now()  # waits REDIS_TIMEOUT_SECONDS for an answer, gets none
        finally:
            os.kill(private.process.pid, signal.SIGCONT)
        assert _stored_restocks() == 4, "the stopped Redis ran the batch once it resumed"

        metric_count("restocks", 2)
        metrics.metrics_send_now()  # the batch again, then the 2

        assert _stored_restocks() == 6
    finally:
        private.stop()
