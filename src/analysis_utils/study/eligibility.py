"""Eligibility criteria of the target trial emulated from NCT06881433, assessed at time zero, as named flags, and
the STROBE flow that accounts for every screened record.

Every criterion uses only what is known on or before time zero (the first treatment component). Requirements about
the future (a follow-up scan, the combination after HAIC, HAIC within a window) are not eligibility: they are
strategy adherence (docs/methods/target-trial.md) or analysis populations (the response-evaluable population).

Each criterion gives three states per record: fails (``fail_<name>`` True), passes, or cannot be assessed because a
field it needs is blank (``query_<name>`` True). **A blank field is missing, not failed** (issue #13): the record
stays eligible, the blank field is a data-quality query located in the log, ``eligibility_query`` marks the record
and a sensitivity analysis excludes such records. The flow assigns each record to the FIRST criterion it fails in
:data:`CRITERIA` order, so that ``screened = sum(excluded by first failing criterion) + analysed`` (STROBE item 13),
and counts the analysed patients with a query, per criterion and in total.

Field rules: a recorded diagnosis basis other than radiology, histology or cytology fails; an excluded histology
subtype, a BCLC stage (recorded, else derived) other than B/C, prior systemic therapy "yes", ECOG 3-4 and
encephalopathy grade 3-4 fail; each blank is a query. Child-Pugh C fails when the known points plus one per missing
component reach 10, passes when the known points plus three per missing component stay below 10, else is a query.
A measurable intrahepatic lesion needs a baseline scan in the window ending at time zero (no scan fails); liver
lesions with blank diameters and none measured >= 10 mm are a query. Rules: docs/methods/eligibility-and-time-zero.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis_utils.study.quality import QualityLog


@dataclass(frozen=True)
class Criterion:
    name: str
    label: str
    kind: str  # "data", "inclusion" or "exclusion"
    fields: tuple[str, ...] = ()  # patients-table fields whose blank makes the criterion a query


CRITERIA: tuple[Criterion, ...] = (
    Criterion("duplicate_record", "Duplicate record (same patient exported twice)", "data"),
    Criterion("no_treatment_start", "No HAIC, TKI/anti-VEGF or PD-(L)1 treatment recorded (no time zero)", "data"),
    Criterion("treatment_date_unknown", "Treatment without a date (time zero or first HAIC date unknown)", "data"),
    Criterion("hcc_not_confirmed", "HCC not confirmed by radiology, histology or cytology", "inclusion",
              ("diagnosis_basis",)),
    Criterion("excluded_histology", "Cholangiocarcinoma, fibrolamellar, sarcomatoid or combined HCC-CCA", "exclusion",
              ("histology_subtype",)),
    Criterion("bclc_not_b_or_c", "BCLC stage not B or C", "inclusion", ("bclc_stage",)),
    Criterion("prior_systemic_therapy", "Prior systemic therapy", "exclusion", ("prior_systemic_therapy",)),
    Criterion("no_measurable_intrahepatic", "No measurable intrahepatic lesion on a baseline scan before time zero",
              "inclusion", ("ld_mm",)),
    Criterion("child_pugh_c", "Child-Pugh class C", "exclusion",
              ("total_bilirubin", "albumin", "inr", "ascites", "encephalopathy")),
    Criterion("ecog_above_2", "ECOG performance status > 2", "exclusion", ("ecog",)),
    Criterion("severe_encephalopathy", "Severe (grade 3-4) hepatic encephalopathy", "exclusion", ("encephalopathy",)),
    Criterion("start_after_death_or_cutoff", "First treatment after death or after the data cut-off", "data"),
    Criterion("invalid_follow_up", "No valid follow-up after time zero", "data"),
)
EXCLUDED_HISTOLOGY = ("cholangiocarcinoma", "fibrolamellar", "sarcomatoid", "combined_hcc_cca")
CONFIRMED_BASES = ("radiology", "histology", "cytology")
NO_ARM = "no time zero"  # flow_by_arm: the records without a dated treatment (no time zero, so no arm)
CP_POINTS = ["cp_bilirubin_pts", "cp_albumin_pts", "cp_inr_pts", "cp_ascites_pts", "cp_encephalopathy_pts"]


def _true(s: pd.Series) -> pd.Series:
    """Nullable boolean -> plain bool with missing as False."""
    return s.astype("boolean").fillna(False).astype(bool)


def flag_name(name: str) -> str:
    return f"fail_{name}"


def query_name(name: str) -> str:
    return f"query_{name}"


def child_pugh_c_state(points: pd.DataFrame) -> pd.Series:
    """Child-Pugh C: True when certain (lower bound >= 10), False when excluded (known + 3 per missing < 10),
    missing (pd.NA) when the missing components decide it."""
    known = points.sum(axis=1, min_count=0)
    n_miss = points.isna().sum(axis=1)
    out = pd.Series(pd.NA, index=points.index, dtype="boolean")
    out[(known + n_miss) >= 10] = True
    out[(known + 3 * n_miss) < 10] = False
    return out


def _state(fail: pd.Series, blank: pd.Series) -> pd.Series:
    """Three-state criterion: True (fails), False (passes), NA (a needed field is blank)."""
    out = pd.Series(fail.astype(bool).to_numpy(), index=fail.index, dtype="boolean")
    out[blank.to_numpy(bool)] = pd.NA
    return out


def criterion_states(df: pd.DataFrame) -> dict[str, pd.Series]:
    """Every criterion as a three-state series (module docstring). Expects the columns of
    :func:`analysis_utils.study.cleaning.derive_patients`."""
    f: dict[str, pd.Series] = {}
    f["duplicate_record"] = df["duplicate_of"].notna()
    f["no_treatment_start"] = df["index_date"].isna()
    f["treatment_date_unknown"] = df["treatment_date_unknown"].astype(bool)
    basis = df["diagnosis_basis"]
    f["hcc_not_confirmed"] = _state(basis.notna() & ~basis.isin(CONFIRMED_BASES), basis.isna())
    hist = df["histology_subtype"]
    f["excluded_histology"] = _state(hist.isin(EXCLUDED_HISTOLOGY), hist.isna())
    bclc = df["bclc_stage"]
    f["bclc_not_b_or_c"] = _state(bclc.notna() & ~bclc.isin(["B", "C"]), bclc.isna())
    prior = df["prior_systemic_therapy"]
    f["prior_systemic_therapy"] = _state(prior.eq("yes"), prior.isna())
    meas = df["baseline_measurable_liver"].astype("boolean")
    f["no_measurable_intrahepatic"] = _state(meas.eq(False).fillna(False) | df["baseline_date"].isna(),
                                             meas.isna() & df["baseline_date"].notna())
    f["child_pugh_c"] = child_pugh_c_state(df[CP_POINTS].astype(float))
    ecog = pd.to_numeric(df["ecog"], errors="coerce")
    f["ecog_above_2"] = _state(ecog > 2, ecog.isna())
    enc = df["encephalopathy"]
    f["severe_encephalopathy"] = _state(enc.eq("grade_3_4"), enc.isna())
    f["start_after_death_or_cutoff"] = df["start_after_death_or_cutoff"].astype(bool)
    f["invalid_follow_up"] = ~_true(df["follow_up_valid"])
    return f


def apply_criteria(df: pd.DataFrame, log: QualityLog | None = None) -> pd.DataFrame:
    """Add ``fail_<criterion>`` and ``query_<criterion>`` per criterion, then ``exclusion_reason`` (first failing),
    ``eligible``, ``eligibility_query`` (a blank criterion field; the record stays) and ``blank_criteria``.

    With ``log``, every blank criterion field of a record is a located data-quality query."""
    out = df.copy()
    states = criterion_states(out)
    for c in CRITERIA:
        s = states[c.name]
        s = s.astype("boolean") if not pd.api.types.is_bool_dtype(s) else s
        out[flag_name(c.name)] = _true(s).to_numpy()
        out[query_name(c.name)] = pd.Series(s).isna().to_numpy()
    flags = out[[flag_name(c.name) for c in CRITERIA]]
    queries = out[[query_name(c.name) for c in CRITERIA]]
    first = flags.idxmax(axis=1).str.removeprefix("fail_")
    out["exclusion_reason"] = first.where(flags.any(axis=1), None)
    out["eligible"] = ~flags.any(axis=1)
    out["eligibility_query"] = queries.any(axis=1)
    names = np.array([c.name for c in CRITERIA])
    out["blank_criteria"] = [";".join(names[row]) or None for row in queries.to_numpy()]
    if log is not None:
        for c in CRITERIA:
            q = out[query_name(c.name)]
            if q.any():
                rows = out.loc[q]
                fields = [f for f in c.fields if f in rows.columns]
                blank = rows[fields].isna() if fields else pd.DataFrame(index=rows.index)
                rows = rows.assign(_v=[", ".join(np.array(fields)[b]) if len(fields) else "" for b in blank.to_numpy()])
                log.add_rows(rows, rule=f"blank eligibility field: '{c.label}' cannot be assessed",
                             column=",".join(c.fields), value_col="_v",
                             action="kept as missing (eligibility query); excluded in the sensitivity analysis "
                                    "with complete eligibility data")
    return out


def flow_table(screened: pd.DataFrame, arm_col: str = "arm") -> pd.DataFrame:
    """STROBE flow: screened, excluded by first failing criterion (and the number failing it at all), analysed by arm
    at time zero, and the analysed patients with a blank criterion field (per criterion and in total; kept)."""
    rows = [{"step": "screened", "criterion": "", "label": "Records screened", "n": len(screened), "n_failing_any": None}]
    for c in CRITERIA:
        rows.append({"step": "excluded", "criterion": c.name, "label": c.label,
                     "n": int((screened["exclusion_reason"] == c.name).sum()),
                     "n_failing_any": int(screened[flag_name(c.name)].sum())})
    eligible = screened[screened["eligible"]]
    rows.append({"step": "analysed", "criterion": "", "label": "Patients analysed", "n": len(eligible), "n_failing_any": None})
    for arm, n in eligible[arm_col].value_counts().sort_index().items():
        rows.append({"step": "arm", "criterion": arm, "label": f"Arm {arm} (at time zero)", "n": int(n),
                     "n_failing_any": None})
    if "eligibility_query" in eligible.columns:
        for c in CRITERIA:
            q = query_name(c.name)
            if q in eligible.columns and eligible[q].any():
                rows.append({"step": "query", "criterion": c.name, "label": f"Blank field: {c.label}",
                             "n": int(eligible[q].sum()), "n_failing_any": None})
        rows.append({"step": "query_total", "criterion": "",
                     "label": "Patients analysed with a blank eligibility field (kept; excluded in a sensitivity "
                              "analysis)", "n": int(eligible["eligibility_query"].sum()), "n_failing_any": None})
    table = pd.DataFrame(rows)
    table["n_failing_any"] = table["n_failing_any"].astype("Int64")
    return table


def check_flow(flow: pd.DataFrame) -> None:
    """Raise if the flow does not reconcile: screened = excluded + analysed, and analysed = sum over arms."""
    screened = int(flow.loc[flow.step == "screened", "n"].iloc[0])
    excluded = int(flow.loc[flow.step == "excluded", "n"].sum())
    analysed = int(flow.loc[flow.step == "analysed", "n"].iloc[0])
    arms = int(flow.loc[flow.step == "arm", "n"].sum())
    if screened != excluded + analysed or analysed != arms:
        raise AssertionError(f"flow does not reconcile: screened {screened} != excluded {excluded} + analysed "
                             f"{analysed}, or analysed != sum of arms {arms}")


def flow_by_arm(screened: pd.DataFrame, arm_col: str = "arm") -> pd.DataFrame:
    """The STROBE flow of ``flow_table`` split by the arm at time zero (``treatment.treatment_timing``: HAIC-TKIs-P
    when HAIC is given on day 0, else TKIs-P; excluded records keep the arm their treatment data give): columns step
    ('screened', 'excluded', 'analysed'), criterion, label, arm, n. Records without a time zero (no dated treatment:
    criteria ``no_treatment_start``, ``treatment_date_unknown``) have no arm; they are counted under arm
    :data:`NO_ARM`, all excluded. Each record is counted once, under its first failing criterion, so per arm
    screened = excluded + analysed; summed over the arms (NO_ARM included) it is ``flow_table``. An eligible record
    without an arm is an error."""
    no_arm = screened[arm_col].isna()
    if (no_arm & screened["eligible"].astype(bool)).any():
        n = int((no_arm & screened["eligible"].astype(bool)).sum())
        raise ValueError(f"{n} eligible screened record(s) without an arm: the flow by arm would not account for "
                         "every record")
    screened = screened.assign(**{arm_col: screened[arm_col].where(~no_arm, NO_ARM)})
    rows = []
    arms = sorted(a for a in screened[arm_col].unique().tolist() if a != NO_ARM) + ([NO_ARM] if no_arm.any() else [])
    for arm in arms:
        part = screened[screened[arm_col] == arm]
        rows.append({"step": "screened", "criterion": "", "label": "Records screened", "arm": arm, "n": len(part)})
        for c in CRITERIA:
            rows.append({"step": "excluded", "criterion": c.name, "label": c.label, "arm": arm,
                         "n": int((part["exclusion_reason"] == c.name).sum())})
        rows.append({"step": "analysed", "criterion": "", "label": "Patients analysed", "arm": arm,
                     "n": int(part["eligible"].sum())})
    return pd.DataFrame(rows)
