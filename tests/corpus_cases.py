"""The cases of the broken-export corpus (tests/broken_exports.py): one defect each, as a data manager meets them.

Each function mutates a copy of the base export and returns what must happen (:class:`broken_exports.Expect`).
Rows are 1-based data rows under the header, as in the data-quality log.
"""
from __future__ import annotations

import pandas as pd

from broken_exports import TABLES, Case, Expect, Export, reformat_dates, xlsx_with


def _first(df: pd.DataFrame, mask) -> int:
    """1-based row of the first row where ``mask`` holds."""
    return int(pd.Series(mask).to_numpy().nonzero()[0][0]) + 1


def _set(ex: Export, role: str, table: str, row: int, column: str, value: str, **write) -> None:
    df = ex.read(role, table)
    df.loc[row - 1, column] = value
    ex.write(role, table, df, **write)


# --------------------------------------------------------------------------------------------------- one cell
#: (case, role, table, row, column, value written, cause): one cell mutated, located at that cell
CELL_CASES = [
    ("haic_date_excel_serial", "iso", "haic_cycles", 1, "haic_date", "45123", "Excel serial"),
    ("haic_date_impossible", "dmy", "haic_cycles", 2, "haic_date", "31/06/2023", "unparseable date"),
    ("date_after_export_2099", "mdy", "systemic_courses", 3, "start_date", "01/15/2099", "after the centre's export"),
    ("date_after_export_2029", "iso", "follow_up", 5, "last_contact_date", "2029-03-01", "after the centre's export"),
    ("zh_date_impossible", "zh", "tumour_assessments", 4, "assessment_date", "2023年02月30日", "unparseable date"),
    ("ae_grade_0", "dmy", "adverse_events", 2, "grade", "0", "allowed values"),
    ("ae_grade_7", "zh", "adverse_events", 3, "grade", "7", "allowed values"),
    ("unknown_sex_label", "mdy", "patients", 4, "sex", "X", "unknown category label"),
    ("ecog_7", "iso", "patients", 9, "ecog", "7", "allowed values"),
    ("text_in_number", "iso", "patients", 3, "inr", "1.1 (repeat)", "not a number"),
    ("orphan_child_row", "mdy", "haic_cycles", 1, "mrn", "ZZ-999999", "not in the centre's patients table"),
]


def _cell_case(name: str, role: str, table: str, row: int, column: str, value: str, cause: str) -> Case:
    def mutate(ex: Export) -> Expect:
        _set(ex, role, table, row, column, value)
        return Expect("located", role, ex.path(role, table).name, cause, row=row, column=column)
    return Case(name, mutate)


# --------------------------------------------------------------------------------------------------- dates
def day_first_under_month_first(ex: Export) -> Expect:
    for table in TABLES:
        ex.write("mdy", table, reformat_dates(ex.read("mdy", table), table, "%m/%d/%Y", "%d/%m/%Y"))
    return Expect("stopped", "mdy", "manifest.yaml", "day/month order")


def day_first_in_one_file(ex: Export) -> Expect:
    ex.write("mdy", "labs", reformat_dates(ex.read("mdy", "labs"), "labs", "%m/%d/%Y", "%d/%m/%Y"))
    return Expect("stopped", "mdy", "labs.csv", "day/month order")


def unknown_manifest_date_format(ex: Export) -> Expect:
    m = ex.manifest("dmy")
    m["date_format"] = "%Y.%m.%d"
    ex.write_manifest("dmy", m)
    return Expect("stopped", "dmy", "manifest.yaml", "not written as declared.*%d/%m/%Y")


def invalid_manifest_date_format(ex: Export) -> Expect:
    m = ex.manifest("iso")
    m["date_format"] = "ISO"
    ex.write_manifest("iso", m)
    return Expect("stopped", "iso", "manifest.yaml", "not a date format")


def human_manifest_date_format(ex: Export) -> Expect:
    m = ex.manifest("dmy")
    m["date_format"] = "DD/MM/YYYY"
    ex.write_manifest("dmy", m)
    return Expect("located", "dmy", "manifest.yaml", "not written as a strptime format", column="date_format")


# --------------------------------------------------------------------------------------------------- follow-up
def follow_up_alive_then_death(ex: Export) -> Expect:
    fu = ex.read("iso", "follow_up")
    row = _first(fu, fu["vital_status"].str.casefold().isin(["alive", "存活"]))
    contact = pd.Timestamp(fu.loc[row - 1, "last_contact_date"])
    later = fu.loc[[row - 1]].assign(vital_status="dead", death_date=(contact + pd.Timedelta(days=40)).strftime("%Y-%m-%d"),
                                     last_contact_date=(contact + pd.Timedelta(days=40)).strftime("%Y-%m-%d"))
    ex.write("iso", "follow_up", pd.concat([fu, later], ignore_index=True))
    mrn_row = row

    def check(run, base):
        s = run.cleaned.screened
        fu_rows = run.cleaned.tables["follow_up"]
        sid = fu_rows.loc[fu_rows["source_row"] == len(fu) + 1, "study_id"]
        if len(sid) != 1:
            return [f"the death row (row {len(fu) + 1}) was not kept"]
        return [] if int(s.loc[s["study_id"] == sid.iloc[0], "os_event"].iloc[0]) == 1 else ["the death was lost"]

    return Expect("located", "iso", "follow_up.csv", "several follow-up rows", row=mrn_row, column="vital_status",
                  added={("follow_up", len(fu) + 1)}, check=check)


def follow_up_conflicting_death_dates(ex: Export) -> Expect:
    fu = ex.read("dmy", "follow_up")
    row = _first(fu, fu["death_date"] != "")
    d = pd.to_datetime(fu.loc[row - 1, "death_date"], format="%d/%m/%Y")
    other = fu.loc[[row - 1]].assign(death_date=(d + pd.Timedelta(days=30)).strftime("%d/%m/%Y"))
    ex.write("dmy", "follow_up", pd.concat([fu, other], ignore_index=True))
    return Expect("located", "dmy", "follow_up.csv", "different death date", row=len(fu) + 1, column="death_date",
                  added={("follow_up", len(fu) + 1)})


# --------------------------------------------------------------------------------------------------- numbers
def thousands_separator(ex: Export) -> Expect:
    p = ex.read("iso", "patients")
    row = 7
    p.loc[row - 1, "afp"] = "12,345"
    ex.write("iso", "patients", p)

    def check(run, base):
        s = run.cleaned.screened
        v = s.loc[(s["center_id"] == ex.roles["iso"]) & (s["source_row"] == row), "afp"].iloc[0]
        return [] if v == 12345 else [f"'12,345' read as {v}"]

    return Expect("located", "iso", "patients.csv", "thousands separator", row=row, column="afp", check=check)


def semicolon_csv_decimal_comma(ex: Export) -> Expect:
    labs = ex.read("dmy", "labs")
    for c in ("value", "uln", "lln"):
        labs[c] = labs[c].str.replace(".", ",", regex=False)
    ex.write("dmy", "labs", labs, sep=";")
    return Expect("located", "dmy", "labs.csv", "delimited by ';'")


def semicolon_csv(ex: Export) -> Expect:
    ex.write("iso", "patients", ex.read("iso", "patients"), sep=";")
    return Expect("located", "iso", "patients.csv", "delimited by ';'")


def _relabel(df: pd.DataFrame, value: str, unit: str, factors: dict[str, float]) -> pd.DataFrame:
    """Values written in another unit than the one labelled: each row's value multiplied by its label's factor."""
    out = df.copy()
    f = out[unit].str.casefold().map(factors)
    has = f.notna() & (out[value] != "")
    out.loc[has, value] = (out.loc[has, value].astype(float) * f[has]).round(2).astype(str)
    return out


def bilirubin_mg_dl_labelled_umol(ex: Export) -> Expect:
    """mg/dL values under a µmol/L label (and µmol/L values under an mg/dL label)."""
    p = _relabel(ex.read("dmy", "patients"), "total_bilirubin", "total_bilirubin_unit",
                 {"umol/l": 1 / 17.1, "µmol/l": 1 / 17.1, "μmol/l": 1 / 17.1, "mg/dl": 17.1})
    ex.write("dmy", "patients", p)
    return Expect("located", "dmy", "patients.csv", "likely unit error.*17.1", column="total_bilirubin")


def diameters_cm_labelled_mm(ex: Export) -> Expect:
    t = ex.read("iso", "tumour_assessments")
    mm = t["diameter_unit"].str.casefold().isin(["mm", "毫米"])
    for c in ("ld_mm", "viable_ld_mm", "short_axis_mm"):
        has = mm & (t[c] != "")
        t.loc[has, c] = (t.loc[has, c].astype(float) / 10).round(1).astype(str)
    ex.write("iso", "tumour_assessments", t)
    return Expect("located", "iso", "tumour_assessments.csv", "likely unit error", column="ld_mm")


def albumin_in_the_other_unit(ex: Export) -> Expect:
    """g/dL values under a g/L label (and g/L values under a g/dL label): outside the physical range."""
    ex.write("mdy", "patients", _relabel(ex.read("mdy", "patients"), "albumin", "albumin_unit",
                                         {"g/l": 0.1, "g/dl": 10.0}))
    return Expect("located", "mdy", "patients.csv", "physical range|unit error", column="albumin")


def lab_creatinine_mg_dl_labelled_umol(ex: Export) -> Expect:
    labs = ex.read("iso", "labs")
    cr = labs["test"].str.casefold().isin(["creatinine", "crea", "cr", "肌酐"]) & labs["unit"].str.casefold().isin(
        ["umol/l", "µmol/l"])
    for c in ("value", "uln", "lln"):
        has = cr & (labs[c] != "")
        labs.loc[has, c] = (labs.loc[has, c].astype(float) / 88.4).round(2).astype(str)
    ex.write("iso", "labs", labs)
    return Expect("located", "iso", "labs.csv", "creatinine values outside the physical range|unit error",
                  column="value")


def max_tumour_size_in_mm(ex: Export) -> Expect:
    p = ex.read("dmy", "patients")
    has = p["max_tumour_size"] != ""
    p.loc[has, "max_tumour_size"] = (p.loc[has, "max_tumour_size"].astype(float) * 10).round(0).astype(int).astype(str)
    ex.write("dmy", "patients", p)
    return Expect("located", "dmy", "patients.csv", "physical range|unit error", column="max_tumour_size")


# --------------------------------------------------------------------------------------------------- labels, ranges
def negative_diameter(ex: Export) -> Expect:
    t = ex.read("mdy", "tumour_assessments")
    row = _first(t, t["ld_mm"] != "")
    t.loc[row - 1, "ld_mm"] = "-" + t.loc[row - 1, "ld_mm"]
    ex.write("mdy", "tumour_assessments", t)
    return Expect("located", "mdy", "tumour_assessments.csv", "physical range", row=row, column="ld_mm")


# --------------------------------------------------------------------------------------------------- export level
def header_only_patients(ex: Export) -> Expect:
    ex.write("dmy", "patients", ex.read("dmy", "patients").iloc[:0])
    return Expect("stopped", "dmy", "patients.csv", "header only")


def mrn_numbers_in_xlsx(ex: Export) -> Expect:
    """MRNs made of digits with leading zeros: text in every file but patients.xlsx, which stores numbers."""
    frames = {t: ex.read("zh", t) for t in TABLES}
    codes = {m: f"00{i + 1041:05d}" for i, m in enumerate(frames["patients"]["mrn"])}
    for t, df in frames.items():
        df["mrn"] = df["mrn"].map(codes).fillna(df["mrn"])
        ex.write("zh", t, df, numeric=None if t != "patients" else ("mrn",) + tuple(
            c for c in df.columns if c in ("afp", "albumin", "inr", "total_bilirubin")), )

    def check(run, base):
        a = run.cleaned.screened.groupby("center_id")["eligible"].sum()
        b = base.cleaned.screened.groupby("center_id")["eligible"].sum()
        c = ex.roles["zh"]
        return [] if a[c] == b[c] else [f"eligible at {c}: {a[c]} instead of {b[c]}"]

    return Expect("located", "zh", "patients.xlsx", "leading zeros", column="mrn", check=check)


def removed_required_column(ex: Export) -> Expect:
    ex.write("mdy", "patients", ex.read("mdy", "patients").drop(columns=["diagnosis_basis"]))
    center = ex.roles["mdy"]

    def check(run, base):
        dq = run.cleaned.quality.to_frame()
        hit = dq[(dq["center_id"] == center) & (dq["affects"] == "centre") & (dq["column"] == "diagnosis_basis")]
        return [] if len(hit) == 1 else ["no single centre-level entry naming diagnosis_basis as the cause"]

    return Expect("located", "mdy", "patients.csv", "required column missing", column="diagnosis_basis", check=check)


def gb18030_encoding(ex: Export) -> Expect:
    ex.write("zh", "patients", ex.read("zh", "patients"), name="patients.csv", encoding="gb18030")
    return Expect("located", "zh", "patients.csv", "not UTF-8")


def gbk_encoding(ex: Export) -> Expect:
    ex.write("zh", "adverse_events", ex.read("zh", "adverse_events"), name="adverse_events.csv", encoding="gbk")
    return Expect("located", "zh", "adverse_events.csv", "not UTF-8")


def data_on_second_sheet(ex: Export) -> Expect:
    labs = ex.read("zh", "labs")
    path = ex.path("zh", "labs")
    path.unlink()
    xlsx_with(path, [("说明", [["本表为化验结果导出"], ["导出日期 2025-10-01"]]),
                     ("化验", [list(labs.columns)] + labs.values.tolist())])
    return Expect("located", "zh", "labs.xlsx", "not on the first sheet")


def title_row_xlsx(ex: Export) -> Expect:
    fu = ex.read("zh", "follow_up")
    path = ex.path("zh", "follow_up")
    path.unlink()
    xlsx_with(path, [("随访", [["随访数据导出（2025年10月）"], list(fu.columns)] + fu.values.tolist())])
    return Expect("located", "zh", "follow_up.xlsx", "header on line 2")


def title_row_csv(ex: Export) -> Expect:
    path = ex.path("iso", "haic_cycles")
    text = path.read_text(encoding="utf-8")
    path.write_text("HAIC sessions export,,,\n" + text, encoding="utf-8")
    return Expect("located", "iso", "haic_cycles.csv", "header on line 2")


def table_as_csv_and_xlsx(ex: Export) -> Expect:
    ex.write("iso", "patients", ex.read("iso", "patients"), name="patients.xlsx", replace=False)
    return Expect("stopped", "iso", "patients", "present as patients.csv and patients.xlsx")


def file_matching_no_table(ex: Export) -> Expect:
    (ex.folder("dmy") / "patients_old.csv").write_text("mrn,sex\nX1,male\n", encoding="utf-8")
    return Expect("located", "dmy", "patients_old.csv", "matches no table")


def misnamed_required_table(ex: Export) -> Expect:
    path = ex.path("mdy", "labs")
    path.rename(path.with_name("Labs_export_2025.csv"))
    return Expect("stopped", "mdy", "labs", "required table 'labs' not found.*Labs_export_2025.csv")


def footer_total_row(ex: Export) -> Expect:
    path = ex.path("iso", "patients")
    n = len(ex.read("iso", "patients"))
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f"合计: {n} 例\n")
    return Expect("located", "iso", "patients.csv", "footer", row=n + 1)


def footer_exported_by(ex: Export) -> Expect:
    path = ex.path("mdy", "labs")
    n = len(ex.read("mdy", "labs"))
    with path.open("a", encoding="utf-8") as fh:
        fh.write("Exported by HIS v3.2 on 2025-10-12,,,,,,\n,,,,,,\nTotal rows: %d\n" % n)
    return Expect("located", "mdy", "labs.csv", "footer", row=n + 1)


def blank_rows_at_end(ex: Export) -> Expect:
    path = ex.path("dmy", "follow_up")
    n = len(ex.read("dmy", "follow_up"))
    with path.open("a", encoding="utf-8") as fh:
        fh.write(",,,\n,,,\n,,,\n")
    return Expect("located", "dmy", "follow_up.csv", "empty row", row=n + 1)


def all_problems_in_one_pass(ex: Export) -> Expect:
    """Two centres, two unusable files: one stop listing both."""
    ex.write("iso", "patients", ex.read("iso", "patients").iloc[:0])
    ex.write("mdy", "labs", ex.read("mdy", "labs"), name="labs.xlsx", replace=False)
    return Expect("stopped", "iso", "patients.csv",
                  rf"header only(.|\n)*{ex.roles['mdy']}: table 'labs' is present as labs.csv and labs.xlsx")


def missing_manifest(ex: Export) -> Expect:
    (ex.folder("dmy") / "manifest.yaml").unlink()
    return Expect("stopped", "dmy", "manifest.yaml", "no manifest")


def missing_mrn_column(ex: Export) -> Expect:
    ex.write("mdy", "labs", ex.read("mdy", "labs").drop(columns=["mrn"]))
    return Expect("stopped", "mdy", "labs.csv", "'mrn' is missing")


def corrupt_xlsx(ex: Export) -> Expect:
    ex.path("zh", "labs").write_bytes(b"PK\x03\x04 this is not a workbook")
    return Expect("stopped", "zh", "labs.xlsx", "cannot be read")


def row_with_extra_cells(ex: Export) -> Expect:
    path = ex.path("iso", "adverse_events")
    lines = path.read_text(encoding="utf-8").splitlines()
    cells = lines[2].split(",")
    cells[1] = cells[1] + ", mild"          # an unquoted comma inside the AE term
    lines[2] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Expect("located", "iso", "adverse_events.csv", "more cells than the header", row=2)


def duplicate_header_column(ex: Export) -> Expect:
    p = ex.read("dmy", "patients")
    p.insert(len(p.columns), "ECOG", p["ecog"])
    ex.write("dmy", "patients", p)
    return Expect("located", "dmy", "patients.csv", "two columns hold 'ecog'", column="ecog")


def header_alias_and_case(ex: Export) -> Expect:
    labs = ex.read("iso", "labs").rename(columns={"mrn": "病历号", "lab_date": "Lab Date"})
    ex.write("iso", "labs", labs)
    return Expect("located", "iso", "labs.csv", "read as column 'mrn'", column="mrn")


def exact_duplicate_row(ex: Export) -> Expect:
    labs = ex.read("mdy", "labs")
    ex.write("mdy", "labs", pd.concat([labs, labs.iloc[[0]]], ignore_index=True))
    return Expect("located", "mdy", "labs.csv", "exact duplicate", row=len(labs) + 1, added=set())


# --------------------------------------------------------------------------------------------------- identifiers
def name_and_phone_in_ae_term(ex: Export) -> Expect:
    p = ex.read("iso", "patients")
    name, phone = p.loc[2, "patient_name"], p.loc[2, "phone"]
    ae = ex.read("iso", "adverse_events")
    ae.loc[0, "ae_term"] = f"{ae.loc[0, 'ae_term']} - call {name} {phone}"
    ex.write("iso", "adverse_events", ae)
    return Expect("located", "iso", "adverse_events.csv", "identifier.*typed into", row=1, column="ae_term",
                  identifiers=(name, phone))


def national_id_in_histology(ex: Export) -> Expect:
    p = ex.read("dmy", "patients")
    nid = p.loc[5, "national_id"]
    p.loc[2, "histology_subtype"] = nid
    ex.write("dmy", "patients", p)
    return Expect("located", "dmy", "patients.csv", "national ID.*typed into", row=3, column="histology_subtype",
                  identifiers=(nid,))


def phone_in_lab_value(ex: Export) -> Expect:
    phone = ex.read("mdy", "patients").loc[0, "phone"]
    _set(ex, "mdy", "labs", 5, "value", phone)
    return Expect("located", "mdy", "labs.csv", "typed into", row=5, column="value", identifiers=(phone,))


def name_as_lesion_id(ex: Export) -> Expect:
    name = ex.read("iso", "patients").loc[0, "patient_name"]
    _set(ex, "iso", "tumour_assessments", 2, "lesion_id", name)
    return Expect("located", "iso", "tumour_assessments.csv", "name.*typed into", row=2, column="lesion_id",
                  identifiers=(name,))


def chinese_name_in_ae_term_xlsx(ex: Export) -> Expect:
    p = ex.read("zh", "patients")
    name = next(n for n in p["patient_name"] if any("\u4e00" <= ch <= "\u9fff" for ch in n))
    _set(ex, "zh", "adverse_events", 4, "ae_term", f"腹泻（{name}家属代诉）")
    return Expect("located", "zh", "adverse_events.xlsx", "name.*typed into", row=4, column="ae_term",
                  identifiers=(name,))


def unseen_national_id_and_mobile(ex: Export) -> Expect:
    nid, mobile = "11010519491231002X", "+86 139-1234-5678"
    _set(ex, "mdy", "adverse_events", 6, "ae_term", f"fever (ID {nid}, tel {mobile})")
    return Expect("located", "mdy", "adverse_events.csv", "national ID.*mobile|mobile.*national ID", row=6,
                  column="ae_term", identifiers=(nid, "139-1234-5678"))


def mrn_in_free_text(ex: Export) -> Expect:
    mrn = ex.read("dmy", "patients").loc[4, "mrn"]
    _set(ex, "dmy", "adverse_events", 3, "ae_term", f"rash, see {mrn}")
    return Expect("located", "dmy", "adverse_events.csv", "medical record number", row=3, column="ae_term",
                  identifiers=(mrn,))


CASES = [_cell_case(*c) for c in CELL_CASES] + [Case(f.__name__, f) for f in (
    day_first_under_month_first, day_first_in_one_file, unknown_manifest_date_format, invalid_manifest_date_format,
    human_manifest_date_format, follow_up_alive_then_death, follow_up_conflicting_death_dates, thousands_separator,
    semicolon_csv_decimal_comma, semicolon_csv, bilirubin_mg_dl_labelled_umol, diameters_cm_labelled_mm,
    albumin_in_the_other_unit, lab_creatinine_mg_dl_labelled_umol, max_tumour_size_in_mm, negative_diameter,
    header_only_patients, mrn_numbers_in_xlsx, removed_required_column, gb18030_encoding, gbk_encoding,
    data_on_second_sheet, title_row_xlsx, title_row_csv, table_as_csv_and_xlsx, file_matching_no_table,
    misnamed_required_table, footer_total_row, footer_exported_by, blank_rows_at_end, all_problems_in_one_pass,
    missing_manifest, missing_mrn_column, corrupt_xlsx, row_with_extra_cells, duplicate_header_column,
    header_alias_and_case, exact_duplicate_row, name_and_phone_in_ae_term, national_id_in_histology,
    phone_in_lab_value, name_as_lesion_id, chinese_name_in_ae_term_xlsx, unseen_national_id_and_mobile,
    mrn_in_free_text)]
