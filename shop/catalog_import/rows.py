"""Loading existing rows in bulk and writing only the rows that differ from the wanted ones.

Existing rows are read as ``values_list`` tuples, not model instances, and instances are built only
for the rows that are written: on a re-import of an unchanged catalog that is none at all.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Lookup, Model, QuerySet
from django.db.models.sql.compiler import SQLCompiler

_M = TypeVar("_M", bound=Model)

WRITE_BATCH = 1000


class _EqualsAny(Lookup):
    """``column = ANY(%s)`` with the values as one array parameter, on PostgreSQL.

    ``column IN (%s, %s, ...)`` with thousands of values costs more in the driver's query
    building than in PostgreSQL; one array parameter does not grow the SQL text. Other
    databases (SQLite in the demo) have no arrays and get the plain ``IN``.
    """

    lookup_name = "equals_any"
    prepare_rhs = False

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, Any]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if connection.vendor != "postgresql":
            values = list(self.rhs)
            if not values:
                return "1 = 0", []
            placeholders = ", ".join(["%s"] * len(values))
            return f"{lhs} IN ({placeholders})", [*lhs_params, *values]
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", [*lhs_params, *rhs_params]


def any_of(field: str, values: Iterable[object]) -> _EqualsAny:
    """A filter for ``field`` being one of ``values``, for ``QuerySet.filter``."""
    return _EqualsAny(F(field), list(values))


@dataclass(frozen=True)
class RowCounts:
    """What an import did to the rows of one model."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def __add__(self, other: "RowCounts") -> "RowCounts":
        return RowCounts(
            created=self.created + other.created,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
            deleted=self.deleted + other.deleted,
        )


@dataclass
class Plan(Generic[_M]):
    """The writes that make a model's rows as wanted."""

    model: type[_M]
    fields: Sequence[str]
    to_create: list[_M] = field(default_factory=list)
    to_update: list[_M] = field(default_factory=list)
    unchanged: int = 0
    # Existing rows by key (pk, values of ``fields``): for the caller's own checks.
    existing: dict[Any, tuple[Any, tuple[Any, ...]]] = field(default_factory=dict)

    @property
    def written(self) -> list[_M]:
        return [*self.to_create, *self.to_update]


def plan_rows(
    *,
    model: type[_M],
    key: Sequence[str],
    fields: Sequence[str],
    wanted: Collection[Mapping[str, Any]],
    existing: "QuerySet[_M] | None" = None,
) -> Plan[_M]:
    """Sort wanted rows into new, changed and unchanged against the rows in the database.

    ``wanted`` holds each row's column values by attribute name (``market_id``, not ``market``),
    ``key`` names the columns that identify a row and ``fields`` those compared and updated.
    ``existing`` narrows the rows read (default: the whole table).
    """
    queryset = model._default_manager.all() if existing is None else existing
    width = len(key)
    plan = Plan(model=model, fields=fields)
    for row in queryset.order_by().values_list(*key, "pk", *fields):
        plan.existing[row[:width]] = (row[width], row[width + 1 :])
    for values in wanted:
        found = plan.existing.get(tuple(values[name] for name in key))
        if found is None:
            plan.to_create.append(model(**values))
        elif found[1] != tuple(values[name] for name in fields):
            instance = model(**values)
            instance.pk = found[0]
            plan.to_update.append(instance)
        else:
            plan.unchanged += 1
    return plan


class PlanWriter:
    """Executes plans in batches, keeping counts per model and moving the progress bar."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.counts: dict[str, RowCounts] = {}

    def write(self, plan: Plan[_M], *, deleted: int = 0) -> Plan[_M]:
        manager = plan.model._default_manager
        self.bar.update(plan.unchanged)
        for start in range(0, len(plan.to_create), WRITE_BATCH):
            batch = plan.to_create[start : start + WRITE_BATCH]
            manager.bulk_create(batch)
            self.bar.update(len(batch))
        for start in range(0, len(plan.to_update), WRITE_BATCH):
            batch = plan.to_update[start : start + WRITE_BATCH]
            manager.bulk_update(batch, list(plan.fields))
            self.bar.update(len(batch))
        counts = RowCounts(
            created=len(plan.to_create),
            updated=len(plan.to_update),
            unchanged=plan.unchanged,
            deleted=deleted,
        )
        self.add(plan.model, counts)
        return plan

    def add(self, model: type[Model], counts: RowCounts) -> None:
        self.counts[model.__name__] = self.counts.get(model.__name__, RowCounts()) + counts
