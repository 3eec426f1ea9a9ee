import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from klaviyo_sync.management.commands import klaviyo as klaviyo_command
from tests.sandbox import API_KEY


@pytest.mark.parametrize(
    ("arguments", "said"),
    [([], "queued an incremental catalog sync"), (["--full"], "queued a full catalog sync")],
)
def test_queuing_a_sync_says_which_in_plain_english(db, monkeypatch, arguments, said):
    queued = []
    monkeypatch.setattr(klaviyo_command.sync_catalog, "delay", lambda **kw: queued.append(kw))
    stdout = StringIO()

    call_command("klaviyo", "sync-catalog", *arguments, stdout=stdout)

    assert stdout.getvalue().strip() == said
    assert queued == [{"full": bool(arguments), "trigger": "command"}]


def test_a_switch_other_than_on_or_off_is_refused_in_the_operator_s_words(db):
    with pytest.raises(CommandError) as refused:
        call_command("klaviyo", "configure", "--catalog-sync", "maybe")

    assert str(refused.value).endswith("expected on or off, not 'maybe'")
    assert "_on_off" not in str(refused.value)


@pytest.mark.parametrize(("number", "said"), [(1, "1 bulk job call"), (2, "2 bulk job calls")])
def test_counts_agree_with_their_noun(number, said):
    assert klaviyo_command._count(number, "bulk job call") == said


def test_waiting_on_a_sync_keeps_the_integration_s_info_lines_out_of_the_progress(caplog):
    import logging

    logger = logging.getLogger("klaviyo_sync.services.jobs")
    with caplog.at_level(logging.INFO), klaviyo_command._quiet_unless(verbose=False):
        logger.info("job polled")
        logger.warning("job failed")

    assert [record.getMessage() for record in caplog.records] == ["job failed"]


def _status(capsys) -> tuple[dict, str]:
    call_command("klaviyo", "status")
    said = capsys.readouterr()
    return json.loads(said.out), said.err


def test_status_says_plainly_when_the_configured_account_never_had_a_full_sync(
    db, settings, capsys, sandbox
):
    from klaviyo_sync.services.catalog import catalog_sync_run

    settings.KLAVIYO_API_KEY = "pk_first_account"
    status, warned = _status(capsys)
    assert status["klaviyo"]["fullCatalogSync"] == "never"
    assert warned.strip() == (
        "The configured Klaviyo account has never had a full catalog sync: run `manage.py "
        "klaviyo sync-catalog --full --wait` (back in stock needs one)."
    )

    settings.KLAVIYO_API_KEY = API_KEY
    run = catalog_sync_run(full=True, trigger="command")
    status, warned = _status(capsys)
    assert status["klaviyo"]["fullCatalogSync"] == run.finished_at.isoformat()
    assert warned == ""

    settings.KLAVIYO_API_KEY = "pk_another_account"  # the runs so far were for the sandbox's
    status, warned = _status(capsys)
    assert status["klaviyo"]["fullCatalogSync"] == "never"
    assert status["catalogSync"]["state"] == "completed"  # the integration's, any account's
    assert "never had a full catalog sync" in warned
    assert "pk_another_account" not in warned + json.dumps(status)
