"""Defects stage: the messiness injected into the centre files, and its log (ground_truth/defects.csv).

Messiness (cal. data quality; rates ASSUMPTION; DEFECT_TYPES lists the kinds): missing values (patients table: the
core's per-person blanks of missingness.py, MCAR, MAR or MNAR: PIVKA-II 25-70 % by centre, ECOG 6.5 %, AFP 3.5 %,
Vp/Cheng 12 % of MVI, ascites/encephalopathy 7 %, 1-3 % background; other tables MCAR at the rates below; all
scaled by missing_rate / 0.05; ~4 % of patients-table cells overall), missing units, out-of-range typos (Binomial(rows,
typo_rate) per kind and centre, at least one of each kind in C01), unknown labels (typo_rate / 2), referral
duplicates (same national_id/name/birth_date, new MRN at another centre, half with AFP/albumin re-measured, all
tables copied; records.py), 1-2 exact duplicate rows in 1-2 files per centre, 3 % inconsistent recorded BCLC
(exclusions.py), 6 % discordant site BOR, and only one response criterion recorded for 15 % of patients in ~30 % of
centres. missing_rate = typo_rate = duplicate_share = 0 gives a clean export with an empty defects.csv.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis_utils.synthetic.exports import Table, one_date
from analysis_utils.synthetic.missingness import PATIENT_MISSING_RATES, base_rates
from analysis_utils.synthetic.population import Centre

DEFECT_TYPES: dict[str, str] = {
    "missing": "a value known to the generator left empty (original_value = what would have been written)",
    "missing_unit": "a unit cell left empty (patients *_unit, labs unit for tests other than INR, diameter_unit)",
    "undeclared_unit": "a lab unit that is not a key of lab_units for that test (e.g. 'mmol/L' for ALT); value unchanged",
    "decimal_slip": "a number multiplied by 10 (e.g. albumin 350 g/L, platelets 10x)",
    "zero_value": "a lab value written as 0.0 (platelets)",
    "negative_value": "a diameter written with a minus sign",
    "out_of_range_category": "an integer outside its allowed set (ECOG 7, AE grade 0 or 6)",
    "future_birth_date": "birth_date after the export date (age would be negative)",
    "death_before_index": "death_date before T0 (the first treatment component)",
    "onset_before_treatment": "AE onset_date before T0 (the first treatment component)",
    "unknown_label": "a category label that is neither allowed nor a contract synonym (sex 'U', 'lenvatinb', ...)",
    "bclc_inconsistent": "recorded BCLC stage differs from the BCLC 2022 derivation (original_value = derived)",
    "site_bor_discordant": "site-recorded BOR differs from the truth BOR (original_value = truth)",
    "criterion_not_recorded": "ld_mm (mRECIST only, 25 %) or viable_ld_mm (RECIST only, 75 %) empty on every "
                              "liver-lesion row of a patient",
    "duplicate_patient": "referral record of a person already exported by another centre (original_value = "
                         "'<center_id>:<mrn>' of the first record); column mrn",
    "duplicate_row": "exact copy of the previous data row (original_value = 'row <n>'); column mrn",
}


_MISSING_RATES = {  # (table, column): base rate at missing_rate = 0.05 (cal. data quality); patients: missingness.py
    ("tumour_assessments", "arterial_enhancement"): 0.02, ("tumour_assessments", "nontarget_status"): 0.03,
    ("tumour_assessments", "ld_mm"): 0.005,
    ("adverse_events", "attribution"): 0.10, ("adverse_events", "serious"): 0.05,
    ("adverse_events", "action_taken"): 0.10, ("adverse_events", "onset_date"): 0.02,
    ("systemic_courses", "cycles"): 0.05, ("systemic_courses", "stop_date"): 0.03,
    ("follow_up", "death_date"): 0.03,
}

_UNKNOWN_LABELS = (("patients", "sex", "U"), ("patients", "etiology", "autoimmune"),
                   ("systemic_courses", "agent", "lenvatinb"), ("patients", "ascites", "trace"),
                   ("adverse_events", "attribution", "unknown"), ("follow_up", "vital_status", "transferred"))


def inject_defects(cfg: dict, centres: list[Centre], files: dict[str, dict[str, Table]], rec: pd.DataFrame,
                   masks: dict[str, np.ndarray], rng: np.random.Generator) -> pd.DataFrame:
    """Inject every centre's defects into its tables (in place) and return the defect log, one row per defect
    with its final 1-based data row: center_id, file, row, column, defect, original_value, written_value.
    `masks`: the core's blank patients-table cells per field and person (missingness.missing_masks)."""
    src_label = {int(r): f"{c}:{m}" for r, c, m in zip(rec["record_id"], rec["center_id"], rec["mrn"])}
    scale = cfg["missing_rate"] / 0.05
    all_defects = []
    for ci, centre in enumerate(centres):
        tables = files[centre.center_id]
        rec_c = rec[rec["centre_idx"] == ci]
        _inject_centre(cfg, centre, tables, rec_c, src_label, scale, masks, rng)
        for tname, t in tables.items():
            pos = {k: i + 1 for i, k in enumerate(t.out.index)}
            for d in t.defects:
                all_defects.append({"center_id": centre.center_id, "file": f"{tname}.{centre.file_ext}",
                                    "row": pos[d["key"]], "column": d["column"], "defect": d["defect"],
                                    "original_value": d["original_value"], "written_value": d["written_value"]})
    return pd.DataFrame(all_defects, columns=["center_id", "file", "row", "column", "defect", "original_value",
                                              "written_value"])


def _inject_centre(cfg: dict, centre: Centre, tables: dict[str, Table], rec_c: pd.DataFrame,
                   src_label: dict[int, str], scale: float, masks: dict[str, np.ndarray],
                   rng: np.random.Generator) -> None:
    """All cell-level defects of one centre, in a fixed order (a cell gets at most one defect)."""
    _inject_site_bor(tables["patients"], rng, 0.06 if cfg["typo_rate"] > 0 else 0.0)
    _inject_duplicate_patient_marks(tables["patients"], rec_c, src_label)
    if scale > 0:
        _inject_patient_missing(cfg, centre, tables["patients"], rec_c, masks, rng)
        _inject_single_criterion(centre, tables["tumour_assessments"], scale, rng)
    if cfg["typo_rate"] > 0:
        first = centre.center_id == "C01"
        _inject_typos(cfg["typo_rate"], tables, rng, first)
        _inject_unknown_labels(cfg["typo_rate"], tables, rng, first)
    if scale > 0:
        _inject_missing(centre, tables, scale, rng)
    if cfg["duplicate_share"] > 0:
        _inject_duplicate_rows(tables, rng)


def _n_defects(rate: float, n_rows: int, rng: np.random.Generator, at_least_one: bool) -> int:
    """Binomial(n_rows, rate) defects; at least one when `at_least_one` (the first centre), so that every
    kind occurs in a cohort whenever the rate is positive."""
    if rate <= 0 or n_rows == 0:
        return 0
    k = int(rng.binomial(n_rows, min(rate, 1.0)))
    return max(k, 1) if at_least_one else k


def _inject_site_bor(t: Table, rng: np.random.Generator, share: float) -> None:
    """`share` (6 %; 0 when typo_rate = 0) of site-recorded BOR cells moved one category from the truth BOR."""
    if "site_bor_recist" not in t.out.columns:
        return
    shift = {"CR": "PR", "PR": "SD", "SD": "PR", "PD": "SD", "NE": "SD"}
    for col in ("site_bor_recist", "site_bor_mrecist"):
        for k in t.out.index[rng.random(len(t.out)) < share]:
            orig = t.out.at[k, col]
            t.set(k, col, shift[orig], "site_bor_discordant", orig)


def _inject_duplicate_patient_marks(t: Table, rec_c: pd.DataFrame, src_label: dict[int, str]) -> None:
    """Referral duplicates: logged on the duplicate record's mrn cell (original = first record's centre:mrn)."""
    recs = rec_c.set_index("record_id")
    for k in t.out.index:
        rid = int(t.meta.at[k, "record_id"])
        src = int(recs.at[rid, "duplicate_of_record"])
        if src >= 0:
            t.defects.append({"key": k, "column": "mrn", "defect": "duplicate_patient",
                              "original_value": src_label[src],
                              "written_value": t.out.at[k, "mrn"]})
            t.touched.add((k, "mrn"))


def _inject_single_criterion(centre: Centre, t: Table, scale: float, rng: np.random.Generator) -> None:
    """Some centres record only one criterion for a share of patients: liver ld_mm or viable_ld_mm all empty."""
    share = min(0.9, centre.single_criterion_share * scale)
    if share <= 0 or t.out.empty:
        return
    for mrn in t.out["mrn"].unique():
        if rng.random() >= share:
            continue
        col = "viable_ld_mm" if rng.random() < 0.75 else "ld_mm"
        rows = t.out.index[(t.out["mrn"] == mrn).to_numpy() & (t.out[col] != "").to_numpy()
                           & (t.meta["organ"] == "liver").to_numpy()]
        for k in rows:
            t.set(k, col, "", "criterion_not_recorded")


def _pick(t: Table, column: str, mask: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Choose up to `count` untouched, non-empty cells of `column` among rows in `mask`."""
    ok = mask & (t.out[column] != "").to_numpy()
    done = [k for k, c in t.touched if c == column]
    if done:
        ok &= ~t.out.index.isin(done)
    cand = t.out.index[ok]
    if len(cand) == 0 or count <= 0:
        return np.array([], dtype=int)
    return np.sort(rng.choice(cand, min(count, len(cand)), replace=False))


def _scaled(text: str, factor: float) -> str:
    dec = len(text.split(".")[1]) if "." in text else 0
    return f"{float(text) * factor:.{dec}f}"


def _inject_typos(rate: float, tables: dict[str, Table], rng: np.random.Generator, first: bool) -> None:
    """Out-of-range typos: Binomial(eligible rows, typo_rate) per kind and centre (>= 1 in the first centre)."""
    pt = tables["patients"]
    n = len(pt.out)
    every = np.ones(n, bool)
    for k in _pick(pt, "albumin", every, _n_defects(rate, n, rng, first), rng):
        pt.set(k, "albumin", _scaled(pt.out.at[k, "albumin"], 10.0), "decimal_slip")
    for k in _pick(pt, "birth_date", every, _n_defects(rate, n, rng, first), rng):
        future = pd.Timestamp(pt.meta.at[k, "birth_date"]) + pd.Timedelta(days=36525)
        pt.set(k, "birth_date", one_date(future, pt.date_format), "future_birth_date")
    for k in _pick(pt, "ecog", every, _n_defects(rate, n, rng, first), rng):
        pt.set(k, "ecog", "7", "out_of_range_category")
    fu = tables["follow_up"]
    dead_mask = (fu.out["death_date"] != "").to_numpy()
    for k in _pick(fu, "death_date", dead_mask, _n_defects(rate, int(dead_mask.sum()), rng, first), rng):
        before = pd.Timestamp(fu.meta.at[k, "index_date"]) - pd.Timedelta(days=int(rng.integers(5, 60)))
        fu.set(k, "death_date", one_date(before, fu.date_format), "death_before_index")
    ta = tables["tumour_assessments"]
    has_ld = (ta.out["ld_mm"] != "").to_numpy() & (ta.out["ld_mm"] != "0") & (ta.out["ld_mm"] != "0.0")
    for k in _pick(ta, "ld_mm", has_ld, _n_defects(rate, int(has_ld.sum()), rng, first), rng):
        ta.set(k, "ld_mm", "-" + ta.out.at[k, "ld_mm"], "negative_value")
    lb = tables["labs"]
    plt_mask = (lb.meta["test"] == "platelets").to_numpy()
    for k in _pick(lb, "value", plt_mask, _n_defects(rate, int(plt_mask.sum()), rng, first), rng):
        lb.set(k, "value", "0.0", "zero_value")
    for k in _pick(lb, "value", plt_mask, _n_defects(rate, int(plt_mask.sum()), rng, first), rng):
        lb.set(k, "value", _scaled(lb.out.at[k, "value"], 10.0), "decimal_slip")
    alt_mask = (lb.meta["test"] == "alt").to_numpy()
    for k in _pick(lb, "unit", alt_mask, _n_defects(rate, int(alt_mask.sum()), rng, first), rng):
        lb.set(k, "unit", "mmol/L", "undeclared_unit")
    ae = tables["adverse_events"]
    m = len(ae.out)
    for k in _pick(ae, "grade", (ae.out["grade"] != "5").to_numpy(), _n_defects(rate, m, rng, first), rng):
        ae.set(k, "grade", str(rng.choice(["0", "6"])), "out_of_range_category")
    for k in _pick(ae, "onset_date", np.ones(m, bool), _n_defects(rate, m, rng, first), rng):
        before = pd.Timestamp(ae.meta.at[k, "index_date"]) - pd.Timedelta(days=int(rng.integers(3, 45)))
        ae.set(k, "onset_date", one_date(before, ae.date_format), "onset_before_treatment")


def _inject_unknown_labels(rate: float, tables: dict[str, Table], rng: np.random.Generator, first: bool) -> None:
    """A few labels outside allowed values and synonyms (sex 'U', etiology 'autoimmune', 'lenvatinb', ...)."""
    for tname, col, label in _UNKNOWN_LABELS:
        t = tables[tname]
        mask = np.ones(len(t.out), bool)
        if label == "lenvatinb":
            mask = (t.meta["agent"] == "lenvatinib").to_numpy() if len(t.out) else mask
        count = _n_defects(rate / 2, len(t.out), rng, first)
        for k in _pick(t, col, mask, count, rng):
            t.set(k, col, label, "unknown_label")


def _inject_patient_missing(cfg: dict, centre: Centre, t: Table, rec_c: pd.DataFrame,
                            masks: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Patients table: a person's first record is blanked where the core's mask says so (missingness.py); a
    referral-duplicate record gets its own MCAR blanks at the base rates."""
    if t.out.empty:
        return
    pid = t.meta["person_id"].to_numpy(int)
    dup = np.isin(t.meta["record_id"].to_numpy(int), rec_c.loc[rec_c["duplicate_of_record"] >= 0, "record_id"])
    this_centre = np.zeros(len(t.out), int)
    for col in PATIENT_MISSING_RATES:
        if col not in t.out.columns:
            continue
        blank = np.where(dup, rng.random(len(t.out)) < base_rates(cfg, [centre], this_centre, col), masks[col][pid])
        if col == "mvi_grade":
            blank &= t.meta["mvi"].to_numpy().astype(bool)
        for k in t.out.index[blank & (t.out[col] != "").to_numpy()]:
            t.set(k, col, "", "missing")


def _inject_missing(centre: Centre, tables: dict[str, Table], scale: float, rng: np.random.Generator) -> None:
    """Missing values of the other tables (MCAR, cal. data quality, scaled by missing_rate / 0.05); plus a few
    missing units."""
    for (tname, col), base in _MISSING_RATES.items():
        t = tables[tname]
        if t.out.empty or col not in t.out.columns:
            continue
        mask = rng.random(len(t.out)) < min(0.95, base * scale)
        for k in t.out.index[mask & (t.out[col] != "").to_numpy()]:
            t.set(k, col, "", "missing")
    unit_cols = (("patients", "total_bilirubin_unit"), ("patients", "albumin_unit"), ("labs", "unit"),
                 ("tumour_assessments", "diameter_unit"))
    for tname, col in unit_cols:
        t = tables[tname]
        if t.out.empty:
            continue
        mask = rng.random(len(t.out)) < 0.004 * scale
        if tname == "labs":
            mask &= (t.meta["test"] != "inr").to_numpy()
        for k in t.out.index[mask & (t.out[col] != "").to_numpy()]:
            t.set(k, col, "", "missing_unit")


def _inject_duplicate_rows(tables: dict[str, Table], rng: np.random.Generator) -> None:
    """A few exact duplicate rows (copy placed right after the original) in 1-2 files per centre."""
    names = [n for n in ("labs", "adverse_events", "tumour_assessments", "systemic_courses", "patients")
             if len(tables[n].out)]
    if not names:
        return
    for name in rng.choice(names, min(len(names), int(rng.integers(1, 3))), replace=False):
        t = tables[str(name)]
        touched_rows = {k for k, _ in t.touched}
        cand = [k for k in t.out.index if k not in touched_rows]
        if not cand:
            continue
        picks = sorted(rng.choice(cand, min(len(cand), int(rng.integers(1, 3))), replace=False).tolist())
        order = list(t.out.index)
        next_key = int(max(order)) + 1
        new_rows, new_meta = [], []
        for k in picks:
            pos = order.index(k)
            order.insert(pos + 1, next_key)
            new_rows.append(t.out.loc[[k]].rename(index={k: next_key}))
            new_meta.append(t.meta.loc[[k]].rename(index={k: next_key}))
            t.defects.append({"key": next_key, "column": "mrn", "defect": "duplicate_row",
                              "original_value": f"row {k}", "written_value": t.out.at[k, "mrn"],
                              "_orig_key": k})
            t.touched.add((next_key, "mrn"))
            next_key += 1
        t.out = pd.concat([t.out] + new_rows).loc[order]
        t.meta = pd.concat([t.meta] + new_meta).loc[order]
        pos = {key: i + 1 for i, key in enumerate(order)}
        for d in t.defects:
            if d["defect"] == "duplicate_row" and "_orig_key" in d:
                d["original_value"] = f"row {pos[d.pop('_orig_key')]}"
