"""Core statements compiled once per database and run on the driver's own cursor: the check's hot path.

`Connection.execute` looks a statement up in the compiled cache, builds its parameters, wraps the
cursor in a result and tracks the transaction, on every call; for a check's three statements that was
several times SQLite's own time for them (cProfile of the check request). A `Precompiled` statement keeps
the SQL text and SQLAlchemy's bind processors (JSON, UTC timestamps, booleans: the stored values are the
same as through `Connection.execute`), and each call is one `cursor.execute`.

`driver_connection(engine)` checks a DBAPI connection out of the engine's pool (so the pool's ping of
idle connections still applies) and turns any driver error into StoreError, giving a dead connection
back to the pool as invalid so the next request gets a fresh one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Dialect, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from moderation.errors import StoreError

_NOT_GIVEN = object()


class Precompiled:
    """`statement` compiled for `dialect`, ready to run on a DBAPI cursor with a dict of parameter values.

    Statements whose SQL changes per execution (an IN list, "post-compile" parameters) are refused with
    ValueError: their text cannot be kept.
    """

    def __init__(self, statement: ClauseElement, dialect: Dialect, *, column_keys: Sequence[str] | None = None) -> None:
        # column_keys: for an INSERT without .values(), the columns whose values each call passes
        compiled = cast(
            SQLCompiler, statement.compile(dialect=dialect, column_keys=list(column_keys) if column_keys else None)
        )
        if "POSTCOMPILE" in compiled.string or getattr(compiled, "escaped_bind_names", None):
            raise ValueError(f"expected SQL that stays the same on every execution, found {compiled.string!r}")
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        slots: dict[str, tuple[Callable[[Any], Any] | None, Any]] = {}
        for bind, name in compiled.bind_names.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            default = _NOT_GIVEN if bind.required else bind.effective_value
            if default is not _NOT_GIVEN and processor is not None:
                default = processor(default)
            slots[name] = (processor, default)
        order = list(compiled.positiontup or []) if self.positional else list(slots)
        self._slots = [(name, *slots[name]) for name in order]

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """The driver's parameters for `values` (processed as SQLAlchemy would); a missing value → KeyError."""
        processed = []
        for name, processor, default in self._slots:
            if name in values:
                value = values[name]
                processed.append(processor(value) if processor is not None else value)
            elif default is _NOT_GIVEN:
                raise KeyError(f"parameter {name!r} of the precompiled statement was not given")
            else:
                processed.append(default)
        if self.positional:
            return tuple(processed)
        return {name: value for (name, _, _), value in zip(self._slots, processed, strict=True)}

    def execute(self, cursor: Any, values: Mapping[str, Any]) -> Any:
        """Run on `cursor` (a DBAPI cursor) and return it, for fetchone()."""
        cursor.execute(self.sql, self.parameters(values))
        return cursor


@contextmanager
def driver_connection(engine: Engine) -> Iterator[PoolProxiedConnection]:
    """A DBAPI connection from `engine`'s pool for the block, returned afterwards.

    A database error inside the block (or while connecting) → StoreError, after a rollback; a connection
    the dialect recognises as dead is invalidated rather than returned to the pool.
    """
    dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
    try:
        connection = engine.raw_connection()
    except (SQLAlchemyError, dbapi_error) as exc:
        raise StoreError(f"cannot connect to the database: {type(exc).__name__}") from exc
    try:
        yield connection
    except dbapi_error as exc:
        _discard_failed(engine, connection, exc)
        raise StoreError(f"database error: {type(exc).__name__}") from exc
    finally:
        connection.close()


def _discard_failed(engine: Engine, connection: PoolProxiedConnection, exc: Exception) -> None:
    """Roll back after `exc`; invalidate the connection when it is dead or cannot even roll back."""
    if engine.dialect.is_disconnect(exc, connection.dbapi_connection, None):  # type: ignore[arg-type]
        connection.invalidate(exc)
        return
    try:
        connection.rollback()
    except engine.dialect.loaded_dbapi.Error as again:
        connection.invalidate(again)
