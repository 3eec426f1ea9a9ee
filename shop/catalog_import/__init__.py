"""Importing the catalog JSON of CONTRACT §7 (``python manage.py import_catalog PATH``).

``validation`` reads the whole document and reports every problem with its JSON path; ``apply``
upserts a valid catalog in one transaction, writing only rows that differ from the database.
"""

from shop.catalog_import.apply import CatalogImportResult, catalog_apply, catalog_import_run
from shop.catalog_import.entries import Catalog, CatalogInvalid, CatalogProblem
from shop.catalog_import.rows import RowCounts
from shop.catalog_import.validation import catalog_parse, catalog_validate

__all__ = [
    "Catalog",
    "CatalogImportResult",
    "CatalogInvalid",
    "CatalogProblem",
    "RowCounts",
    "catalog_apply",
    "catalog_import_run",
    "catalog_parse",
    "catalog_validate",
]
