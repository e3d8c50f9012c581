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
