"""Reporting formats used by every notebook and the manuscript."""
import math

import pandas as pd

from analysis_utils.reporting import tables


def test_p_values():
    assert [tables.fmt_p(p) for p in (0.0004, 0.001, 0.0456, 0.5, float("nan"))] == ["<0.001", "0.001", "0.046", "0.500", "—"]


def test_estimates_with_ci_and_not_reached():
    assert tables.fmt_est_ci(0.6234, 0.5012, 0.7749) == "0.62 (0.50–0.77)"
    assert tables.fmt_est_ci(17.2, 15.1, math.nan, digits=1) == "17.2 (15.1–NR)"
    assert tables.fmt_n_pct(45, 120) == "45 (37.5%)"


def test_markdown_table_escapes_pipes(tmp_path):
    df = pd.DataFrame({"a": ["x|y", None], "b": [1, 2]})
    md = tables.to_markdown(df)
    assert md.splitlines()[0] == "| a | b |" and "x\\|y" in md and md.splitlines()[3] == "|  | 2 |"
    paths = tables.write_table(df, tmp_path, "t")
    assert (tmp_path / paths["csv"]).is_file() and (tmp_path / paths["md"]).read_text() == md


def test_markdown_table_widths_alignment_and_note():
    df = pd.DataFrame({"Characteristic": ["Largest tumour diameter, cm, median [Q1, Q3]", "Age, years"],
                       "Arm": ["8.7 [6.5, 11.8]", "-2.5 (0.6)"], "SMD": ["0.156", "0.050"], "P": ["<0.001", "0.024"]})
    df.attrs["note"] = "P values from Welch's t-test."
    lines = tables.to_markdown(df).splitlines()
    sep = lines[1].strip("|").split("|")
    # labels left, numbers centred; a column at least as wide as its longest word plus padding
    assert [s[0] + s[-1] for s in sep] == [":-", "::", "::", "::"]
    assert len(sep[2]) >= len("0.156") + tables.CELL_PADDING - 1 and len(sep[0]) > len(sep[2])
    assert "−2.5 (0.6)" in lines[3]  # a minus sign, not a hyphen, before a number
    assert lines[-1] == "P values from Welch's t-test." and lines[-2] == ""


def test_column_weights_shrink_wrappable_columns_only():
    header = ["Long text", "SMD"]
    rows = [["word " * 30, "0.123"]]
    w = tables.column_weights(header, rows, line_chars=30)
    assert w[1] == len("0.123") + tables.CELL_PADDING  # a number is never squeezed below its width
    assert w[0] == 30 - 2 * tables.CELL_PADDING - len("0.123") + tables.CELL_PADDING  # the text column gives way


def test_group_rows_replace_a_repeated_column():
    df = pd.DataFrame({"Endpoint": ["OS", "OS", "PFS"], "Model": ["a", "b", "a"], "HR": ["0.5", "0.6", "0.7"]})
    g = tables.group_rows(df, "Endpoint")
    assert g["Model"].tolist() == ["**OS**", tables.INDENT + "a", tables.INDENT + "b", "**PFS**", tables.INDENT + "a"]
    assert list(g.columns) == ["Model", "HR"] and g.loc[0, "HR"] == ""
