"""Reading and harmonising centre exports: dates, labels, units, pandera checks, fatal errors."""
import pandas as pd
import pytest

from analysis_utils.study.reading import read_center
from analysis_utils.study.contract import (ContractError, harmonise_table, load_contract, parse_dates,
                                     synonym_map)
from analysis_utils.study.quality import QualityLog
from conftest import patient_tables, write_center


def test_declared_date_format_is_used_not_guessed():
    # 03/04/2023 is 3 April under %d/%m/%Y and 4 March under %m/%d/%Y: the manifest decides
    d, _, _ = parse_dates(pd.Series(["03/04/2023"]), "%d/%m/%Y")
    assert d.iloc[0] == pd.Timestamp("2023-04-03")
    d, _, _ = parse_dates(pd.Series(["03/04/2023"]), "%m/%d/%Y")
    assert d.iloc[0] == pd.Timestamp("2023-03-04")


def test_chinese_date_format_iso_fallback_and_unparseable():
    d, iso, bad = parse_dates(pd.Series(["2023年4月3日", "2023-04-05", "31/02/2023", ""]), "%Y年%m月%d日")
    assert d.iloc[0] == pd.Timestamp("2023-04-03")
    assert d.iloc[1] == pd.Timestamp("2023-04-05") and iso.tolist() == [False, True, False, False]
    assert bad.tolist() == [False, False, True, False]


def test_synonyms_include_chinese_labels():
    m = synonym_map(load_contract().columns("patients")["sex"])
    assert m["男"] == "male" and m["f"] == "female"


def _harmonise(table, rows, fmt="%Y-%m-%d"):
    log = QualityLog()
    raw = pd.DataFrame(rows).astype(str)
    raw.insert(0, "source_row", range(1, len(raw) + 1))
    out = harmonise_table(raw, table, {"center_id": "C09", "date_format": fmt}, "C09/x.csv", log)
    return out, log.to_frame()


def test_units_converted_explicitly_and_missing_unit_logged():
    rows = patient_tables("Z1")["patients"] * 3
    rows = [dict(r) for r in rows]
    rows[0].update(total_bilirubin="1.2", total_bilirubin_unit="mg/dL", albumin="3.5", albumin_unit="g/dL")
    rows[1].update(total_bilirubin="20", total_bilirubin_unit="µmol/L")
    rows[2].update(total_bilirubin="20", total_bilirubin_unit="")
    out, dq = _harmonise("patients", rows)
    # 1.2 mg/dL x 17.1 = 20.52 umol/L; 3.5 g/dL x 10 = 35 g/L; a blank unit is never guessed
    assert out["total_bilirubin"].tolist()[:2] == pytest.approx([20.52, 20.0])
    assert out["albumin"].iloc[0] == pytest.approx(35.0)
    assert pd.isna(out["total_bilirubin"].iloc[2])
    hit = dq[(dq.column == "total_bilirubin_unit") & (dq.row == 3)]
    assert len(hit) == 1 and hit.file.iloc[0] == "C09/x.csv" and "never guessed" in hit.action.iloc[0]


def test_unknown_label_out_of_range_and_bad_number_are_located():
    rows = [dict(r) for r in patient_tables("Z1")["patients"] * 3]
    rows[0]["sex"] = "U"
    rows[1]["albumin"] = "350"      # decimal slip: outside the physical range 5-70 g/L
    rows[2]["ecog"] = "7"           # not an allowed ECOG value
    rows[2]["afp"] = "12,5"         # decimal comma -> 12.5
    out, dq = _harmonise("patients", rows)
    assert out["sex"].iloc[0] is None and pd.isna(out["albumin"].iloc[1]) and pd.isna(out["ecog"].iloc[2])
    assert out["afp"].iloc[2] == 12.5
    located = set(zip(dq.row.astype(int), dq.column))
    assert {(1, "sex"), (2, "albumin"), (3, "ecog")} <= located


def test_identifier_values_never_enter_the_log():
    rows = [dict(r) for r in patient_tables("Z1")["patients"]]
    rows[0]["birth_date"] = "not a date"
    _, dq = _harmonise("patients", rows)
    assert (dq.column == "birth_date").any()
    assert "not a date" not in dq.to_string()


def test_lab_units_per_test():
    labs = patient_tables("Z1")["labs"] + [{"mrn": "Z1", "lab_date": "2023-01-30", "test": "ALT", "value": "35",
                                            "unit": "mmol/L", "uln": "40", "lln": ""}]
    out, dq = _harmonise("labs", labs)
    # platelets 150000 /mm3 x 0.001 = 150 x10^9/L; LLN 100000 -> 100; ALT in mmol/L is not a declared unit
    assert out["value"].tolist()[:2] == pytest.approx([35.0, 150.0]) and out["lln"].iloc[1] == pytest.approx(100.0)
    assert pd.isna(out["value"].iloc[2]) and ((dq.row == 3) & (dq.column == "unit")).any()


def test_missing_table_and_missing_manifest_stop_with_the_file_named(tmp_path):
    folder = write_center(tmp_path, "C01", [patient_tables("A1")])
    (folder / "labs.csv").unlink()
    with pytest.raises(ContractError, match=r"C01.*'labs' not found"):
        read_center(folder, QualityLog())
    (folder / "manifest.yaml").unlink()
    with pytest.raises(ContractError, match="manifest"):
        read_center(folder, QualityLog())


def test_unreadable_file_stops_with_the_file_named(tmp_path):
    folder = write_center(tmp_path, "C01", [patient_tables("A1")], fmt="csv")
    (folder / "patients.csv").unlink()
    (folder / "patients.xlsx").write_bytes(b"this is not a spreadsheet")
    with pytest.raises(ContractError, match=r"patients\.xlsx.*cannot be read"):
        read_center(folder, QualityLog())


def test_missing_required_column_is_logged_and_filled(tmp_path):
    folder = write_center(tmp_path, "C01", [patient_tables("A1")])
    df = pd.read_csv(folder / "patients.csv", dtype=str).drop(columns=["ecog"])
    df.to_csv(folder / "patients.csv", index=False)
    log = QualityLog()
    tables = read_center(folder, log)
    assert tables["patients"]["ecog"].isna().all()
    dq = log.to_frame()
    assert ((dq.column == "ecog") & (dq.rule == "required column missing") & (dq.file == "C01/patients.csv")).any()


def test_contract_labels_are_strings_not_yaml_booleans():
    # YAML 1.1 reads an unquoted no/yes as a boolean, which would silently never match a centre's label
    contract = load_contract()
    for table in contract.tables:
        for col, spec in contract.columns(table).items():
            labels = list(spec.get("allowed") or [])
            for variants in (spec.get("synonyms") or {}).values():
                labels += list(variants)
            assert not any(isinstance(v, bool) for v in labels), f"{table}.{col}: quote yes/no in the YAML"


def test_human_readable_dictionary_is_up_to_date():
    from pathlib import Path

    from analysis_utils.study.contract import data_dictionary_markdown
    page = Path(__file__).resolve().parents[1] / "docs" / "data-dictionary.md"
    assert page.read_text(encoding="utf-8") == data_dictionary_markdown(), \
        "docs/data-dictionary.md is stale: run `python -m analysis_utils dictionary`"
