"""docs/limits.md and the code cannot drift apart: every default in its tables
is read from where the code keeps it, and every numeric setting of the
configuration records is in the tables (issue 10).

A table row names where its values live in its "setting" column, in
backticks: a field (`EngineIOConfig.request_timeout`) or a module constant
(`roomactors.engineio.server.HANDLER_GRACE`). The numbers of its "default"
column are those values, in the same order (in seconds and bytes, or scaled by
a unit written after them: ``250 ms``, ``64 KB``).
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from roomactors.actors import RoomLimits
from roomactors.config import RoomServerConfig
from roomactors.engineio import EngineIOConfig
from roomactors.socketio import SocketIOConfig

LIMITS = Path(__file__).resolve().parents[2] / "docs" / "limits.md"
RECORDS: dict[str, type[Any]] = {
    "RoomServerConfig": RoomServerConfig,
    "EngineIOConfig": EngineIOConfig,
    "SocketIOConfig": SocketIOConfig,
    "RoomLimits": RoomLimits,
}
#: Numeric settings that are not bounds a client meets: documented in configuration.md.
NOT_LIMITS = {"port", "shutdown_timeout"}

REFERENCE = re.compile(r"`((?:" + "|".join(RECORDS) + r")\.[a-z_]+|roomactors(?:\.[a-z_]+)+\.[A-Z_]+)`")
#: A number as the tables write it (``1,000,000``, ``2.5``) and an optional unit
#: that scales it to the code's (seconds, bytes): ms, KB/KiB (1024 bytes), MB/MiB.
NUMBER = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(ms|KiB|KB|MiB|MB)?\b")
SCALE = {"ms": 0.001, "KB": 1024, "KiB": 1024, "MB": 1024 * 1024, "MiB": 1024 * 1024}


def numbers(text: str) -> list[float]:
    """The numbers of a default cell, in the code's units."""
    return [float(n.replace(",", "")) * SCALE.get(unit, 1) for n, unit in NUMBER.findall(text)]


def resolve(reference: str) -> Any:
    """The value a reference names: a record field's default, or a module constant."""
    owner, _, name = reference.rpartition(".")
    if owner in RECORDS:
        fields = {field.name: field for field in dataclasses.fields(RECORDS[owner])}
        assert name in fields, f"docs/limits.md names {reference}, which {owner} does not have"
        return fields[name].default
    module = importlib.import_module(owner)
    assert hasattr(module, name), f"docs/limits.md names {reference}, which {owner} does not define"
    return getattr(module, name)


def table_rows() -> list[tuple[str, str, list[str]]]:
    """(limit, default, references) of every table row of docs/limits.md that names a setting."""
    rows = []
    for line in LIMITS.read_text().splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        references = [ref for cell in cells[2:] for ref in REFERENCE.findall(cell)]
        if len(cells) >= 3 and references:
            rows.append((cells[0], cells[1], references))
    return rows


ROWS = table_rows()


def test_the_tables_name_settings() -> None:
    assert len(ROWS) >= 25


@pytest.mark.parametrize(("limit", "default", "references"), ROWS, ids=[row[0][:40] for row in ROWS])
def test_each_documented_default_is_the_codes(limit: str, default: str, references: list[str]) -> None:
    documented = numbers(default)
    actual = [resolve(reference) for reference in references]
    assert documented == pytest.approx(actual), (
        f"docs/limits.md, {limit!r}: the default column says {default!r}, the code has "
        + ", ".join(f"{ref} = {value!r}" for ref, value in zip(references, actual))
    )


def test_every_numeric_setting_is_documented() -> None:
    documented = {ref.rpartition(".")[2] for _, _, refs in ROWS for ref in refs}
    missing = []
    for owner, record in RECORDS.items():
        for field in dataclasses.fields(record):
            value = field.default
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if numeric and field.name not in NOT_LIMITS and field.name not in documented:
                missing.append(f"{owner}.{field.name}")
    assert not missing, f"numeric settings docs/limits.md does not list: {missing}"


def test_the_derived_tcp_shares_are_the_codes() -> None:
    from roomactors.engineio.server import TCP_CONNECTIONS_PER_SESSION

    config = RoomServerConfig()
    text = " ".join(LIMITS.read_text().split())
    total = TCP_CONNECTIONS_PER_SESSION * config.max_connections
    per_address = TCP_CONNECTIONS_PER_SESSION * config.max_sessions_per_address
    assert f"the TCP shares are {total} connections in all and {per_address} per address" in text
