"""Exports stage: each centre's files as strings in the data contract's export format, then written to raw/.

The contract is src/analysis_utils/study/data/data_dictionary.yaml (docs/data-dictionary.md). Each centre writes
its own way (population.Centre): date format, language (category labels from the contract synonyms, one preferred
variant per value and 12 % mixing; Chinese or English AE terms), bilirubin and albumin units (with row-level drift
at some centres), lab units (value / factor of the contract's lab_units; local ULN/LLN in the same unit),
diameters in mm or cm, Vp or Cheng PVTT grades, site-recorded BOR or not, CSV or XLSX (xlsx.py). All dates are
strings. Each table carries hidden canonical information (`Table.meta`) so that defects.py can inject defects and
log them with their final row numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import yaml

from analysis_utils.synthetic.config import LAB_TESTS
from analysis_utils.synthetic.events import Events
from analysis_utils.synthetic.population import Centre, index_days
from analysis_utils.synthetic.xlsx import write_xlsx

CONTRACT_PATH = Path(__file__).resolve().parents[1] / "study" / "data" / "data_dictionary.yaml"
TABLES = ("patients", "haic_cycles", "systemic_courses", "tumour_assessments", "labs", "adverse_events",
          "follow_up")


# Clinical AE terms as centres write them (English, Chinese); lab AE terms under the lab test's name.
AE_TERM_VARIANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "hypertension": {"en": ("hypertension", "Hypertension", "high blood pressure"), "zh": ("高血压", "血压升高")},
    "ppe": {"en": ("hand-foot skin reaction", "HFSR", "Palmar-plantar erythrodysesthesia syndrome",
                   "hand-foot syndrome"), "zh": ("手足综合征", "手足皮肤反应")},
    "diarrhea": {"en": ("diarrhea", "Diarrhoea"), "zh": ("腹泻",)},
    "fatigue": {"en": ("fatigue", "Fatigue", "asthenia"), "zh": ("乏力", "疲劳")},
    "abdominal_pain": {"en": ("abdominal pain", "Abdominal pain"), "zh": ("腹痛",)},
    "nausea": {"en": ("nausea", "Nausea"), "zh": ("恶心",)},
    "vomiting": {"en": ("vomiting", "Vomiting"), "zh": ("呕吐",)},
    "hypothyroidism": {"en": ("hypothyroidism", "Hypothyroidism"), "zh": ("甲状腺功能减退", "甲减")},
    "rash": {"en": ("rash", "rash maculo-papular", "Rash"), "zh": ("皮疹",)},
    "fever": {"en": ("fever", "pyrexia", "Fever"), "zh": ("发热",)},
    "proteinuria": {"en": ("proteinuria", "Proteinuria"), "zh": ("蛋白尿",)},
    "platelets": {"en": ("thrombocytopenia", "platelet count decreased"), "zh": ("血小板减少",)},
    "neutrophils": {"en": ("neutropenia", "neutrophil count decreased"), "zh": ("中性粒细胞减少",)},
    "wbc": {"en": ("leukopenia", "white blood cell decreased"), "zh": ("白细胞减少",)},
    "hemoglobin": {"en": ("anemia", "Anaemia"), "zh": ("贫血",)},
    "alt": {"en": ("ALT increased", "transaminase elevation"), "zh": ("谷丙转氨酶升高", "转氨酶升高")},
    "ast": {"en": ("AST increased", "transaminase elevation"), "zh": ("谷草转氨酶升高", "转氨酶升高")},
    "bilirubin": {"en": ("blood bilirubin increased", "hyperbilirubinemia"), "zh": ("胆红素升高",)},
    "grade5_liver": {"en": ("hepatic failure",), "zh": ("肝衰竭",)},
    "grade5_bleed": {"en": ("gastrointestinal hemorrhage",), "zh": ("消化道出血",)},
    "grade5_hepatitis": {"en": ("immune-mediated hepatitis",), "zh": ("免疫性肝炎",)},
}


# Decimals written per (test, unit).
LAB_DECIMALS = {("alt", "U/L"): 0, ("alt", "IU/L"): 0, ("ast", "U/L"): 0, ("ast", "IU/L"): 0,
                ("bilirubin", "umol/L"): 1, ("bilirubin", "µmol/L"): 1, ("bilirubin", "mg/dL"): 2,
                ("albumin", "g/L"): 1, ("albumin", "g/dL"): 2, ("platelets", "10^9/L"): 0,
                ("platelets", "/mm3"): 0, ("platelets", "10^3/uL"): 0, ("neutrophils", "10^9/L"): 2,
                ("neutrophils", "/mm3"): 0, ("neutrophils", "10^3/uL"): 2, ("wbc", "10^9/L"): 2,
                ("wbc", "/mm3"): 0, ("wbc", "10^3/uL"): 2, ("hemoglobin", "g/dL"): 1, ("hemoglobin", "g/L"): 0,
                ("creatinine", "umol/L"): 0, ("creatinine", "µmol/L"): 0, ("creatinine", "mg/dL"): 2,
                ("inr", "ratio"): 2, ("inr", ""): 2, ("afp", "ng/mL"): 1, ("afp", "IU/mL"): 1}


class _ContractLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 booleans: the contract's bare `no`/`yes` synonyms stay strings."""


_ContractLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


_CONTRACT_CACHE: dict[tuple[str, float], dict] = {}


def load_contract(path: str | Path = CONTRACT_PATH) -> dict:
    """Load the data contract (cached per path and mtime; treat as read-only). Bare yes/no/on/off stay
    strings: PyYAML's SafeLoader would turn the contract's `no` synonyms into False."""
    key = (str(path), Path(path).stat().st_mtime)
    if key not in _CONTRACT_CACHE:
        with open(path, encoding="utf-8") as fh:
            _CONTRACT_CACHE[key] = yaml.load(fh, Loader=_ContractLoader)
    return _CONTRACT_CACHE[key]


# ----------------------------------------------------------------------------------------------------------
# Writing helpers: labels, numbers, dates; the table being built
# ----------------------------------------------------------------------------------------------------------
def _is_cjk(s: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in s)


class _Labeller:
    """Writes canonical category values with a centre's preferred synonym (contract synonyms) and 12 % mixing."""

    def __init__(self, contract: dict, centre: Centre, rng: np.random.Generator) -> None:
        self.contract = contract
        self.centre = centre
        self.rng = rng
        self.primary: dict[tuple[str, str, str], str] = {}

    def variants(self, table: str, column: str, value: str) -> list[str]:
        col = self.contract["tables"][table]["columns"][column]
        syn = [str(s) for s in (col.get("synonyms") or {}).get(value, [])]
        allv = [value] + syn
        if self.centre.language == "zh":
            return allv
        return [v for v in allv if not _is_cjk(v)]

    def pick_primary(self, table: str, column: str, value: str) -> str:
        key = (table, column, value)
        if key not in self.primary:
            allv = self.variants(table, column, value)
            if self.centre.language == "zh":
                zh = [v for v in allv if _is_cjk(v)]
                self.primary[key] = str(self.rng.choice(zh)) if zh else allv[0]
            else:
                self.primary[key] = value if (self.rng.random() < 0.6 or len(allv) == 1) else str(
                    self.rng.choice(allv[1:]))
        return self.primary[key]

    def write(self, table: str, column: str, values: Iterable, mix: float = 0.12) -> list[str]:
        """Primary variant per value; a share `mix` of cells gets a random variant instead."""
        vals = np.array(["" if (v is None or (isinstance(v, float) and v != v)) else str(v) for v in values],
                        dtype=object)
        u = self.rng.random(len(vals))
        pick = self.rng.random(len(vals))
        primary = {"": ""}
        for v in dict.fromkeys(vals.tolist()):   # first-appearance order: deterministic variant choice
            if v != "":
                primary[v] = self.pick_primary(table, column, v)
        out = np.array([primary[v] for v in vals.tolist()], dtype=object)
        for i in np.flatnonzero((u < mix) & (vals != "")):
            variants = self.variants(table, column, vals[i])
            out[i] = variants[int(pick[i] * len(variants))]
        return out.tolist()


def _fmt_num(values: Iterable, decimals: int) -> list[str]:
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            out.append("")
        else:
            out.append(f"{float(v):.{decimals}f}" if decimals else str(int(round(float(v)))))
    return out


def _fmt_dates(dates: np.ndarray, fmt: str) -> list[str]:
    """Format datetime64[D] values (NaT -> '') with strftime, formatting each distinct date once."""
    arr = np.asarray(dates, dtype="datetime64[D]")
    uniq, inv = np.unique(arr, return_inverse=True)
    text = []
    for u in uniq:
        if np.isnat(u):
            text.append("")
        else:
            text.append(u.astype(object).strftime(fmt))
    return [text[i] for i in inv.ravel()]


@dataclass
class Table:
    """One centre file being built: string frame `out`, hidden canonical info `meta`, defect log (`set` writes
    a defective cell once and logs it)."""
    center_id: str
    name: str
    date_format: str
    out: pd.DataFrame
    meta: pd.DataFrame
    numeric: tuple[str, ...]
    defects: list[dict] = field(default_factory=list)
    touched: set = field(default_factory=set)

    def set(self, key: Any, column: str, written: str, defect: str, original: str | None = None) -> bool:
        if (key, column) in self.touched:
            return False
        orig = self.out.at[key, column] if original is None else original
        self.out.at[key, column] = written
        self.touched.add((key, column))
        self.defects.append({"key": key, "column": column, "defect": defect, "original_value": orig,
                             "written_value": written})
        return True


def days_to_dates(index_dates: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Index date + whole days (NaN days -> NaT), as datetime64[D]."""
    d = np.asarray(days, float)
    out = np.full(len(d), np.datetime64("NaT"), dtype="datetime64[D]")
    ok = np.isfinite(d)
    out[ok] = np.asarray(index_dates).astype("datetime64[D]")[ok] + d[ok].astype(int).astype("timedelta64[D]")
    return out


def one_date(value: Any, fmt: str) -> str:
    return _fmt_dates(np.array([np.datetime64(pd.Timestamp(value).date(), "D")]), fmt)[0]


# ----------------------------------------------------------------------------------------------------------
# Canonical event tables -> centre files (strings)
# ----------------------------------------------------------------------------------------------------------
def format_centres(contract: dict, centres: list[Centre], rec: pd.DataFrame, p: pd.DataFrame, ev: Events,
                   rng: np.random.Generator) -> dict[str, dict[str, Table]]:
    """Build every centre file as strings, per centre id and table name (defects.inject_defects then adds the
    defects)."""
    canon = _canonical_tables(p, rec, ev)
    files: dict[str, dict[str, Table]] = {}
    for ci, centre in enumerate(centres):
        lab = _Labeller(contract, centre, rng)
        rec_c = rec[rec["centre_idx"] == ci]
        files[centre.center_id] = {
            "patients": _fmt_patients(centre, lab, rec_c, p, rng),
            "haic_cycles": _fmt_simple(centre, lab, "haic_cycles", canon["haic_cycles"], rec_c),
            "systemic_courses": _fmt_simple(centre, lab, "systemic_courses", canon["systemic_courses"], rec_c),
            "tumour_assessments": _fmt_tumour(centre, lab, canon["tumour_assessments"], rec_c, rng),
            "labs": _fmt_labs(centre, lab, canon["labs"], rec_c, rng),
            "adverse_events": _fmt_aes(centre, lab, canon["adverse_events"], rec_c, rng),
            "follow_up": _fmt_follow_up(centre, lab, rec_c, p),
        }
    return files


def _canonical_tables(p: pd.DataFrame, rec: pd.DataFrame, ev: Events) -> dict[str, pd.DataFrame]:
    """Event tables keyed by person (days from T0); records pick their person's rows later."""
    haic = pd.DataFrame(ev.haic, columns=["person_id", "cycle_number", "day", "regimen"])
    courses = pd.DataFrame(ev.courses, columns=["person_id", "agent", "drug_class", "start_day", "stop_day", "cycles"])
    img = pd.DataFrame(ev.imaging)
    labs = pd.DataFrame({k: np.concatenate([x[k] for x in ev.labs]) for k in ("person_id", "day", "test", "value")})
    aes = pd.DataFrame(ev.aes, columns=["person_id", "term", "grade", "day", "attribution", "serious",
                                        "action_taken"])
    tables = {"haic_cycles": haic, "systemic_courses": courses, "tumour_assessments": img, "labs": labs,
              "adverse_events": aes}
    index = index_days(p)
    for df in tables.values():
        df["index_date"] = index[df["person_id"].to_numpy(int)] if len(df) else np.array([], "datetime64[D]")
    return tables


def _records_rows(canon: pd.DataFrame, rec_c: pd.DataFrame) -> pd.DataFrame:
    """Rows of the centre's records: person rows joined to each record (a duplicate gets a copy)."""
    mine = canon[canon["person_id"].isin(rec_c["person_id"])]
    return rec_c[["record_id", "person_id", "mrn"]].merge(mine, on="person_id", how="inner")


def _new_table(centre: Centre, name: str, out: pd.DataFrame, meta: pd.DataFrame,
               numeric: tuple[str, ...]) -> Table:
    out = out.reset_index(drop=True)
    meta = meta.reset_index(drop=True)
    return Table(centre.center_id, name, centre.date_format, out, meta, numeric)


def _fmt_patients(centre: Centre, lab: _Labeller, rec_c: pd.DataFrame, p: pd.DataFrame,
                  rng: np.random.Generator) -> Table:
    df = rec_c.drop(columns=["centre_idx"]).merge(p, on="person_id", how="left").sort_values("mrn", kind="stable")
    n = len(df)
    fmt = centre.date_format
    out: dict[str, Any] = {}
    out["mrn"] = df["mrn"].to_numpy()
    out["patient_name"] = np.where(rng.random(n) < (0.8 if centre.language == "zh" else 0.2),
                                   df["patient_name_hanzi"], df["patient_name_pinyin"])
    out["phone"] = df["phone"].to_numpy()
    out["national_id"] = df["national_id"].to_numpy()
    out["birth_date"] = _fmt_dates(df["birth_date"].to_numpy(), fmt)
    out["sex"] = lab.write("patients", "sex", df["sex"])
    out["diagnosis_date"] = _fmt_dates(df["diagnosis_date"].to_numpy(), fmt)
    out["diagnosis_basis"] = lab.write("patients", "diagnosis_basis", df["diagnosis_basis"])
    out["histology_subtype"] = lab.write("patients", "histology_subtype", df["histology_subtype"])
    out["etiology"] = lab.write("patients", "etiology", df["etiology"])
    out["ecog"] = [str(int(e)) for e in df["ecog"]]
    out["ascites"] = lab.write("patients", "ascites", df["ascites"])
    out["encephalopathy"] = lab.write("patients", "encephalopathy", df["encephalopathy"])
    drift = rng.random(n) < centre.unit_drift
    bili_mg = (centre.bili_unit == "mg/dL") ^ drift
    alb_dl = (centre.alb_unit == "g/dL") ^ (drift & (rng.random(n) < 0.5))
    bili = df["total_bilirubin"].to_numpy()
    out["total_bilirubin"] = [f"{b / 17.1:.2f}" if mg else f"{b:.1f}" for b, mg in zip(bili, bili_mg)]
    out["total_bilirubin_unit"] = lab.write("patients", "total_bilirubin_unit",
                                            np.where(bili_mg, "mg/dL", "umol/L"), mix=0.05)
    alb = df["albumin"].to_numpy() + df["albumin_shift"].to_numpy()
    out["albumin"] = [f"{a / 10:.2f}" if dl else f"{a:.1f}" for a, dl in zip(alb, alb_dl)]
    out["albumin_unit"] = lab.write("patients", "albumin_unit", np.where(alb_dl, "g/dL", "g/L"), mix=0.05)
    out["inr"] = _fmt_num(df["inr"], 2)
    out["afp"] = _fmt_num(df["afp"].to_numpy() * df["afp_factor"].to_numpy(), 1)
    out["pivka_ii"] = _fmt_num(df["pivka_ii"], 0)
    out["bclc_stage"] = lab.write("patients", "bclc_stage", df["bclc_recorded"], mix=0.1)
    out["tumour_number"] = [str(int(v)) for v in df["tumour_number"]]
    out["max_tumour_size"] = _fmt_num(df["max_tumour_size"], 1)
    out["mvi"] = lab.write("patients", "mvi", np.where(df["mvi"], "yes", "no"))
    grade = df["cheng_grade"] if centre.mvi_system == "cheng" else df["vp_grade"]
    out["mvi_grade"] = lab.write("patients", "mvi_grade", grade)
    out["ehs"] = lab.write("patients", "ehs", np.where(df["ehs"], "yes", "no"))
    out["prior_local_therapy"] = lab.write("patients", "prior_local_therapy", df["prior_local_therapy"])
    out["prior_systemic_therapy"] = lab.write("patients", "prior_systemic_therapy", df["prior_systemic_therapy"])
    if centre.records_site_bor:
        out["site_bor_recist"] = df["bor_recist_t0"].to_numpy()
        out["site_bor_mrecist"] = df["bor_mrecist_t0"].to_numpy()
    out = pd.DataFrame(out)
    meta = df[["record_id", "person_id", "mrn", "bclc_inconsistent", "bclc_derived", "bclc_recorded", "mvi",
               "index_date", "dead", "birth_date"]].copy()
    meta["bili_mg"] = bili_mg
    meta["alb_dl"] = alb_dl
    t = _new_table(centre, "patients", out, meta, ("ecog", "total_bilirubin", "albumin", "inr", "afp", "pivka_ii",
                                                    "tumour_number", "max_tumour_size"))
    bc = np.flatnonzero(t.meta["bclc_inconsistent"].to_numpy())
    for k in bc:
        t.defects.append({"key": k, "column": "bclc_stage", "defect": "bclc_inconsistent",
                          "original_value": str(t.meta.at[k, "bclc_derived"]),
                          "written_value": t.out.at[k, "bclc_stage"]})
        t.touched.add((k, "bclc_stage"))
    return t


def _fmt_simple(centre: Centre, lab: _Labeller, name: str, canon: pd.DataFrame, rec_c: pd.DataFrame) -> Table:
    """haic_cycles and systemic_courses."""
    df = _records_rows(canon, rec_c)
    fmt = centre.date_format
    if name == "haic_cycles":
        df = df.sort_values(["mrn", "cycle_number"], kind="stable").reset_index(drop=True)
        out = pd.DataFrame({"mrn": df["mrn"], "cycle_number": df["cycle_number"].astype(int).astype(str)})
        out["haic_date"] = _fmt_dates(days_to_dates(df["index_date"].to_numpy(), df["day"]), fmt)
        out["regimen"] = lab.write(name, "regimen", df["regimen"])
        return _new_table(centre, name, out, df, ("cycle_number",))
    df = df.sort_values(["mrn", "start_day", "agent"], kind="stable").reset_index(drop=True)
    out = pd.DataFrame({"mrn": df["mrn"]})
    out["agent"] = lab.write(name, "agent", df["agent"], mix=0.08)
    out["drug_class"] = lab.write(name, "drug_class", df["drug_class"], mix=0.08)
    out["start_date"] = _fmt_dates(days_to_dates(df["index_date"].to_numpy(), df["start_day"]), fmt)
    stop = pd.to_numeric(df["stop_day"], errors="coerce").to_numpy(float)
    out["stop_date"] = _fmt_dates(days_to_dates(df["index_date"].to_numpy(), stop), fmt)
    out["cycles"] = _fmt_num(df["cycles"], 0)
    return _new_table(centre, name, out, df, ("cycles",))


def _fmt_tumour(centre: Centre, lab: _Labeller, canon: pd.DataFrame, rec_c: pd.DataFrame,
                rng: np.random.Generator) -> Table:
    df = _records_rows(canon, rec_c).sort_values(["mrn", "day", "lesion_id"], kind="stable").reset_index(drop=True)
    cm = centre.diameter_unit == "cm"
    dec = 1 if cm else 0
    div = 10.0 if cm else 1.0
    out = pd.DataFrame({"mrn": df["mrn"]})
    out["assessment_date"] = _fmt_dates(days_to_dates(df["index_date"].to_numpy(), df["day"]), centre.date_format)
    out["lesion_id"] = df["lesion_id"].to_numpy()
    out["organ"] = lab.write("tumour_assessments", "organ", df["organ"], mix=0.05)
    out["lesion_type"] = lab.write("tumour_assessments", "lesion_type", df["lesion_type"], mix=0.05)
    for col in ("ld_mm", "viable_ld_mm", "short_axis_mm"):
        out[col] = _fmt_num(pd.to_numeric(df[col], errors="coerce").to_numpy(float) / div, dec)
    out["diameter_unit"] = lab.write("tumour_assessments", "diameter_unit", np.full(len(df), centre.diameter_unit),
                                     mix=0.03)
    out["arterial_enhancement"] = lab.write("tumour_assessments", "arterial_enhancement", df["arterial_enhancement"])
    out["nontarget_status"] = lab.write("tumour_assessments", "nontarget_status", df["nontarget_status"])
    out["cytology_confirmed"] = lab.write("tumour_assessments", "cytology_confirmed", df["cytology_confirmed"])
    return _new_table(centre, "tumour_assessments", out, df, ("ld_mm", "viable_ld_mm", "short_axis_mm"))


def _lab_factor(test: str, unit: str) -> float:
    """Canonical = value x factor (contract lab_units); we divide canonical values by it to write."""
    return {"/mm3": 0.001, "mg/dL": 17.1 if test == "bilirubin" else 88.4, "g/dL": 10.0 if test == "albumin" else 1.0,
            "g/L": 0.1 if test == "hemoglobin" else 1.0, "IU/mL": 1.21}.get(unit, 1.0)


def _fmt_labs(centre: Centre, lab: _Labeller, canon: pd.DataFrame, rec_c: pd.DataFrame,
              rng: np.random.Generator) -> Table:
    """Labs in the centre's units (value / factor of the contract's lab_units), local ULN/LLN in the same unit."""
    df = _records_rows(canon, rec_c).sort_values(["mrn", "day", "test"], kind="stable").reset_index(drop=True)
    n = len(df)
    tests = df["test"].to_numpy()
    units = np.empty(n, dtype=object)
    dec = np.zeros(n, int)
    value_s, uln_s, lln_s = (np.full(n, "", dtype=object) for _ in range(3))
    for test in LAB_TESTS:
        m = tests == test
        if not m.any():
            continue
        unit = centre.lab_units[test]
        f = _lab_factor(test, unit)
        d = LAB_DECIMALS[(test, unit)]
        units[m] = unit
        dec[m] = d
        fmt = f"{{:.{d}f}}".format
        value_s[m] = [fmt(v) for v in df["value"].to_numpy(float)[m] / f]
        if centre.uln[test] > 0:
            uln_s[m] = fmt(centre.uln[test] / f)
        if centre.lln[test] > 0:
            lln_s[m] = fmt(centre.lln[test] / f)
    out = pd.DataFrame({"mrn": df["mrn"]})
    out["lab_date"] = _fmt_dates(days_to_dates(df["index_date"].to_numpy(), df["day"]), centre.date_format)
    out["test"] = lab.write("labs", "test", tests, mix=0.05)
    out["value"] = value_s
    out["unit"] = units.astype(str)
    out["uln"] = uln_s
    out["lln"] = lln_s
    meta = df[["record_id", "person_id", "mrn", "day", "test", "index_date"]].copy()
    meta["decimals"] = dec
    return _new_table(centre, "labs", out, meta, ("value", "uln", "lln"))


def _ae_term_text(term: str, language: str, rng: np.random.Generator) -> str:
    v = AE_TERM_VARIANTS[term]
    pool = v["zh"] if (language == "zh" and rng.random() < 0.8) else v["en"]
    return str(rng.choice(pool))


def _fmt_aes(centre: Centre, lab: _Labeller, canon: pd.DataFrame, rec_c: pd.DataFrame,
             rng: np.random.Generator) -> Table:
    df = _records_rows(canon, rec_c).sort_values(["mrn", "day", "term"], kind="stable").reset_index(drop=True)
    out = pd.DataFrame({"mrn": df["mrn"]})
    out["ae_term"] = [_ae_term_text(t, centre.language, rng) for t in df["term"]]
    out["grade"] = df["grade"].astype(int).astype(str)
    out["onset_date"] = _fmt_dates(days_to_dates(df["index_date"].to_numpy(), df["day"]), centre.date_format)
    out["attribution"] = lab.write("adverse_events", "attribution", df["attribution"])
    out["serious"] = lab.write("adverse_events", "serious", df["serious"])
    out["action_taken"] = lab.write("adverse_events", "action_taken", df["action_taken"])
    return _new_table(centre, "adverse_events", out, df, ("grade",))


def _fmt_follow_up(centre: Centre, lab: _Labeller, rec_c: pd.DataFrame, p: pd.DataFrame) -> Table:
    df = rec_c.merge(p[["person_id", "index_date", "end_day", "dead", "lost", "death_day"]], on="person_id",
                     how="left").sort_values("mrn", kind="stable").reset_index(drop=True)
    idx = df["index_date"].to_numpy()
    contact = df["end_day"].to_numpy()
    status = np.where(df["dead"], "dead", np.where(df["lost"], "lost", "alive"))
    out = pd.DataFrame({"mrn": df["mrn"]})
    out["last_contact_date"] = _fmt_dates(days_to_dates(idx, contact), centre.date_format)
    out["vital_status"] = lab.write("follow_up", "vital_status", status)
    death = np.where(df["dead"], df["death_day"].to_numpy(float), np.nan)
    out["death_date"] = _fmt_dates(days_to_dates(idx, death), centre.date_format)
    return _new_table(centre, "follow_up", out, df, ())


# ----------------------------------------------------------------------------------------------------------
# Writing raw/
# ----------------------------------------------------------------------------------------------------------
def write_raw(out: Path, centres: list[Centre], files: dict[str, dict[str, Table]]) -> list[Path]:
    """raw/<center_id>/manifest.yaml and one CSV or XLSX file per table; returns the paths written."""
    written = []
    for c in centres:
        d = out / "raw" / c.center_id
        d.mkdir(parents=True, exist_ok=True)
        manifest = {"center_id": c.center_id, "center_name": c.name, "date_format": c.date_format,
                    "language": c.language, "export_date": str(c.export_date)}
        mpath = d / "manifest.yaml"
        mpath.write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8")
        written.append(mpath)
        for name in TABLES:
            t = files[c.center_id][name]
            path = d / f"{name}.{c.file_ext}"
            if c.file_ext == "csv":
                t.out.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
            else:
                write_xlsx(path, name, t.out, t.numeric)
            written.append(path)
    return written
