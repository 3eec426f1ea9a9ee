from tests.klaviyo_sync.conftest import demo_catalog, sandbox  # noqa: F401  (fixtures)
