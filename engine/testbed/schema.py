"""The OceanBase views as stand-in tables: DDL generated from :mod:`engine.ob.catalogue`.

The MariaDB stand-in (tests, bench) creates database ``oceanbase`` with one
table per view a server of the chosen version has, named and typed as the
catalogue says; the demo's SQLite server uses the same with ``dialect="sqlite"``.
:data:`VIEWS` (view -> [(column, type)]) is the 4.x set, for callers that do
not care about the version.

Varchars longer than 512 become ``text`` in the MySQL DDL (InnoDB's 64 KiB
row limit); the names and the other types are the catalogue's.

Table names keep the ``$``, which MySQL accepts unquoted
(``oceanbase.GV$OB_SQL_AUDIT``); the stand-in runs with
``lower_case_table_names=1`` so any spelling resolves, as on OceanBase.
"""
from __future__ import annotations

import re

from engine.ob import catalogue
from engine.ob.catalogue import DATABASE, DEFAULT_VERSION

V4_DEFAULT = DEFAULT_VERSION[4]


def views(version: tuple = V4_DEFAULT) -> dict[str, list[tuple[str, str]]]:
    """view name -> [(column, type)] for a server of ``version``."""
    return {name: v.columns_at(version) for name, v in catalogue.views_at(version).items()}


VIEWS: dict[str, list[tuple[str, str]]] = views()


def columns(view: str, version: tuple = V4_DEFAULT) -> list[str]:
    return [name for name, _ in views(version)[view]]


def quote(name: str, dialect: str = "mysql") -> str:
    return f"`{name}`" if dialect == "mysql" else f'"{name}"'


def _type(kind: str, dialect: str) -> str:
    """InnoDB caps a row at 64 KiB of varchar: long varchars become ``text`` there.
    sqlite keeps the type names, without the display widths."""
    m = re.fullmatch(r"varchar\((\d+)\)", kind)
    if dialect == "mysql" and m and int(m.group(1)) > 512:
        return "text"
    if dialect == "sqlite":                  # sqlite takes "bigint unsigned", not "bigint(20) unsigned"
        return re.sub(r"\([\d,]+\)", "", kind)
    return kind


def ddl(view: str, dialect: str = "mysql", database: str | None = DATABASE,
        version: tuple = V4_DEFAULT) -> str:
    """CREATE TABLE for one view at ``version``. ``dialect`` "mysql" or "sqlite"."""
    spec = catalogue.views_at(version)[view]
    cols = [f"  {quote(n, dialect)} {_type(t, dialect)}" for n, t in spec.columns_at(version)]
    if spec.primary_key:
        keys = ", ".join(quote(k, dialect) for k in spec.primary_key)
        cols.append(f"  PRIMARY KEY ({keys})")
    name = quote(view, dialect)
    if database and dialect == "mysql":
        name = f"{quote(database)}.{name}"
    tail = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if dialect == "mysql" else ""
    return f"CREATE TABLE {name} (\n" + ",\n".join(cols) + f"\n){tail}"


def create_statements(dialect: str = "mysql", database: str = DATABASE,
                      version: tuple = V4_DEFAULT) -> list[str]:
    """Everything the stand-in of ``version`` needs: the database, one table per
    view (every view of any version is dropped first), and ``ob_version()``
    where that version has it (3.1 has none)."""
    out = []
    if dialect == "mysql":
        out.append(f"CREATE DATABASE IF NOT EXISTS {quote(database)}")
        out += [f"DROP TABLE IF EXISTS {quote(database)}.{quote(v.name)}" for v in catalogue.CATALOGUE]
        out.append(f"DROP FUNCTION IF EXISTS {quote(database)}.ob_version")
        ob_version = catalogue.version_strings(version)["ob_version"]
        if ob_version:
            out.append(f"CREATE FUNCTION {quote(database)}.ob_version() RETURNS varchar(32) "
                       f"DETERMINISTIC RETURN '{ob_version}'")
    out += [ddl(v, dialect, database, version) for v in catalogue.views_at(version)]
    return out
