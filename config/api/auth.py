"""Shared-secret access to the server-side APIs, compared in constant time."""

import hmac
from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


def secret_matches(*, given: str, expected: str) -> bool:
    """Constant-time comparison; an empty expected secret matches nothing (the API is closed)."""
    if not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class _SharedSecretPermission(BasePermission):
    setting_name: str
    header: str
    prefix: str = ""
    realm: str

    def has_permission(self, request: Request, view: Any) -> bool:
        expected: str = getattr(settings, self.setting_name)
        if not expected:
            raise exceptions.PermissionDenied(f"The {self.realm} is closed on this server.")
        value = request.META.get(self.header, "")
        if not value:
            raise exceptions.NotAuthenticated(f"Missing credentials for the {self.realm}.")
        if self.prefix:
            if not value.startswith(self.prefix):
                raise exceptions.NotAuthenticated(f"Expected '{self.prefix.strip()} <token>'.")
            value = value[len(self.prefix) :]
        if not secret_matches(given=value.strip(), expected=expected):
            raise exceptions.PermissionDenied("Invalid credentials.")
        return True


class HasShopApiKey(_SharedSecretPermission):
    """Header ``API-Authorization: <SHOP_API_KEY>`` (CONTRACT §3)."""

    setting_name = "SHOP_API_KEY"
    header = "HTTP_API_AUTHORIZATION"
    realm = "Shop API"


class HasIntegrationApiToken(_SharedSecretPermission):
    """Header ``Authorization: Bearer <INTEGRATION_API_TOKEN>`` (CONTRACT §5)."""

    setting_name = "INTEGRATION_API_TOKEN"
    header = "HTTP_AUTHORIZATION"
    prefix = "Bearer "
    realm = "Integration API"
