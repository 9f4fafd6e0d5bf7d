"""Seattle's daily weather, 2012-01-01 to 2015-12-31 (1,461 days), for forecasting.

The source: ``vega_datasets/_data/seattle-weather.csv`` in PyPI's ``vega_datasets==0.9.0``
(NOAA's daily summaries as the Vega project ships them): one row per day with the columns
``date`` (YYYY/MM/DD or YYYY-MM-DD), ``precipitation`` (mm), ``temp_max`` and
``temp_min`` (°C), ``wind`` (m/s) and ``weather`` (one of drizzle, fog, rain, snow, sun).

The task: tomorrow's maximum temperature from the previous ``window`` days (today
included).  Each day becomes 11 numbers (``FEATURES``): precipitation, temp_max,
temp_min, wind, the weather category one-hot (5), and the day of the year as sin/cos.

Split (fixed, by the date of the day predicted): the **test** windows are those whose
target day is in 2015 (365 of them; the first ones read late-2014 days as inputs, which
is what a forecaster would have had), the **training** windows those whose target day
is in 2012-2014 (the first ``window`` days of 2012 cannot be targets).

    from rnnkit.datasets import seattle_weather
    (x_train, y_train), (x_test, y_test) = seattle_weather.load_data(window=14)
    x_train.shape, y_train.shape          # (1082, 14, 11), (1082,): raw units, not normalized

``path=`` reads a local copy of the CSV file instead of the cached download.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from pathlib import Path

import numpy as np

from ..atomicfile import atomic_write_bytes
from ..data.fetch import DataUnavailable, cache_dir, pypi_archive, read_member

PACKAGE, VERSION = "vega_datasets", "0.9.0"
MEMBER = "vega_datasets/_data/seattle-weather.csv"
COLUMNS = ("date", "precipitation", "temp_max", "temp_min", "wind", "weather")
NUMERIC = ("precipitation", "temp_max", "temp_min", "wind")
WEATHER = ("drizzle", "fog", "rain", "snow", "sun")
FEATURES = NUMERIC + tuple(f"weather={w}" for w in WEATHER) + ("day_sin", "day_cos")
TEST_YEAR = 2015
CACHE_FORMAT = 1


def parse_rows(rows, origin="the weather file", error=DataUnavailable) -> dict:
    """Columns of the weather table from CSV rows (dicts), every value checked.  Days must
    follow one another without gaps.  Raises ``error`` (a message naming the row and the
    column) on anything else."""
    rows = list(rows)
    if not rows:
        raise error(
            f"{origin} has no rows of data (expected a header line "
            f"{','.join(COLUMNS)} and one line per day)"
        )
    missing = [c for c in COLUMNS if c not in rows[0]]
    if missing:
        raise error(
            f"{origin} lacks the column(s) {', '.join(missing)}; expected the columns "
            f"{','.join(COLUMNS)} (got {','.join(k for k in rows[0] if k)})"
        )
    out: dict[str, list] = {c: [] for c in COLUMNS}
    previous = None
    for n, row in enumerate(rows, 2):  # line numbers: the header is line 1
        text = (row.get("date") or "").strip().replace("/", "-")
        try:
            day = datetime.date.fromisoformat(text)
        except ValueError:
            raise error(
                f"{origin}, line {n}: date must look like 2015-12-31 or 2015/12/31; "
                f"got {row.get('date')!r}"
            ) from None
        if previous is not None and day != previous + datetime.timedelta(days=1):
            raise error(f"{origin}, line {n}: days must be consecutive; {day} follows {previous}")
        previous = day
        out["date"].append(day.isoformat())
        for c in NUMERIC:
            value = row.get(c)
            try:
                v = float(value)
            except (TypeError, ValueError):
                v = float("nan")
            if not np.isfinite(v):
                raise error(f"{origin}, line {n}: column {c} must be a number; got {value!r}")
            out[c].append(v)
        w = (row.get("weather") or "").strip().lower()
        if w not in WEATHER:
            raise error(
                f"{origin}, line {n}: column weather must be one of "
                f"{', '.join(WEATHER)}; got {row.get('weather')!r}"
            )
        out["weather"].append(w)
    return out


def parse_csv(text: str, origin="the weather file", error=DataUnavailable) -> dict:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    rows = [
        {(k or "").strip(): v for k, v in r.items()}
        for r in reader
        if any((v or "").strip() for v in r.values() if isinstance(v, str))
    ]
    if not rows and reader.fieldnames:
        raise error(f"{origin} has a header line but no days of weather under it")
    return parse_rows(rows, origin, error)


def load_table(path=None, quiet=True) -> dict:
    """The whole table as columns: {'date': [...], 'precipitation': [...], ...}."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DataUnavailable(f"--data {path}: no such file")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DataUnavailable(f"--data {path} is not UTF-8 text") from None
        return parse_csv(text, origin=str(path))
    cached = cache_dir() / "datasets" / "seattle_weather.json"
    if cached.is_file():
        try:
            data = json.loads(cached.read_text(encoding="utf-8"))
            if data.get("format") == CACHE_FORMAT:
                return {c: data[c] for c in COLUMNS}
        except (ValueError, KeyError):
            pass  # rebuilt below
    archive = pypi_archive(PACKAGE, VERSION, quiet=quiet)
    table = parse_csv(
        read_member(archive, MEMBER).decode("utf-8"), origin=f"{MEMBER} in {archive.name}"
    )
    atomic_write_bytes(cached, json.dumps({"format": CACHE_FORMAT, **table}).encode("utf-8"))
    return table


def features(table) -> np.ndarray:
    """(days, 11) float64: the columns of ``FEATURES``, raw units."""
    days = len(table["date"])
    f = np.zeros((days, len(FEATURES)))
    for j, c in enumerate(NUMERIC):
        f[:, j] = table[c]
    for i, w in enumerate(table["weather"]):
        f[i, len(NUMERIC) + WEATHER.index(w)] = 1.0
    doy = np.array([datetime.date.fromisoformat(d).timetuple().tm_yday for d in table["date"]])
    f[:, -2] = np.sin(2 * np.pi * doy / 365.25)
    f[:, -1] = np.cos(2 * np.pi * doy / 365.25)
    return f


def windows(table, window):
    """(x, y, target_dates): every run of ``window`` days and the next day's temp_max."""
    f = features(table)
    days = len(f)
    if days <= window:
        raise DataUnavailable(
            f"{days} day(s) of weather are too few for windows of {window} "
            f"days and a day to predict"
        )
    idx = np.arange(window)[None, :] + np.arange(days - window)[:, None]
    x = f[idx]
    y = np.asarray(table["temp_max"], float)[window:]
    return x, y, table["date"][window:]


def split_mask(target_dates, test_year=TEST_YEAR):
    """True for windows whose target day is in ``test_year``."""
    return np.array([d.startswith(f"{test_year}-") for d in target_dates])


def load_data(path=None, window=14):
    """``(x_train, y_train), (x_test, y_test)``: windows (N, window, 11) in raw units and
    tomorrow's maximum temperature (N,) in °C; test = target day in 2015."""
    x, y, dates = windows(load_table(path), window)
    test = split_mask(dates)
    if not test.any() or test.all():
        raise DataUnavailable(
            f"the weather data give an empty "
            f"{'test' if not test.any() else 'training'} split "
            f"(test: target days in {TEST_YEAR})"
        )
    return (x[~test], y[~test]), (x[test], y[test])


__all__ = [
    "load_data",
    "load_table",
    "features",
    "windows",
    "split_mask",
    "parse_csv",
    "parse_rows",
    "FEATURES",
    "COLUMNS",
    "WEATHER",
]
