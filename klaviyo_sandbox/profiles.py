"""Profiles: upserted by `/api/profile-import`, removed by `/api/data-privacy-deletion-jobs`.

Not thread-safe by itself: the store calls it while holding its lock.
"""

from __future__ import annotations

from typing import Any

from .errors import invalid, iso_now
from .jobs import ulid_like

# The profile attributes Klaviyo answers with (besides `properties`, created and updated).
PROFILE_ATTRIBUTES = (
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
    "location",
)
IDENTIFIERS = ("email", "phone_number", "external_id")


class Profiles:
    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}
        self.deleted: list[dict[str, Any]] = []

    def clear(self) -> None:
        self.by_id.clear()
        self.deleted.clear()

    def find(self, *, profile_id: str | None = None, **identifiers: Any) -> dict[str, Any] | None:
        """The profile with this id, else the first whose email, phone or external id matches."""
        if profile_id:
            return self.by_id.get(profile_id)
        for name in IDENTIFIERS:
            wanted = identifiers.get(name)
            if not wanted:
                continue
            for profile in self.by_id.values():
                if _same(name, profile.get(name), wanted):
                    return profile
        return None

    def upsert(
        self, *, profile_id: str | None, attributes: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Create or update one profile; answer it and whether it was created.

        As at Klaviyo, an attribute set to null is cleared and one left out is left alone;
        `properties` are merged key by key (a null value removes the key).
        """
        identifiers = {name: attributes.get(name) for name in IDENTIFIERS}
        if not profile_id and not any(identifiers.values()):
            raise invalid(
                "One of `email`, `phone_number`, `external_id` or `id` is required.",
                "/data/attributes",
            )
        profile = self.find(profile_id=profile_id, **identifiers)
        if profile is None and profile_id:
            raise invalid(f"A profile with id `{profile_id}` does not exist.", "/data/id")
        created = profile is None
        now = iso_now()
        if profile is None:
            profile = dict.fromkeys(PROFILE_ATTRIBUTES)
            profile.update({"id": ulid_like(), "properties": {}, "created": now})
            self.by_id[profile["id"]] = profile
        for name in PROFILE_ATTRIBUTES:
            if name in attributes:
                profile[name] = attributes[name]
        properties = attributes.get("properties", {})
        if properties is None:
            profile["properties"], properties = {}, {}
        for key, value in properties.items():
            if value is None:
                profile["properties"].pop(key, None)
            else:
                profile["properties"][key] = value
        profile["updated"] = now
        return profile, created

    def delete(self, *, profile_id: str | None, email: str | None, phone: str | None) -> None:
        """Delete the matching profile (if any) and record the request."""
        profile = self.find(profile_id=profile_id, email=email, phone_number=phone)
        if profile is not None:
            del self.by_id[profile["id"]]
        self.deleted.append(
            {
                "email": email or (profile or {}).get("email"),
                "phone_number": phone or (profile or {}).get("phone_number"),
                "profile_id": (profile or {}).get("id"),
                "at": iso_now(),
            }
        )

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Profiles keyed by email (or by id when they have none)."""
        return {
            (profile.get("email") or profile["id"]): {
                "id": profile["id"],
                "properties": dict(profile["properties"]),
                "locale": profile.get("locale"),
                "attributes": {
                    name: profile[name]
                    for name in PROFILE_ATTRIBUTES
                    if name not in ("email", "locale") and profile.get(name) is not None
                },
            }
            for profile in self.by_id.values()
        }


def profile_document(profile: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The profile resource, shaped as `PostProfileResponse`."""
    attributes = {name: profile.get(name) for name in PROFILE_ATTRIBUTES}
    attributes.update(
        {
            "created": profile["created"],
            "updated": profile["updated"],
            "last_event_date": None,
            "properties": dict(profile["properties"]),
        }
    )
    self_url = f"{base_url}/api/profiles/{profile['id']}"
    return {
        "data": {
            "type": "profile",
            "id": profile["id"],
            "attributes": attributes,
            "links": {"self": self_url},
        },
        "links": {"self": self_url},
    }


def _same(name: str, stored: Any, wanted: Any) -> bool:
    if name == "email" and isinstance(stored, str) and isinstance(wanted, str):
        return stored.lower() == wanted.lower()
    return bool(stored == wanted)
