"""Typed JSON values (Airflow's BaseSerialization form, plus date/time/callable)."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest
from airflowtask.connector_core import typed
from airflowtask.connector_core.typed import CallableRef, TypedValueError
from dateutil.relativedelta import relativedelta


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        ({"__type": "timedelta", "__var": 30.0}, dt.timedelta(seconds=30)),
        ({"__type": "timedelta", "__var": 1.5}, dt.timedelta(seconds=1.5)),
        ({"__type": "datetime", "__var": 1704164645.0}, dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
        ({"__type": "datetime", "__var": "2024-01-02T03:04:05Z"}, dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
        ({"__type": "datetime", "__var": "2024-01-02T03:04:05"}, dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)),
        ({"__type": "date", "__var": "2024-02-29"}, dt.date(2024, 2, 29)),
        ({"__type": "time", "__var": "12:30:00"}, dt.time(12, 30)),
        ({"__type": "time", "__var": "12:30:00+02:00"}, dt.time(12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
        ({"__type": "timezone", "__var": "UTC"}, dt.UTC),
        ({"__type": "tuple", "__var": [1, {"__type": "timedelta", "__var": 1}]}, (1, dt.timedelta(seconds=1))),
        ({"__type": "set", "__var": [1, 2]}, {1, 2}),
        ({"__type": "dict", "__var": {"a": {"__type": "timedelta", "__var": 2}}}, {"a": dt.timedelta(seconds=2)}),
        ({"__type": "relativedelta", "__var": {"days": 1}}, relativedelta(days=1)),
        ({"__type": "callable", "__var": "pkg.mod.func"}, CallableRef("pkg.mod.func")),
        ({"plain": [1, "two", None, True]}, {"plain": [1, "two", None, True]}),
    ],
)
def test_decodes(wire: object, value: object) -> None:
    assert typed.decode(wire) == value


def test_datetime_is_pendulum_utc_like_airflow() -> None:
    value = typed.decode({"__type": "datetime", "__var": 0})
    assert isinstance(value, pendulum.DateTime)
    assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)


def test_named_timezone() -> None:
    assert typed.decode({"__type": "timezone", "__var": "Europe/Berlin"}).name == "Europe/Berlin"


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ({"__type": "timedelta", "__var": "soon"}, "expected a number"),
        ({"__type": "datetime", "__var": "yesterday"}, "invalid datetime"),
        ({"__type": "date", "__var": 3}, "expected a string"),
        ({"__type": "pickle", "__var": "gASV"}, "unknown __type 'pickle'"),
        ({"__type": "timedelta"}, "exactly the keys"),
        ({"__type": "callable", "__var": "os"}, "dotted path"),
        ({"__type": "relativedelta", "__var": {"evil": 1}}, "relativedelta takes"),
        ({"__type": "timezone", "__var": "Mars/Olympus"}, "unknown timezone"),
    ],
)
def test_rejects_bad_typed_values(wire: object, message: str) -> None:
    with pytest.raises(TypedValueError, match=message):
        typed.decode({"param": wire})


def test_error_names_the_parameter() -> None:
    with pytest.raises(TypedValueError, match=r"parameters\.poke\.delay"):
        typed.decode({"poke": {"delay": {"__type": "timedelta", "__var": "x"}}})


def _func() -> None: ...


@pytest.mark.parametrize(
    "value",
    [
        dt.timedelta(days=1, seconds=2),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        dt.date(2024, 1, 2),
        dt.time(6, 30, 15, 123),
        (1, "a"),
        {3, 4},
        {"nested": [dt.timedelta(seconds=1), {"t": dt.time(1)}]},
        relativedelta(months=2),
        dt.UTC,
        dt.timezone(dt.timedelta(hours=-3, minutes=-30)),
        CallableRef("pkg.mod.func"),
    ],
)
def test_roundtrip(value: object) -> None:
    assert typed.decode(typed.encode(value)) == value


def test_functions_are_written_as_callables() -> None:
    assert typed.encode(_func) == {"__type": "callable", "__var": f"{__name__}._func"}


def test_encode_rejects_unknown_objects() -> None:
    with pytest.raises(TypedValueError, match="cannot write a object"):
        typed.encode({"x": object()})


@pytest.mark.parametrize(
    "value",
    [
        dt.timedelta(seconds=30),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        (1, 2),
        {1, 2},
        relativedelta(days=1),
        {"a": dt.timedelta(days=1)},
    ],
)
def test_same_form_as_airflows_base_serialization(value: object) -> None:
    """We read what BaseSerialization writes; it reads what we write (we leave objects unwrapped)."""
    from airflow.serialization.serialized_objects import BaseSerialization

    assert typed.decode(BaseSerialization.serialize(value)) == value
    if not isinstance(value, dict):
        assert BaseSerialization.deserialize(typed.encode(value)) == value


@pytest.mark.parametrize("seconds", [0, 1704164645.25, 1796213651.027695, -1e9, 253402300799.0])
def test_utc_from_timestamp_is_pendulums(seconds: float) -> None:
    value = typed.utc_from_timestamp(seconds)
    expected = pendulum.from_timestamp(seconds, tz="UTC")
    assert (value, type(value), value.tzinfo) == (expected, type(expected), expected.tzinfo)


def test_where_text_renders_keys_and_indexes() -> None:
    assert typed.where_text("parameters") == "parameters"
    assert typed.where_text(((("parameters", "ops"), 2), "delay")) == "parameters.ops[2].delay"


def test_error_names_an_index_in_a_list() -> None:
    with pytest.raises(TypedValueError, match=r"^parameters\.waits\[1\]: expected a number"):
        typed.decode({"waits": [{"__type": "timedelta", "__var": 1}, {"__type": "timedelta", "__var": []}]})
    with pytest.raises(TypedValueError, match=r"^state\.items\[0\]: cannot write a object"):
        typed.encode({"items": [object()]}, "state")
