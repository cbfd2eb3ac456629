"""Market conventions by name: day counts, calendars, frequencies, tenors and dates as QuantLib objects.

Each table lists exactly the names the XML may use; anything else is refused by the caller's field.
"""

from __future__ import annotations

import datetime as dt
import re

import QuantLib as ql

from pricers.inputs import Fields

DAY_COUNTS = {
    "Actual/360": lambda: ql.Actual360(),
    "Actual/365F": lambda: ql.Actual365Fixed(),
    "Actual/Actual(ISDA)": lambda: ql.ActualActual(ql.ActualActual.ISDA),
    "Actual/Actual(Bond)": lambda: ql.ActualActual(ql.ActualActual.Bond),
    "30/360": lambda: ql.Thirty360(ql.Thirty360.BondBasis),
    "30E/360": lambda: ql.Thirty360(ql.Thirty360.European),
}
CALENDARS = {
    "TARGET": lambda: ql.TARGET(),
    "UnitedStates": lambda: ql.UnitedStates(ql.UnitedStates.GovernmentBond),
    "UnitedKingdom": lambda: ql.UnitedKingdom(),
    "Japan": lambda: ql.Japan(),
    "NullCalendar": lambda: ql.NullCalendar(),
}
FREQUENCIES = {"Annual": ql.Annual, "Semiannual": ql.Semiannual, "Quarterly": ql.Quarterly, "Monthly": ql.Monthly}
COMPOUNDINGS = {"Continuous": (ql.Continuous, ql.Annual), "Annual": (ql.Compounded, ql.Annual),
                "Semiannual": (ql.Compounded, ql.Semiannual), "Quarterly": (ql.Compounded, ql.Quarterly)}
_TENOR = re.compile(r"^([1-9]\d{0,2})([DWMY])$")
_UNITS = {"D": ql.Days, "W": ql.Weeks, "M": ql.Months, "Y": ql.Years}


def to_ql_date(date: dt.date) -> ql.Date:
    return ql.Date(date.day, date.month, date.year)


def to_iso(date: ql.Date) -> str:
    return f"{date.year():04d}-{date.month():02d}-{date.dayOfMonth():02d}"


def day_count(fields: Fields, name: str = "dayCount") -> ql.DayCounter:
    return DAY_COUNTS[fields.choice(name, tuple(DAY_COUNTS))]()


def calendar(fields: Fields, name: str = "calendar") -> ql.Calendar:
    return CALENDARS[fields.choice(name, tuple(CALENDARS))]()


def frequency(fields: Fields, name: str = "frequency") -> int:
    return int(FREQUENCIES[fields.choice(name, tuple(FREQUENCIES))])


def compounding(fields: Fields, name: str = "compounding") -> tuple[int, int]:
    return COMPOUNDINGS[fields.choice(name, tuple(COMPOUNDINGS))]


def tenor(text: str, fields: Fields, name: str) -> ql.Period:
    """A tenor such as 3M or 10Y; `name` is the field reported on error."""
    found = _TENOR.match(text)
    if found is None:
        raise fields.fail(name, f"{text!r} is not a tenor like 6M or 10Y")
    return ql.Period(int(found.group(1)), _UNITS[found.group(2)])
