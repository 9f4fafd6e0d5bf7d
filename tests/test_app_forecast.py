"""`rnnkit forecast` end to end on a tiny weather file in the source's format
(seattle-weather.csv's columns and date style): the split by target year, the baselines'
numbers, the model learning, the members' average, and the user's mistakes."""

import datetime
import io
import json

import numpy as np
import pytest

from rnnkit import cli
from rnnkit.apps import forecast
from rnnkit.apps.task import load_app_model
from rnnkit.datasets import seattle_weather as sw

from helpers import run_cli, train_app

try:
    import matplotlib  # noqa: F401

    HAVE_MATPLOTLIB = True
except ImportError:
    HAVE_MATPLOTLIB = False

HEADER = "date,precipitation,temp_max,temp_min,wind,weather"


def weather_rows(start="2014-01-01", days=424, seed=0):
    """Days whose maximum swings back half way towards 15 °C each day (so "tomorrow =
    today" is poor and the last day's numbers tell tomorrow's), with a little noise."""
    rng = np.random.default_rng(seed)
    day = datetime.date.fromisoformat(start)
    t = 15.0
    rows = []
    for _ in range(days):
        lo = t - rng.uniform(3, 8)
        rows.append(
            f"{day:%Y/%m/%d},{rng.exponential(2):.1f},{t:.1f},{lo:.1f},"
            f"{rng.uniform(1, 6):.1f},{rng.choice(sw.WEATHER)}"
        )
        t = 15 - 0.5 * (t - 15) + rng.normal(0, 3)
        day += datetime.timedelta(days=1)
    return rows


@pytest.fixture(autouse=True)
def cache(rnnkit_cache):
    return rnnkit_cache


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "seattle-weather.csv"
    path.write_text(HEADER + "\n" + "\n".join(weather_rows()) + "\n", encoding="utf-8")
    return path


TINY = [
    "--window",
    "3",
    "--units",
    "8",
    "--members",
    "2",
    "--epochs",
    "25",
    "--patience",
    "25",
    "--learning-rate",
    "0.01",
    "--minutes",
    "60",
    "--quiet",
]


def test_split_by_target_year(data):
    (xtr, ytr), (xte, yte) = sw.load_data(data, window=3)
    # 2014-01-01 .. 2015-02-28: targets from 2014-01-04; 59 of them in 2015
    assert xtr.shape == (362, 3, 11) and xte.shape == (59, 3, 11)
    table = sw.load_table(data)
    assert table["date"][0] == "2014-01-01" and len(table["date"]) == 424
    assert yte[0] == table["temp_max"][365]  # 2015-01-01
    assert np.allclose(xte[0, :, 1], table["temp_max"][362:365])  # read from late 2014
    assert np.allclose(xte[0, -1, 4:9].sum(), 1.0)  # one-hot weather
    assert np.allclose(xte[..., 9] ** 2 + xte[..., 10] ** 2, 1.0)


def test_train_evaluate_predict(data, capsys, tmp_path, monkeypatch):
    model = tmp_path / "f.rnnkit"
    code, _, err = run_cli(
        ["forecast", "train", "--data", str(data), "--model", str(model), *TINY], capsys
    )
    assert code == 0, err
    png = tmp_path / "plot.png"
    plot = ["--plot", str(png)] if HAVE_MATPLOTLIB else []
    code, out, err = run_cli(
        ["forecast", "evaluate", "--data", str(data), "--model", str(model), "--json", *plot],
        capsys,
    )
    assert code == 0, err
    r = json.loads(out)
    (xtr, ytr), (xte, yte) = sw.load_data(data, window=3)
    persistence = float(np.mean(np.abs(xte[:, -1, 1] - yte)))
    assert r["baselines"]["persistence"]["mae_C"] == round(persistence, 4)
    # the swing is linear in the last day's maximum: least squares finds it (noise 3 °C)
    assert r["baselines"]["linear_same_inputs"]["mae_C"] < 0.75 * persistence
    assert r["model"]["mae_C"] < 0.85 * persistence, r
    assert r["model"]["members"] == 2 and len(r["model"]["member_mae_C"]) == 2
    assert r["data"]["test_windows"] == 59
    assert not HAVE_MATPLOTLIB or png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # predict: the last 3 days of the file, as a file and as inline rows
    rows = weather_rows()[-3:]
    days = tmp_path / "days.csv"
    days.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = run_cli(
        ["forecast", "predict", "--model", str(model), "--file", str(days)], capsys
    )
    assert code == 0, err
    assert out.startswith("2015-03-01: forecast maximum temperature ")
    code, out2, err = run_cli(["forecast", "predict", "--model", str(model), *rows], capsys)
    assert code == 0 and out2 == out
    code, out3, err = run_cli(
        ["forecast", "predict", "--model", str(model), ";".join(rows)], capsys
    )
    assert code == 0 and out3 == out
    monkeypatch.setattr("sys.stdin", io.StringIO(days.read_text(encoding="utf-8")))
    code, out4, err = run_cli(["forecast", "predict", "--model", str(model), "-"], capsys)
    assert code == 0 and out4 == out, err
    monkeypatch.setattr("sys.stdin", io.StringIO(days.read_text(encoding="utf-8")))
    code, _, err = run_cli(["forecast", "predict", "--model", str(model)], capsys)
    assert code == 2 and "give '-' as the input" in err

    # the printed number is the mean of the members' forecasts for that window
    m, meta = load_app_model(model, forecast.APP)
    x = sw.features(sw.parse_csv(HEADER + "\n" + "\n".join(rows)))[None]
    mean, each = forecast._forecast(m, meta, x)
    assert each.shape == (2, 1) and np.isclose(mean[0], each.mean())
    assert f"{mean[0]:.1f} °C" in out


@pytest.mark.parametrize(
    "rows, message",
    [
        (["2015-01-01,0.0,7.2,1.1,2.0,sun"], "reads the last 3 days; got 1 day(s)"),
        (
            ["2015-01-01,0.0,warm,1.1,2.0,sun", "2015-01-02,0,7,1,2,sun", "2015-01-03,0,7,1,2,sun"],
            "column temp_max must be a number; got 'warm'",
        ),
        (
            ["2015-01-01,0.0,7.2,1.1,2.0,hail", "2015-01-02,0,7,1,2,sun", "2015-01-03,0,7,1,2,sun"],
            "column weather must be one of",
        ),
        (
            ["2015-01-01,0,7,1,2,sun", "2015-01-03,0,7,1,2,sun", "2015-01-04,0,7,1,2,sun"],
            "days must be consecutive",
        ),
        (
            ["date,temp_max,weather", "2015-01-01,7,sun"],
            "lacks the column(s) precipitation, temp_min, wind",
        ),
        (["yesterday,0,7,1,2,sun"], "date must look like 2015-12-31"),
        (["2015-01-01,0,nan,1,2,sun"], "column temp_max must be a number; got 'nan'"),
    ],
)
def test_predict_errors(data, tmp_path, capsys, rows, message):
    model = tmp_path / "f.rnnkit"
    train_app(
        "forecast", data, model, "--window", "3", "--units", "2", "--members", "1", "--epochs", "1"
    )
    capsys.readouterr()
    code, _, err = run_cli(["forecast", "predict", "--model", str(model), *rows], capsys)
    assert code == 2 and message in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("temp_min", "tmin"), "lacks the column(s) temp_min"),
        (lambda t: t.replace("2014/03/02,", "2014/03/0x,"), "date must look like"),
        (
            lambda t: t.replace(HEADER + "\n", HEADER + "\n2013/12/30,1,2,3,4,sun\n"),
            "days must be consecutive",
        ),
        (lambda t: "\n".join(t.splitlines()[:200]), "need target days both before 2015"),
    ],
)
def test_malformed_data(data, capsys, edit, message):
    data.write_text(edit(data.read_text(encoding="utf-8")), encoding="utf-8")
    code, _, err = run_cli(["forecast", "train", "--data", str(data), *TINY], capsys)
    assert code in (1, 2) and message in err and "Traceback" not in err, err


def test_bad_options(data, capsys):
    code, _, err = run_cli(
        ["forecast", "train", "--data", str(data), "--learning-rate", "0"], capsys
    )
    assert code == 2 and "--learning-rate must be positive" in err
    with pytest.raises(SystemExit):
        cli.main(["forecast", "train", "--window", "0"])
    assert "expected a positive integer" in capsys.readouterr().err


def test_example_script_runs_on_a_local_file(data, capsys):
    import pathlib
    import runpy

    script = pathlib.Path(__file__).parent.parent / "examples" / "forecast.py"
    main = runpy.run_path(str(script), run_name="example")["main"]
    r = main(["--window", "3", "--units", "8", "--epochs", "15"], path=data)
    assert np.isfinite(r["mae"]) and r["mae"] < r["persistence"]
    assert "tomorrow = today" in capsys.readouterr().out
