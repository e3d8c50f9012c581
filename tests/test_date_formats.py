"""The declared date format against the dates written: translation, unknown formats, day/month order."""
import pandas as pd
import pytest
import yaml

from analysis_utils.study.contract import ContractError, excel_serial_date, harmonise_table
from analysis_utils.study.date_formats import check_date_formats, strptime_format, swapped
from analysis_utils.study.quality import QualityLog
from analysis_utils.study.reading import load_exports
from conftest import patient_tables


def test_strptime_format_translation_and_refusal():
    assert strptime_format("%d/%m/%Y") == ("%d/%m/%Y", False)
    assert strptime_format("DD/MM/YYYY") == ("%d/%m/%Y", True)
    assert strptime_format("yyyy年mm月dd日") == ("%Y年%m月%d日", True)
    assert strptime_format("ISO") == (None, False) and strptime_format("%Y-%m") == (None, False)
    assert swapped("%m/%d/%Y") == "%d/%m/%Y" and swapped("%Y%m%d") == "%Y%d%m" and swapped("%d %b %Y") is None


def _frames(dates, table="labs"):
    frame = pd.DataFrame({"source_row": range(1, len(dates) + 1), "mrn": "A1", "lab_date": dates})
    return {table: (f"C04/{table}.csv", frame)}


def test_day_first_dates_under_a_month_first_manifest_stop():
    # 13/01 ... 28/01 are valid only day-first; 01/02 ... 12/02 are ambiguous
    dates = [f"{d:02d}/01/2024" for d in range(13, 29)] + [f"{d:02d}/02/2024" for d in range(1, 13)]
    problems = []
    check_date_formats("C04", {"center_id": "C04", "date_format": "%m/%d/%Y"}, _frames(dates), QualityLog(), problems)
    assert len(problems) == 1
    assert problems[0].startswith("C04/labs.csv: the day/month order of the dates contradicts manifest.yaml key "
                                  "date_format '%m/%d/%Y': 16 dates are valid only as '%d/%m/%Y' and 0 only as")
    assert "row 1 column lab_date: '13/01/2024'" in problems[0]


def test_a_few_typos_do_not_stop_but_a_wrong_format_does():
    ok = [f"{m:02d}/{d:02d}/2024" for m in range(1, 13) for d in (3, 15, 28)] + ["31/01/2024"]
    problems = []
    check_date_formats("C04", {"center_id": "C04", "date_format": "%m/%d/%Y"}, _frames(ok), QualityLog(), problems)
    assert problems == []
    check_date_formats("C04", {"center_id": "C04", "date_format": "%Y.%m.%d"}, _frames(ok), QualityLog(), problems)
    assert len(problems) == 1 and "0 of 37 date cells parse" in problems[0] and "fit '%m/%d/%Y'" in problems[0]


def test_a_wrong_centre_format_is_named_once_at_the_manifest(make_export):
    raw = make_export({"C01": [patient_tables("A1"), patient_tables("A2", n=2)]}, date_formats={"C01": "%d.%m.%Y"})
    m = yaml.safe_load((raw / "C01" / "manifest.yaml").read_text())
    (raw / "C01" / "manifest.yaml").write_text(yaml.safe_dump({**m, "date_format": "%Y/%m/%d"}))
    with pytest.raises(ContractError) as err:
        load_exports(raw, QualityLog())
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith("C01/manifest.yaml: the dates are not written as declared by key "
                                            "date_format '%Y/%m/%d'")


def test_per_table_date_format_overrides_the_centre_one(make_export):
    raw = make_export({"C01": [patient_tables("A1")]})
    labs = pd.read_csv(raw / "C01" / "labs.csv", dtype=str)
    labs["lab_date"] = "30/01/2023"
    labs.to_csv(raw / "C01" / "labs.csv", index=False)
    m = yaml.safe_load((raw / "C01" / "manifest.yaml").read_text())
    (raw / "C01" / "manifest.yaml").write_text(yaml.safe_dump({**m, "date_formats": {"labs": "DD/MM/YYYY"}}))
    log = QualityLog()
    tables = load_exports(raw, log)
    assert (tables["labs"]["lab_date"] == pd.Timestamp("2023-01-30")).all()
    assert ((log.to_frame()["column"] == "date_formats") & log.to_frame()["action"].str.contains("%d/%m/%Y")).any()


def test_excel_serials_future_and_ancient_dates_are_located():
    assert excel_serial_date("45123") == pd.Timestamp("2023-07-16") and excel_serial_date("2023") is None
    raw = pd.DataFrame({"source_row": [1, 2, 3, 4], "mrn": ["A1"] * 4, "cycle_number": ["1", "2", "3", "4"],
                        "haic_date": ["45123", "2099-01-01", "1850-01-01", "2023-06-31"], "regimen": ["FOLFOX"] * 4})
    log = QualityLog()
    out = harmonise_table(raw, "haic_cycles", {"center_id": "C01", "date_format": "%Y-%m-%d",
                                                "export_date": "2025-10-01"}, "C01/haic_cycles.csv", log)
    assert out["haic_date"].isna().all() and len(out) == 4  # HAIC rows kept: their arm is the treatment rules' call
    rules = log.to_frame().groupby("row")["rule"].apply(" | ".join)
    assert "Excel serial" in rules[1] and "export date (2025-10-01)" in rules[2]
    assert "date before 1900" in rules[3] and "unparseable date (declared format %Y-%m-%d)" in rules[4]
