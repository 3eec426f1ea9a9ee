"""Country and state codes in one canonical upper-case form (issue 8.5).

Existing codes are upper-cased. Before this, the storefront upper-cased what it was given, so a
state stored as ``Qld`` could never be subscribed to: where ``Qld`` and ``QLD`` both exist in a
country, the non-canonical row is unreachable and is removed (its references, if an operator
made any in the admin, stop the migration with PROTECT's error rather than being lost). Two
countries differing only by case cannot be merged safely and stop the migration with a message.
"""

from django.db import migrations

import shop.models


def _canonical(code):
    return code.strip().upper()


def codes_upper_case(apps, schema_editor):
    Country = apps.get_model("shop", "Country")
    State = apps.get_model("shop", "State")
    seen_countries = {}
    for country in Country.objects.order_by("id"):
        canonical = _canonical(country.code)
        if canonical in seen_countries:
            raise RuntimeError(
                f"Countries {seen_countries[canonical]!r} and {country.code!r} differ only by "
                "case: merge them in the admin, then migrate again."
            )
        seen_countries[canonical] = country.code
    seen_states = {}
    # Canonical rows first, so that of two spellings the one the storefront could reach is kept.
    states = sorted(
        State.objects.all(), key=lambda s: (s.code != _canonical(s.code), s.id)
    )
    for state in states:
        key = (state.country_id, _canonical(state.code))
        if key in seen_states:
            state.delete()
            continue
        seen_states[key] = state.id
    # The field writes the canonical form; raw updates so that no row is read back first.
    for country in Country.objects.all():
        if country.code != _canonical(country.code):
            Country.objects.filter(pk=country.pk).update(code=_canonical(country.code))
    for state in State.objects.all():
        if state.code != _canonical(state.code):
            State.objects.filter(pk=state.pk).update(code=_canonical(state.code))


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="country",
            name="code",
            field=shop.models.LocationCodeField(
                help_text="ISO 3166-1 alpha-2", max_length=2, unique=True
            ),
        ),
        migrations.AlterField(
            model_name="state",
            name="code",
            field=shop.models.LocationCodeField(help_text="Stored upper-case (QLD).", max_length=10),
        ),
        migrations.RunPython(codes_upper_case, migrations.RunPython.noop),
    ]
