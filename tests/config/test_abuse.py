"""Abuse: oversized bodies refused before they are read, and the admin closed to outsiders."""

import io
import json

import pytest
from django.contrib.auth.models import Permission, User
from django.test import RequestFactory
from django.test.client import ClientHandler
from django.urls import reverse

CHECKOUT_URL = "/api/checkout-api/back-in-stock-subscription"


class CountingStream(io.RawIOBase):
    """A request body that records how much of it the server read."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = min(len(buffer), self.remaining)
        buffer[:n] = b"[" * n
        self.remaining -= n
        self.read_bytes += n
        return n


def post_stream(body: CountingStream, declared_length: int):
    """POST a raw stream with its own Content-Length, as a client on the wire would."""
    environ = RequestFactory()._base_environ(
        PATH_INFO=CHECKOUT_URL,
        REQUEST_METHOD="POST",
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH=str(declared_length),
        **{"wsgi.input": body},
    )
    return ClientHandler()(environ)


@pytest.mark.django_db
def test_an_oversized_body_is_refused_without_being_read():
    body = CountingStream(50 * 1024 * 1024)

    response = post_stream(body, declared_length=50 * 1024 * 1024)

    assert response.status_code == 413
    assert json.loads(response.content)["errors"]["body"].startswith("Request body is larger than")
    assert body.read_bytes == 0


@pytest.mark.django_db
def test_a_body_longer_than_it_claims_is_read_no_further_than_it_claims():
    body = CountingStream(10 * 1024 * 1024)

    response = post_stream(body, declared_length=100)

    assert response.status_code == 400
    assert body.read_bytes <= 64 * 1024


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/backinstock/subscription/",
        "/admin/klaviyo_sync/integrationsettings/",
        "/admin/shop/stock/",
    ],
)
@pytest.mark.django_db
def test_the_admin_sends_strangers_to_the_login_page(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_a_user_who_is_not_staff_cannot_enter_the_admin(client):
    User.objects.create_user("shopper", password="pw-123456")
    client.login(username="shopper", password="pw-123456")

    response = client.get("/admin/backinstock/subscription/")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.django_db
def test_staff_see_only_what_their_permissions_allow(client):
    staff = User.objects.create_user("merchandiser", password="pw-123456", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_displayitem"))
    client.login(username="merchandiser", password="pw-123456")

    assert client.get("/admin/shop/displayitem/").status_code == 200
    assert client.get("/admin/backinstock/subscription/").status_code == 403
    assert client.get("/admin/klaviyo_sync/integrationsettings/").status_code == 403
