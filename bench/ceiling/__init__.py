"""The load bench's ceiling: the least a Django view on this stack can do per request.

Installed only by ``config.settings.bench``. Its view parses the same JSON body as the Checkout
API and inserts one row, so ``bench/load.py`` can compare the endpoint with what the same
gunicorn, middleware, PostgreSQL and machine allow for one INSERT.
"""
