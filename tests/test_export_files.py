"""Reading centre files as a data manager sends them: encodings, delimiters, sheets, title rows, footers, ragged
rows, duplicate headers, files twice or matching no table; every stop lists all centres' problems at once."""
import openpyxl
import pandas as pd
import pytest

from analysis_utils.study.contract import ContractError
from analysis_utils.study.export_files import read_raw_table, read_table
from analysis_utils.study.quality import QualityLog
from analysis_utils.study.reading import load_exports, read_center
from conftest import patient_tables

MANIFEST = {"center_id": "C01", "date_format": "%Y-%m-%d", "language": "zh"}


def _read(path, table, manifest=MANIFEST):
    log = QualityLog()
    raw = read_table(path, table, manifest, f"C01/{path.name}", log)
    return raw, log.to_frame()


def test_gb18030_and_gbk_are_read_and_said(tmp_path):
    text = "mrn,ae_term,grade,onset_date\nA1,腹泻,2,2023-02-01\nA1,手足综合征,1,2023-03-01\n"
    for enc in ("gb18030", "gbk"):
        path = tmp_path / "adverse_events.csv"
        path.write_bytes(text.encode(enc))
        raw, dq = _read(path, "adverse_events")
        assert raw.frame["ae_term"].tolist() == ["腹泻", "手足综合征"]
        assert (dq["rule"] == "file is not UTF-8").sum() == 1 and "GB18030" in dq["action"].iloc[0]


def test_declared_encoding_is_used_and_a_wrong_one_stops(tmp_path):
    path = tmp_path / "adverse_events.csv"
    path.write_bytes("mrn,ae_term\nA1,腹泻\n".encode("gbk"))
    raw, _ = _read(path, "adverse_events", {**MANIFEST, "encoding": "gbk"})
    assert raw.frame["ae_term"].iloc[0] == "腹泻"
    with pytest.raises(ContractError, match=r"C01/adverse_events.csv.*encoding 'ascii'"):
        _read(path, "adverse_events", {**MANIFEST, "encoding": "ascii"})


def test_semicolon_csv_with_a_title_line_above_the_header(tmp_path):
    path = tmp_path / "labs.csv"
    path.write_text("Laboratory export 2025;;\nmrn;lab_date;test;value;unit\nA1;2023-01-30;ALT;35,5;U/L\n", "utf-8")
    raw, dq = _read(path, "labs")
    assert raw.frame[["mrn", "value"]].values.tolist() == [["A1", "35,5"]]
    assert raw.frame["source_row"].tolist() == [1]
    assert set(dq["rule"]) == {"CSV delimited by ';', not by commas", "header on line 2, not on the first line"}


def test_table_on_a_second_sheet_below_a_title(tmp_path):
    path = tmp_path / "follow_up.xlsx"
    wb = openpyxl.Workbook()
    wb.active.title = "说明"
    wb.active.append(["随访表说明"])
    ws = wb.create_sheet("数据")
    ws.append(["随访数据导出"])
    ws.append(["病历号", "last_contact_date", "vital_status", "death_date"])
    ws.append(["A1", "2024-01-01", "存活", None])
    wb.save(path)
    raw, dq = _read(path, "follow_up")
    assert raw.frame[["mrn", "vital_status"]].values.tolist() == [["A1", "存活"]]
    assert dq["action"].str.contains("read from sheet '数据'").any()
    assert dq["rule"].str.contains("header on line 2").any()
    assert dq["action"].str.contains("read as column 'mrn'").any()


def test_the_table_on_two_sheets_stops(tmp_path):
    path = tmp_path / "follow_up.xlsx"
    wb = openpyxl.Workbook()
    for name in ("a", "b"):
        ws = wb.create_sheet(name)
        ws.append(["mrn", "last_contact_date", "vital_status", "death_date"])
    wb.save(path)
    with pytest.raises(ContractError, match="several sheets"):
        _read(path, "follow_up")


def test_numeric_mrn_cells_are_reported(tmp_path):
    path = tmp_path / "follow_up.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["mrn", "last_contact_date", "vital_status", "death_date"])
    wb.active.append([8102, "2024-01-01", "alive", None])
    wb.active.append(["008103", "2024-01-01", "alive", None])
    wb.save(path)
    raw, _ = _read(path, "follow_up")
    assert raw.frame["mrn"].tolist() == ["8102", "008103"]
    assert raw.numeric_mrn.tolist() == [True, False]


def test_footer_total_and_blank_rows_are_not_records(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text("mrn,sex,ecog,afp,etiology,ascites\nA1,M,1,5,HBV,none\nA2,F,0,7,HBV,none\n,,,,,\n"
                    "合计: 2 例,,,,,\nExported by HIS,,,,,\n99,,,,,\n", "utf-8")
    raw, dq = _read(path, "patients")
    assert raw.frame["mrn"].tolist() == ["A1", "A2"]
    footer = dq[dq["rule"].str.startswith("footer")]
    assert footer["row"].tolist() == [4, 5, 6] and (footer["affects"] == "row").all()
    assert dq.loc[dq["rule"] == "empty row(s)", "row"].tolist() == [3]


def test_a_sparse_row_with_a_real_mrn_in_the_middle_stays_a_record(tmp_path):
    path = tmp_path / "follow_up.csv"
    path.write_text("mrn,last_contact_date,vital_status,death_date\nA1,2024-01-01,,\nA2,2024-01-01,alive,\n", "utf-8")
    raw, dq = _read(path, "follow_up")
    assert raw.frame["mrn"].tolist() == ["A1", "A2"] and dq.empty


def test_a_row_with_more_cells_than_the_header_is_blanked_not_shifted(tmp_path):
    path = tmp_path / "adverse_events.csv"
    path.write_text("mrn,ae_term,grade,onset_date\nA1,rash, mild,2,2023-02-01\nA1,fever,1,2023-02-03\n"
                    "A1,nausea,1,2023-02-04\n", "utf-8")
    raw, dq = _read(path, "adverse_events")
    assert raw.frame.loc[0, ["mrn", "ae_term", "grade"]].tolist() == ["A1", "", ""]
    assert raw.frame.loc[1, ["ae_term", "grade"]].tolist() == ["fever", "1"]
    hit = dq[dq["rule"].str.contains("more cells than the header")]
    assert hit["row"].tolist() == [1] and hit["severity"].tolist() == ["error"]


def test_two_columns_for_one_contract_column(tmp_path):
    path = tmp_path / "follow_up.csv"
    path.write_text("mrn,vital_status,Vital Status\nA1,alive,dead\n", "utf-8")
    raw, dq = _read(path, "follow_up")
    assert raw.frame["vital_status"].tolist() == ["alive"]
    assert dq["rule"].str.contains("two columns hold 'vital_status'").any()


def test_no_header_line_stops_naming_the_file(tmp_path):
    path = tmp_path / "labs.csv"
    path.write_text("A1,2023-01-30,ALT,35,U/L\n", "utf-8")
    with pytest.raises(ContractError, match=r"C01/labs.csv: no header line"):
        _read(path, "labs")


def test_read_raw_table_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "C09" / "labs.csv"
    path.parent.mkdir()
    path.write_text("mrn,value\nA1,3\n", "utf-8")
    assert read_raw_table(path).columns.tolist() == ["source_row", "mrn", "value"]


def test_every_unusable_file_of_every_centre_in_one_stop(make_export):
    raw = make_export({"C01": [patient_tables("A1")], "C02": [patient_tables("B1")], "C03": [patient_tables("D1")]})
    pd.read_csv(raw / "C01" / "patients.csv", dtype=str).iloc[:0].to_csv(raw / "C01" / "patients.csv", index=False)
    (raw / "C02" / "labs.xlsx").write_bytes((raw / "C02" / "labs.csv").read_bytes())
    (raw / "C03" / "manifest.yaml").unlink()
    with pytest.raises(ContractError) as err:
        load_exports(raw, QualityLog())
    problems = err.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("C01/patients.csv: no data rows (header only)")
    assert problems[1].startswith("C02: table 'labs' is present as labs.csv and labs.xlsx")
    assert problems[2].startswith("C03/manifest.yaml: no manifest.yaml")
    assert all(p in str(err.value) for p in problems)


def test_files_matching_no_table_and_misnamed_tables(make_export):
    raw = make_export({"C01": [patient_tables("A1")]})
    (raw / "C01" / "notes.txt").write_text("call back", "utf-8")
    (raw / "C01" / "Labs.CSV").write_bytes((raw / "C01" / "labs.csv").read_bytes())
    (raw / "C01" / "labs.csv").unlink()
    log = QualityLog()
    read_center(raw / "C01", log)
    dq = log.to_frame()
    assert ((dq["file"] == "C01/notes.txt") & (dq["severity"] == "warning")).any()
    assert ((dq["file"] == "C01/Labs.CSV") & dq["rule"].str.contains("differs from the table name")).any()
    (raw / "C01" / "Labs.CSV").rename(raw / "C01" / "labs_2025.csv")
    with pytest.raises(ContractError, match=r"'labs' not found.*labs_2025.csv.*manifest.yaml key files"):
        read_center(raw / "C01", QualityLog())


def test_manifest_files_key_names_a_file(make_export):
    import yaml
    raw = make_export({"C01": [patient_tables("A1")]})
    (raw / "C01" / "labs.csv").rename(raw / "C01" / "化验.csv")
    m = yaml.safe_load((raw / "C01" / "manifest.yaml").read_text())
    (raw / "C01" / "manifest.yaml").write_text(yaml.safe_dump({**m, "files": {"labs": "化验.csv"}}, allow_unicode=True))
    tables = read_center(raw / "C01", QualityLog())
    assert len(tables["labs"]) == 2 and tables["labs"]["source_file"].iloc[0] == "C01/化验.csv"
