"""Unit errors a single value cannot show: a centre's values compared with the other centres'.

Bilirubin in mg/dL labelled µmol/L (1.1 instead of 18.8), diameters in cm labelled mm (4.2 instead of 42) stay
inside the physical range, so the contract's range check (:mod:`analysis_utils.study.contract`) passes them.
Their distribution does not: for each quantity with a unit, the median of each group of values sharing centre, file
and declared unit (at least :data:`MIN_GROUP` values) is compared with the median of the other centres' medians (at
least :data:`MIN_OTHER_CENTRES` centres). A group whose median is more than :data:`RATIO_LIMIT` times above or
below is flagged: one error entry names the file, column, declared unit, both medians and the conversion factor of
the contract the ratio matches (e.g. 17.1 = mg/dL -> µmol/L); every value of the group is set missing (the unit is
never guessed), each located. Quantities checked: baseline bilirubin, albumin and largest tumour size, lesion
diameters, and the lab tests with unit factors (bilirubin, albumin, platelets, neutrophils, WBC, haemoglobin,
creatinine). AFP, PIVKA-II and transaminases vary too much between centres for this rule.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis_utils.study.contract import declared_unit_column, load_contract
from analysis_utils.study.quality import QualityLog

RATIO_LIMIT = 4.0
MIN_GROUP = 10
MIN_OTHER_CENTRES = 2
FACTOR_MATCH = 1.5  # the ratio matches a conversion factor within this factor
LAB_TESTS = ("bilirubin", "albumin", "platelets", "neutrophils", "wbc", "hemoglobin", "creatinine")


def _checks() -> list[tuple[str, str, str | None, str | None, list[float]]]:
    """(table, value column, unit column, lab test, conversion factors) of every quantity checked."""
    spec = load_contract().spec
    factors = {k: [f for f in u["factors"].values() if f != 1.0] for k, u in {**spec["units"], **spec["lab_units"]}.items()}
    out = [("patients", "total_bilirubin", "total_bilirubin_unit", None, factors["total_bilirubin"]),
           ("patients", "albumin", "albumin_unit", None, factors["albumin"]),
           ("patients", "max_tumour_size", None, None, [10.0])]
    out += [("tumour_assessments", c, "diameter_unit", None, factors["diameter"])
            for c in ("ld_mm", "viable_ld_mm", "short_axis_mm")]
    out += [("labs", "value", "unit", t, factors[t]) for t in LAB_TESTS]
    return out


def _factor_hint(ratio: float, factors: list[float]) -> str:
    for f in factors:
        for g in (f, 1 / f):
            if abs(np.log(ratio) - np.log(g)) < np.log(FACTOR_MATCH):
                return f"; the ratio matches the contract's conversion factor {f:g}: the values are probably in another unit"
    return ""


def check_centre_units(tables: dict[str, pd.DataFrame], log: QualityLog) -> dict[str, pd.DataFrame]:
    """Flag and set missing the groups of values whose median departs from the other centres' (module docstring);
    drops the hidden declared-unit columns."""
    out = dict(tables)
    for table, col, unit_col, test, factors in _checks():
        df = out[table]
        hidden = declared_unit_column(unit_col) if unit_col else None
        use = df[col].notna() & (df[col] > 0)
        if test is not None:
            use &= df["test"].eq(test)
        if use.sum() < MIN_GROUP * (MIN_OTHER_CENTRES + 1):
            continue
        unit = df[hidden].fillna("(blank)") if hidden in df.columns else pd.Series("", index=df.index)
        sub = pd.DataFrame({"center_id": df["center_id"], "file": df["source_file"], "unit": unit,
                            "v": df[col]})[use]
        centre_median = sub.groupby("center_id")["v"].median()
        centre_n = sub.groupby("center_id").size()
        groups = sub.groupby(["center_id", "file", "unit"])["v"].agg(["median", "size"])
        flagged = []
        for (center, file, u), g in groups.iterrows():
            others = centre_median[(centre_median.index != center) & (centre_n >= MIN_GROUP)]
            if g["size"] < MIN_GROUP or len(others) < MIN_OTHER_CENTRES:
                continue
            ref = float(others.median())
            ratio = float(g["median"]) / ref if ref > 0 else np.inf
            if 1 / RATIO_LIMIT <= ratio <= RATIO_LIMIT:
                continue
            what = f"{col}{' of test ' + test if test else ''}"
            declared = f" (declared unit '{u}')" if unit_col else ""
            log.add(rule=f"likely unit error: the values of {what}{declared} are {ratio:.3g} times those of the other "
                         f"centres{_factor_hint(ratio, factors)}",
                    action="every value of the group set to missing (unit never guessed)", center_id=center, file=file,
                    column=col, value=f"median {g['median']:.4g} vs {ref:.4g} at {len(others)} other centres",
                    severity="error")
            flagged.append((center, file, u, what))
        if flagged:
            df = df.copy()
            for center, file, u, what in flagged:
                rows = use & (df["center_id"] == center) & (df["source_file"] == file) & (unit == u)
                log.add_rows(df.loc[rows].assign(_v=df.loc[rows, col]), column=col, value_col="_v", severity="error",
                             rule=f"value of a group with a likely unit error ({what}: see the entry for the file)",
                             action="set to missing")
                df.loc[rows, col] = np.nan
            out[table] = df
    for name, df in out.items():
        out[name] = df.drop(columns=[c for c in df.columns if c.startswith("_declared_")])
    return out
