"""Tables for the paper: writing (CSV for machines, Markdown pipe tables for the Quarto manuscript) and the one
set of reporting formats every notebook and the manuscript use (p-values, estimates with CIs, n (%), medians
that are not reached)."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NOT_REACHED = "NR"


def _isnan(x: Any) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def fmt_p(p: Any) -> str:
    """P-value as journals print it: '<0.001', else three decimals ('0.046'); '—' when missing."""
    if _isnan(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_num(x: Any, digits: int = 1, missing: str = NOT_REACHED) -> str:
    """A number with fixed decimals; ``missing`` (default 'NR', not reached) when NaN."""
    return missing if _isnan(x) else f"{x:.{digits}f}"


def fmt_est_ci(est: Any, lower: Any, upper: Any, digits: int = 2, missing: str = NOT_REACHED) -> str:
    """'0.62 (0.50–0.77)'; a missing limit prints as ``missing`` (e.g. a median CI whose upper limit is not reached)."""
    return f"{fmt_num(est, digits, missing)} ({fmt_num(lower, digits, missing)}–{fmt_num(upper, digits, missing)})"


def fmt_n_pct(n: int, total: int, digits: int = 1) -> str:
    """'123 (45.6%)'."""
    pct = 100.0 * n / total if total else float("nan")
    return f"{int(n)} ({fmt_num(pct, digits, '—')}%)"


_NUMERIC_CELL = re.compile(r"^[<>≤≥]?\s*[-−–]?\d[\d,.]*(%|\s|\(|\[|$)|^(NR|NE|—)$")
_MINUS = re.compile(r"(?<![\w)\]])-(?=\d)")  # a hyphen before a number prints as a minus sign


def _visible(text: str) -> str:
    """Cell text as printed: Markdown emphasis and code marks removed."""
    return re.sub(r"\*\*|`", "", text)


LINE_CHARS = 100      # characters of table text a page width holds (A4 portrait, 8-8.5 pt table type), all cells
CELL_PADDING = 3      # characters' worth of cell margins per column
MAX_CELL_CHARS = 40   # a cell longer than this wraps in any case


def column_weights(header: list[str], rows: list[list[str]], line_chars: int = LINE_CHARS) -> list[int]:
    """Relative column widths for a pipe table, in characters. Each column wants its longest cell (at most
    ``MAX_CELL_CHARS``) and needs at least its longest word (header included), so that no word and no number is
    broken. When the wanted widths do not fit ``line_chars`` (less ``CELL_PADDING`` per column), the columns that
    can wrap give up width in proportion to what they can spare; the result, plus the padding, is the number of
    dashes under each header (pandoc sizes a wide pipe table by them, in HTML, Word and Typst alike)."""
    needs, wants = [], []
    for j, h in enumerate(header):
        body = [_visible(r[j]) for r in rows]
        longest_word = max((len(w) for c in [_visible(h), *body] for w in c.split()), default=1)
        longest_cell = max((len(c) for c in body), default=0)
        needs.append(max(3, longest_word))
        wants.append(max(needs[-1], min(max(longest_cell, len(_visible(h)) // 2), MAX_CELL_CHARS)))
    room = line_chars - CELL_PADDING * len(header)
    excess = sum(wants) - room
    spare = [w - n for w, n in zip(wants, needs)]
    if excess > 0 and sum(spare) > 0:
        share = min(1.0, excess / sum(spare))
        wants = [w - s * share for w, s in zip(wants, spare)]
    return [int(round(w)) + CELL_PADDING for w in wants]


def column_alignment(header: list[str], rows: list[list[str]]) -> list[str]:
    """'l' for the first column and for text columns, 'c' for columns whose cells read as numbers ('12 (3.4%)',
    '0.52 (0.43–0.63)', '<0.001', 'NR')."""
    out = []
    for j, _ in enumerate(header):
        cells = [_visible(r[j]).strip() for r in rows if _visible(r[j]).strip()]
        numeric = j > 0 and cells and sum(bool(_NUMERIC_CELL.match(c)) for c in cells) >= 0.8 * len(cells)
        out.append("c" if numeric else "l")
    return out


def to_markdown(df: pd.DataFrame, note: str | None = None, align: list[str] | None = None) -> str:
    """A pipe table (no index) that Quarto renders in HTML, DOCX and PDF alike, ready for a journal page:

    - relative column widths from the separator line (``column_weights``: pandoc sizes a wide pipe table by the
      dashes under each header), so narrow columns are not cut into word fragments;
    - alignment markers (``align``: one of 'l', 'c', 'r' per column; default ``column_alignment``), left for labels;
    - a note (``note`` or ``df.attrs["note"]``: tests used, abbreviations, flags) printed as a paragraph under the
      table; inside a Quarto float it stays with the table, above or below the caption as the format puts it.
    Group rows are ordinary rows whose first cell is bold (``group_rows``)."""
    cols = [str(c) for c in df.columns]

    def cell(v: Any) -> str:
        return "" if _isnan(v) else str(v).replace("|", "\\|").replace("\n", " ")

    rows = [[_MINUS.sub("\u2212", cell(v)) for v in row] for row in df.itertuples(index=False)]
    weights = column_weights(cols, rows)
    align = align or df.attrs.get("align") or column_alignment(cols, rows)
    marks = {"l": (":", ""), "c": (":", ":"), "r": ("", ":")}
    sep = [marks[a][0] + "-" * max(3, w - len(marks[a][0] + marks[a][1])) + marks[a][1]
           for a, w in zip(align, weights)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(sep) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    note = note if note is not None else df.attrs.get("note")
    return text + (f"\n{note}\n" if note else "")


def group_rows(df: pd.DataFrame, by: str, label_col: str | None = None, indent: bool = True) -> pd.DataFrame:
    """Journal layout of a stacked table: the column ``by`` becomes a bold group row before each run of equal
    values (instead of repeating it on every row), the rows under it indented in ``label_col`` (default: the first
    remaining column). ``attrs`` (note, align) are kept."""
    rest = [c for c in df.columns if c != by]
    label_col = label_col or rest[0]
    parts = []
    for value, part in df.groupby(by, sort=False):
        head = {c: "" for c in rest}
        head[label_col] = f"**{value}**"
        body = part[rest].copy()
        if indent:
            body[label_col] = INDENT + body[label_col].astype(str)
        parts += [pd.DataFrame([head]), body]
    out = pd.concat(parts, ignore_index=True) if parts else df[rest].copy()
    out.attrs.update(df.attrs)
    return out


INDENT = "\u00a0\u00a0\u00a0"  # non-breaking spaces: pandoc keeps them, so level rows stay indented in every format


def write_table(df: pd.DataFrame, out_dir: str | Path, name: str, markdown: pd.DataFrame | None = None) -> dict[str, str]:
    """Write ``tables/<name>.csv`` (the numbers) and ``tables/<name>.md`` (``markdown`` if given, e.g. a formatted
    version with its note in ``attrs``, else the same frame; ``to_markdown``) under ``out_dir``; returns the
    relative paths."""
    folder = Path(out_dir) / "tables"
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / f"{name}.csv", index=False)
    (folder / f"{name}.md").write_text(to_markdown(markdown if markdown is not None else df), encoding="utf-8")
    return {"csv": f"tables/{name}.csv", "md": f"tables/{name}.md"}


# ----------------------------------------------------------------------------------------------------------------
# Table 1 (baseline characteristics by arm)
# ----------------------------------------------------------------------------------------------------------------

COVARIATE_LABELS = {
    "age": "Age, years", "sex": "Sex", "etiology": "Aetiology", "ecog": "ECOG performance status",
    "child_pugh_class": "Child-Pugh class", "child_pugh_score": "Child-Pugh score", "albi_grade": "ALBI grade",
    "albi_score": "ALBI score", "bclc_stage": "BCLC stage", "tumour_number": "Number of tumours",
    "multiple_tumours": "Multiple tumours", "max_tumour_size_cm": "Largest tumour diameter, cm",
    "mvi": "Macrovascular invasion", "vp_grade": "Portal vein tumour thrombus (Vp)", "vp4": "Vp4 thrombus",
    "ehs": "Extrahepatic spread", "afp": "AFP, ng/mL", "afp_ge_400": "AFP ≥400 ng/mL", "log10_afp": "log10 AFP",
    "pivka_ii": "PIVKA-II, mAU/mL", "tki_agent": "TKI / anti-VEGF agent", "pd1_agent": "PD-1 inhibitor",
    "center_id": "Centre",
}
LEVEL_LABELS = {"male": "Male", "female": "Female", "hbv": "HBV", "hcv": "HCV", "hbv_hcv": "HBV + HCV",
                "nafld": "NAFLD", "alcohol": "Alcohol", "other": "Other"}
YES, NO = "Yes", "No"


def _label(var: str, labels: dict[str, str] | None) -> str:
    return (labels or {}).get(var, COVARIATE_LABELS.get(var, var))


def _is_categorical(x: pd.Series, var: str, categorical: set[str]) -> bool:
    return var in categorical or pd.api.types.is_bool_dtype(x) or not pd.api.types.is_numeric_dtype(x)


def _level_text(v: Any) -> str:
    """A level as text; whole floats print without decimals (ECOG 1.0 -> '1'); ``LEVEL_LABELS`` for codes."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return LEVEL_LABELS.get(str(v), str(v))


def _table_frame(df: pd.DataFrame, covariates: list[str], categorical: set[str]
                 ) -> tuple[pd.DataFrame, list[str], dict[str, list[Any]]]:
    """Copy of the covariates for display: booleans become 'Yes'/'No' (Yes first), categorical levels as strings
    in their sorted (or pandas category) order. Returns the frame, the categorical columns and the level order."""
    out = pd.DataFrame(index=df.index)
    cats: list[str] = []
    order: dict[str, list[Any]] = {}
    for var in covariates:
        x = df[var]
        if not _is_categorical(x, var, categorical):
            out[var] = pd.to_numeric(x).astype(float)
            continue
        cats.append(var)
        if pd.api.types.is_bool_dtype(x) or (len(x.dropna()) > 0 and all(isinstance(v, (bool, np.bool_))
                                                                          for v in x.dropna())):
            out[var] = x.map(lambda v: None if pd.isna(v) else (YES if bool(v) else NO)).astype(object)
            order[var] = [lv for lv in (YES, NO) if lv in set(out[var].dropna())]
            continue
        levels = (list(x.cat.categories) if isinstance(x.dtype, pd.CategoricalDtype)
                  else sorted(x.dropna().unique().tolist(), key=lambda v: (str(type(v)), v)))
        out[var] = x.map(lambda v: None if pd.isna(v) else _level_text(v)).astype(object)
        present = set(out[var].dropna())
        order[var] = [_level_text(lv) for lv in levels if _level_text(lv) in present]
    return out, cats, order


def _groups(g: pd.Series, group_order: list[Any] | None, name: str) -> list[Any]:
    present = g.dropna().unique().tolist()
    groups = [v for v in (group_order or []) if v in present] + sorted(v for v in present
                                                                      if v not in (group_order or []))
    if len(groups) != 2:
        raise ValueError(f"group column {name!r} must hold exactly 2 groups for SMD and p-values, found {groups}")
    return groups


def _suffix(is_cat: bool, nonnormal: bool) -> str:
    return "n (%)" if is_cat else ("median [Q1, Q3]" if nonnormal else "mean (SD)")


def table_one(df: pd.DataFrame, group_col: str, covariates: list[str], categorical: list[str] | None = None,
              nonnormal: list[str] | None = None, labels: dict[str, str] | None = None,
              group_order: list[Any] | None = None, decimals: int = 1) -> pd.DataFrame:
    """Unweighted Table 1 by arm with the Python ``tableone`` package (``TableOne(..., pval=True, smd=True)``).

    Continuous: mean (SD), or median [Q1, Q3] for ``nonnormal``; p from Welch's t-test or Kruskal-Wallis.
    Categorical (``categorical``, booleans, text): n (%) among non-missing values (``include_null=False``; missing
    counted in the Missing column); p from chi-squared (Yates-corrected for 2 x 2, Fisher's exact when an expected
    count is < 5 in a 2 x 2). SMD as tableone computes it, shown as an absolute value: continuous Cohen's d with the
    pooled SD sqrt((s1^2 + s2^2) / 2) from the SDs of the table (ddof = 1, TableOne's ``ddof``; tableone's raw-data
    ``_cont_smd`` path would use ddof = 0, but the table's SMD is computed from the summary statistics);
    categorical the multivariate Yang & Dalton (2012) SMD over the levels (first level dropped), as R's tableone. This is NOT the MatchIt/cobalt SMD of the balance tables
    (fixed unadjusted-sample denominator by estimand; ``balance.balance_table``). P formatted with ``fmt_p``.
    Returns one row per variable (continuous) or per level (categorical): Characteristic, Level, Missing,
    Overall, <arm 1>, <arm 2>, SMD, P, Test. No weights: see ``table_one_weighted``.
    """
    import warnings

    from tableone import TableOne

    categorical_set = set(categorical or [])
    absent = [c for c in [group_col, *covariates] if c not in df.columns]
    if absent:
        raise ValueError(f"table_one: columns not in data: {absent}")
    groups = _groups(df[group_col], group_order, group_col)
    data, cats, order = _table_frame(df, covariates, categorical_set)
    data[group_col] = df[group_col].map(lambda v: v if v in groups else None)
    data = data[data[group_col].notna()]
    empty = [v for v in covariates if data[v].notna().sum() == 0]
    if empty:
        raise ValueError(f"table_one: covariate(s) entirely missing: {empty}")
    non = [v for v in (nonnormal or []) if v in covariates and v not in cats]
    if not covariates:  # tableone needs at least one variable
        n = data[group_col].value_counts()
        return pd.DataFrame([{"Characteristic": "n", "Level": "", "Missing": "", "Overall": str(len(data)),
                              **{g: str(int(n.get(g, 0))) for g in groups}, "SMD": "", "P": "", "Test": ""}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tableone warns on small expected counts; the Test column says so
        t1 = TableOne(data, columns=list(covariates), categorical=cats, continuous=[v for v in covariates
                      if v not in cats], nonnormal=non, groupby=group_col, pval=True, smd=True, htest_name=True,
                      include_null=False, label_suffix=False, decimals=decimals, ddof=1,
                      order={group_col: groups, **order}, overall=True)
    tab = t1.tableone
    tab.columns = [c[1] if isinstance(c, tuple) else c for c in tab.columns]
    smd = t1.smd_table.iloc[:, 0].abs() if t1.smd_table is not None else pd.Series(dtype=float)
    htest = t1.htest_table
    rows = [{"Characteristic": "n", "Level": "", "Missing": "", "Overall": str(tab.iloc[0]["Overall"]),
             **{g: str(tab.iloc[0][str(g)]) for g in groups}, "SMD": "", "P": "", "Test": ""}]
    for var in covariates:
        is_cat = var in cats
        block = tab.loc[var] if is_cat else tab.loc[[var]]
        levels = order[var] if is_cat else [""]
        for i, lv in enumerate(levels):
            r = block.loc[lv] if is_cat else block.iloc[0]
            if isinstance(r, pd.DataFrame):
                r = r.iloc[0]
            first = i == 0
            rows.append({
                "Characteristic": f"{_label(var, labels)}, {_suffix(is_cat, var in non)}" if first else "",
                "Level": lv, "Missing": str(int(data[var].isna().sum())) if first else "",
                "Overall": str(r["Overall"]), **{g: str(r[str(g)]) for g in groups},
                "SMD": fmt_num(smd.get(var, float("nan")), 3, "—") if first else "",
                "P": fmt_p(htest.loc[var, "P-Value"]) if first else "",
                "Test": str(htest.loc[var, "Test"]) if first else "",
            })
    return pd.DataFrame(rows)


def table_one_weighted(df: pd.DataFrame, group_col: str, covariates: list[str], weights: Any,
                       categorical: list[str] | None = None, labels: dict[str, str] | None = None,
                       group_order: list[Any] | None = None, estimand: str = "ATE", decimals: int = 1,
                       nonnormal: list[str] | None = None) -> pd.DataFrame:
    """Weighted Table 1 (IPTW, or matching weights), built on ``analysis_utils.balance`` because tableone has no
    weights. Continuous: weighted mean (SD) (``balance.weighted_mean``; SD = sqrt of ``balance.weighted_var``,
    the reliability-weight variance of MatchIt/cobalt), or for ``nonnormal`` weighted median [Q1, Q3]
    (``weighted_quantile``, inverse weighted eCDF). Categorical: weighted % among non-missing values.
    SMD: |``balance.balance_table`` SMD| with the unadjusted-sample denominator of ``estimand`` (ATT treated SD,
    ATE pooled sqrt((s1^2 + s0^2) / 2)), binary levels standardised (MatchIt), one per level for categoricals.
    The first group of ``group_order`` is the 'treated' group of the SMD. No p-values (a weighted test needs a
    design-based variance). Rows 'n' (units with weight > 0) and 'ESS' (Kish effective sample size)."""
    from analysis_utils.stats import balance

    absent = [c for c in [group_col, *covariates] if c not in df.columns]
    if absent:
        raise ValueError(f"table_one_weighted: columns not in data: {absent}")
    w = np.asarray(weights, dtype=float)
    if w.shape != (len(df),):
        raise ValueError(f"table_one_weighted: {w.size} weights for {len(df)} rows")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("table_one_weighted: weights must be finite and non-negative")
    groups = _groups(df[group_col], group_order, group_col)
    keep = df[group_col].isin(groups).to_numpy()
    data, cats, order = _table_frame(df.loc[keep], covariates, set(categorical or []))
    w = w[keep]
    g = df.loc[keep, group_col].to_numpy()
    treat = g == groups[0]
    bal = balance.balance_table(data, treat, covariates, weights=w, estimand=estimand, categorical=cats)
    smd = {(r.variable, "" if r.level is None else str(r.level)): abs(r.smd_adj) for r in bal.itertuples()}
    masks = {grp: g == grp for grp in groups}
    rows = [{"Characteristic": "n", "Level": "", "Missing": "",
             **{grp: str(int((w[m] > 0).sum())) for grp, m in masks.items()}, "SMD": ""},
            {"Characteristic": "ESS", "Level": "", "Missing": "",
             **{grp: fmt_num(balance.effective_sample_size(w[m]), 1) for grp, m in masks.items()}, "SMD": ""}]
    for var in covariates:
        x = data[var]
        ok = x.notna().to_numpy() & (w > 0)
        label = _label(var, labels)
        n_miss = str(int((x.isna().to_numpy() & (w > 0)).sum()))
        if var not in cats:
            xv = x.to_numpy(dtype=float)
            cells = {}
            skewed = var in (nonnormal or [])
            for grp, m in masks.items():
                sel = m & ok
                if skewed:
                    q1, med, q3 = (weighted_quantile(xv[sel], w[sel], q) for q in (0.25, 0.5, 0.75))
                    cells[grp] = (f"{fmt_num(med, decimals, '—')} [{fmt_num(q1, decimals, '—')}, "
                                  f"{fmt_num(q3, decimals, '—')}]")
                    continue
                mean = balance.weighted_mean(xv[sel], w[sel])
                sd = math.sqrt(balance.weighted_var(xv[sel], w[sel], False)) if sel.sum() > 1 else float("nan")
                cells[grp] = f"{fmt_num(mean, decimals, '—')} ({fmt_num(sd, decimals, '—')})"
            rows.append({"Characteristic": f"{label}, {_suffix(False, skewed)}", "Level": "", "Missing": n_miss,
                         **cells,
                         "SMD": fmt_num(smd.get((var, ""), float("nan")), 3, "—")})
            continue
        for i, lv in enumerate(order[var]):
            cells = {}
            for grp, m in masks.items():
                sel = m & ok
                tot = w[sel].sum()
                pct = 100 * w[sel & (x == lv).to_numpy()].sum() / tot if tot > 0 else float("nan")
                cells[grp] = fmt_num(pct, decimals, "—")
            rows.append({"Characteristic": f"{label}, weighted %" if i == 0 else "", "Level": lv,
                         "Missing": n_miss if i == 0 else "", **cells,
                         "SMD": fmt_num(smd.get((var, lv), float("nan")), 3, "—")})
    return pd.DataFrame(rows)


def weighted_quantile(x: Any, w: Any, q: float) -> float:
    """Weighted quantile as the inverse of the weighted eCDF: the smallest x with sum(w[x_i <= x]) / sum(w) >= q
    (with equal weights this is R's quantile type 1). NaN when no positive weight."""
    x = np.asarray(x, dtype=float)
    w = np.asarray(w, dtype=float)
    ok = ~np.isnan(x) & (w > 0)
    if not ok.any():
        return float("nan")
    order = np.argsort(x[ok], kind="stable")
    xs, cw = x[ok][order], np.cumsum(w[ok][order])
    idx = int(np.searchsorted(cw / cw[-1], q - 1e-12, side="left"))
    return float(xs[min(idx, xs.size - 1)])


def term_label(variable: str, level: Any = None, labels: dict[str, str] | None = None) -> str:
    """Readable name of a balance-table term: 'ECOG performance status: 1'; a missingness indicator
    '<col>_missing' of the propensity model reads 'Aetiology (missing)'."""
    if variable.endswith("_missing") and variable not in COVARIATE_LABELS and not (labels or {}).get(variable):
        return f"{_label(variable[: -len('_missing')], labels)} (missing)"
    text = _label(variable, labels)
    return text if level is None or (isinstance(level, float) and math.isnan(level)) else \
        f"{text}: {_level_text(level)}"


# ----------------------------------------------------------------------------------------------------------------
# Table 1 as a journal prints it
# ----------------------------------------------------------------------------------------------------------------
TEST_NAMES = {"welch": "Welch's t-test", "t-test": "t-test", "kruskal": "Kruskal–Wallis test",
              "chi-squared": "chi-squared test", "fisher": "Fisher's exact test", "anova": "one-way ANOVA"}
SMALL_COUNT_WARNING = "expected count < 5"  # what tableone appends to a chi-squared test name


def _test_name(raw: str) -> str:
    low = raw.lower()
    return next((name for key, name in TEST_NAMES.items() if key in low), raw.split("(")[0].strip())


def _variable_name(characteristic: str) -> str:
    """'Age, years, mean (SD)' -> 'age'; 'Child-Pugh class, n (%)' -> 'Child-Pugh class' (for notes)."""
    name = re.sub(r",\s*(n \(%\)|mean \(SD\)|median \[Q1, Q3\]|weighted %)$", "", characteristic)
    name = re.sub(r",\s*(years|cm|ng/mL|mAU/mL)$", "", name)
    first = name.split()[0]
    keep = name[:2].isupper() or first.isupper() or "-" in first or any(ch.isdigit() for ch in first)
    return name if keep else name[:1].lower() + name[1:]


def table_one_tests_note(t1: pd.DataFrame) -> str:
    """The note under Table 1 naming the test behind each P value (instead of a Test column on every row), with the
    variables whose chi-squared test had an expected count below 5 (tableone's warning), from ``table_one``."""
    if "Test" not in t1.columns:
        return ""
    by_test: dict[str, list[str]] = {}
    small: list[str] = []
    for r in t1.itertuples(index=False):
        test = str(getattr(r, "Test") or "").strip()
        if not test:
            continue
        var = _variable_name(str(r.Characteristic))
        by_test.setdefault(_test_name(test), []).append(var)
        if SMALL_COUNT_WARNING in test:
            small.append(var)
    if not by_test:
        return ""
    parts = [f"{test} for {_join(names)}" for test, names in by_test.items()]
    note = "P values (descriptive): " + "; ".join(parts) + "."
    if small:
        note += (f" An expected cell count was below 5 for {_join(small)}, so "
                 f"{'its chi-squared P value is' if len(small) == 1 else 'their chi-squared P values are'} "
                 "approximate.")
    return note


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + (", and " if len(items) > 2 else " and ") + \
        items[-1]


def table_one_markdown(t1: pd.DataFrame, note: str = "") -> pd.DataFrame:
    """Journal layout of ``table_one`` / ``table_one_weighted``: one column of characteristics (categorical
    levels as indented rows under their variable; a Yes/No variable as one row, its 'Yes' count), the arms headed
    with their n (and ESS for a weighted table), then SMD, P and the number of patients with the value missing.
    The tests move to a note (``table_one_tests_note``) and tableone's small-count warning with them; ``note`` is
    appended to it. Returns a frame for ``to_markdown`` with the note in ``attrs``."""
    value_cols = [c for c in t1.columns if c not in ("Characteristic", "Level", "Missing", "SMD", "P", "Test")]
    n_row = t1[t1["Characteristic"] == "n"].iloc[0]
    ess = t1[t1["Characteristic"] == "ESS"]
    heads = {}
    for c in value_cols:
        head = f"{c} (n = {n_row[c]})" if str(n_row[c]).strip() else str(c)
        if len(ess):
            head += f", ESS {ess.iloc[0][c]}"
        heads[c] = head
    rows: list[dict[str, str]] = []
    body = t1[~t1["Characteristic"].isin(["n", "ESS"])].reset_index(drop=True)
    starts = [i for i, c in enumerate(body["Characteristic"]) if str(c).strip()] + [len(body)]
    for a, b in zip(starts[:-1], starts[1:]):
        block = body.iloc[a:b]
        first = block.iloc[0]
        stats = {"SMD": first.get("SMD", ""), "P": first.get("P", ""), "Missing, n": first.get("Missing", "")}
        levels = [str(v) for v in block["Level"]]
        if len(block) == 1 and not levels[0].strip():
            rows.append({"Characteristic": first["Characteristic"], **{heads[c]: first[c] for c in value_cols},
                         **stats})
        elif levels in (["Yes", "No"], ["Yes"]):
            rows.append({"Characteristic": first["Characteristic"], **{heads[c]: first[c] for c in value_cols},
                         **stats})
        else:
            rows.append({"Characteristic": first["Characteristic"], **{heads[c]: "" for c in value_cols}, **stats})
            for _, r in block.iterrows():
                rows.append({"Characteristic": INDENT + str(r["Level"]), **{heads[c]: r[c] for c in value_cols},
                             "SMD": "", "P": "", "Missing, n": ""})
    columns = ["Characteristic", *heads.values(), "SMD", "P", "Missing, n"]
    out = pd.DataFrame(rows, columns=columns)
    for c in heads.values():  # tableone prints '8.7 [6.5,11.8]'; the weighted table '8.9 [6.6, 11.9]'
        out[c] = out[c].astype(str).str.replace(r"\[([^,\]]+),(\S)", r"[\1, \2", regex=True)
    if "P" not in t1.columns:
        out = out.drop(columns="P")
    out = out.fillna("")
    out.attrs["note"] = " ".join(x for x in (table_one_tests_note(t1), note) if x)
    return out
