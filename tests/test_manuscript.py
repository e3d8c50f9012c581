"""The Quarto manuscript: formatting of the values the text draws on, Methods prose from params, the reference
checker (every shortcode, include, embed, image, cross-reference and citation resolves; no number typed by hand), the
render step without Quarto, and, on real pipeline runs, that the article resolves and its numbers follow the run."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from analysis_utils.reporting import manuscript as ms
from analysis_utils.reporting.manuscript import checks, quarto, variables

ROOT = Path(__file__).resolve().parents[1]
SOURCES = tuple(sorted(p.name for p in (ROOT / "manuscript").iterdir()  # the article, its include files, bib, csl
                      if p.is_file() and p.suffix in (".qmd", ".bib", ".csl")))


# --------------------------------------------------------------------------------------------------- formatting
def test_number_formats_for_reading():
    assert ms.fmt_int(1050) == "1,050" and ms.fmt_int(14.0) == "14"
    assert ms.fmt_pct(40.52511415525114) == "40.5%"
    assert ms.fmt_count_pct(253, 71.26760563380282) == "253 (71.3%)"
    assert ms.p_text(2.7e-10) == "P < 0.001"
    assert ms.p_text(0.022403125961772165) == "P = 0.022"
    assert ms.p_text(None) == "P not estimable"
    assert ms.est_ci_text(0.6234, 0.50123, 0.7749) == "0.62 (95% CI 0.50–0.77)"
    assert ms.est_ci_text(0.6234, 0.50123, 0.7749, conf_level=0.9) == "0.62 (90% CI 0.50–0.77)"
    # a median whose curve never reaches 0.5 is "not reached"; a missing CI limit is "NR" (tables.NOT_REACHED)
    assert ms.median_text(None, 20.14, None) == "not reached (95% CI 20.1–NR)"
    assert ms.median_text(14.25, 12.0, 16.94) == "14.2 months (95% CI 12.0–16.9)"  # f"{14.25:.1f}" rounds half-even
    assert ms.human_list(["a"]) == "a" and ms.human_list(["a", "b"]) == "a and b"
    assert ms.human_list(["a", "b", "c"]) == "a, b, and c"
    assert ms.date_text("2025-09-30") == "September 30, 2025"
    assert ms.date_text("2023-01-01", day=False) == "January 2023"
    assert ms.days_text(42) == "42 days (6 weeks)" and ms.days_text(7) == "7 days (1 week)"
    assert ms.days_text(730) == "730 days (about 24 months)"  # 730 / 30.4375 = 23.98
    assert ms.days_text(90) == "90 days (about 3 months)"  # 90 / 30.4375 = 2.96
    with pytest.raises(ValueError, match="missing"):
        ms.fmt_int(None)


def test_signed_rmst_difference_reads_longer_or_shorter():
    assert variables._signed_months(2.13, 0.91, 3.34, 0.95) == "2.1 months (95% CI 0.9–3.3) longer"
    # negative difference: sign and limits flipped (-2.0, -0.4) -> (0.4, 2.0)
    assert variables._signed_months(-1.2, -2.0, -0.4, 0.95) == "1.2 months (95% CI 0.4–2.0) shorter"


COVARIATES = ["age", "sex", "etiology", "ecog", "child_pugh_class", "bclc_stage", "multiple_tumours",
              "max_tumour_size_cm", "mvi", "ehs", "afp_ge_400"]


def _params(**matching):
    """params/default.yaml with a fixed covariate list (so the expected prose does not follow edits of the file)."""
    base = yaml.safe_load((ROOT / "params" / "default.yaml").read_text())
    base["matching"].update({"covariates": COVARIATES, **matching})
    return base


def test_methods_prose_follows_the_params():
    m = variables._methods_variables(_params())
    assert m["caliper"] == "a caliper of 0.2 standard deviations of the logit of the propensity score"
    assert m["ratio"] == "1:1" and m["replacement"] == "without replacement"
    assert m["order"].startswith("in descending order of the propensity score")
    assert m["iptw"] == "stabilised inverse probability of treatment weights truncated at the 99th percentile"
    assert m["ps_covariates"].startswith("age, sex, aetiology, ECOG performance status, Child-Pugh class")
    assert m["ps_covariates"].endswith(", and AFP of 400 ng/mL or more") and m["n_ps_covariates"] == "11"
    assert m["timepoints"] == "6, 12, 18, and 24 months" and m["km_ci"] == "log-log transformed"
    assert m["ci_level"] == "95%" and m["ties"] == "Efron" and m["rmst_tau"] == "24 months"
    assert m["haic_window"] == "90 days (about 3 months)" and m["min_sd"] == "42 days (6 weeks)"
    assert m["exact"] == "without exact matching on any variable"
    other = variables._methods_variables(_params(caliper=0.1, std_caliper=False, ratio=2, replace=True, m_order="random",
                                          distance="ps", exact=["center_id"]))
    assert other["caliper"] == "a caliper of 0.1 on the scale of the propensity score"
    assert other["ratio"] == "1:2" and other["replacement"] == "with replacement"
    assert other["order"] == "in a random order drawn from the run's seed"
    assert other["exact"] == "with exact matching on centre"
    assert variables._methods_variables(_params(caliper=None))["caliper"] == "no caliper"
    # safety window and number of terms (params/default.yaml: window_days 730, top_terms 15); the response
    # definition the params make primary, the other as sensitivity
    assert (m["safety_window"], m["top_terms"]) == ("730 days (about 24 months)", "15")
    assert (m["response_primary"], m["response_sensitivity"]) == ("unconfirmed", "confirmed")
    confirmed = _params()
    confirmed["response"]["primary_definition"] = "confirmed"
    c = variables._methods_variables(confirmed)
    assert (c["response_primary"], c["response_sensitivity"]) == ("confirmed", "unconfirmed")


def test_balance_text_singular_and_plural():
    """One covariate above the SMD threshold after matching reads '1 covariate (...)', two read '2 covariates'."""
    def balance(names):
        r = variables._Reader("matching", {"smd_threshold": 0.1, "balanced": False,
                                           "n_covariates_above_threshold_matched": len(names),
                                           "covariates_above_threshold_matched": names})
        return variables._matching_variables(r, {}, [])["balance"]
    assert balance(["age"]).startswith("1 covariate (") and balance(["age"]).endswith(") kept an absolute SMD of "
                                                                                       "0.1 or more")
    assert balance(["age", "sex"]).startswith("2 covariates (")


def test_run_variables_name_the_package_version():
    manifest = {"versions": {"analysis_utils": "0.9.1", "python": "3.11.7", "numpy": "1.26.4"},
                "params": {"data_cutoff": "2025-09-30"}, "git": {"commit": "0123456789abcdef", "dirty": False}}
    v = variables._run_variables(manifest)
    assert (v["analysis_utils"], v["python"], v["software"]) == ("0.9.1", "3.11.7", "NumPy 1.26.4")
    assert (v["commit_short"], v["commit_state"], v["data_cutoff"]) == ("0123456", "with no uncommitted changes",
                                                                        "September 30, 2025")


class _R(variables._Reader):
    def __init__(self, values):
        super().__init__("survival", values)


def _hr(lower, upper):
    return {f"{ep}_hr_matched_{b}": v for ep in ("os", "pfs_recist", "pfs_mrecist")
            for b, v in (("lower", lower[ep]), ("upper", upper[ep]))}


def test_conclusion_wording_follows_the_confidence_intervals():
    # CI entirely below 1 -> longer survival; including 1 -> not clearly associated; above 1 -> shorter
    r = _R(_hr({"os": 0.5, "pfs_recist": 0.6, "pfs_mrecist": 0.6}, {"os": 0.8, "pfs_recist": 0.9, "pfs_mrecist": 0.9}))
    assert variables._conclusion(r) == ("was associated with longer overall survival and progression-free survival "
                                 "(RECIST 1.1 and mRECIST)")
    r = _R(_hr({"os": 0.5, "pfs_recist": 0.8, "pfs_mrecist": 1.1}, {"os": 0.8, "pfs_recist": 1.2, "pfs_mrecist": 1.5}))
    assert variables._conclusion(r) == ("was associated with longer overall survival but shorter progression-free survival "
                                 "per mRECIST and was not clearly associated with progression-free survival per "
                                 "RECIST 1.1")


def test_safety_comparison_uses_the_p_value_and_direction():
    base = {"g3_haic_pct": 71.3, "g3_control_pct": 49.9}
    more = variables._safety_comparison(variables._Reader("safety", {**base, "g3_p": 1e-9}), "", 0.05)
    assert more == "at the cost of more frequent grade ≥3 adverse events"
    assert variables._safety_comparison(variables._Reader("safety", {**base, "g3_p": 0.2}), "", 0.05).startswith("with a similar")
    low = {"g3_haic_pct": 20.0, "g3_control_pct": 30.0, "g3_p": 0.01}
    assert variables._safety_comparison(variables._Reader("safety", low), "", 0.05).startswith("with less frequent")


def _write_run(out: Path, results: dict, params: dict | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results))
    manifest = {"run_name": "t", "params_file": "params/t.yaml", "params": params or _params(), "seed": 7,
                "git": {"commit": "0123456789abcdef", "dirty": False},
                "versions": {"python": "3.11.9", "pandas": "2.3.3", "lifelines": "0.30.0"},
                "input_sha256": {"C01/patients.csv": "ab" * 32}, "notebooks": ["01_cleaning.ipynb"]}
    (out / "run_manifest.json").write_text(json.dumps(manifest))
    return out


def test_build_variables_from_a_hand_built_run(tmp_path):
    cleaning = {"n_screened": 1050, "n_centers": 14, "n_excluded": 174, "n_analysed": 876, "n_haic": 355,
                "n_control": 521, "pct_haic": 40.52511415525114, "n_os_events": 497, "haic_after_index_n": 96,
                "n_quality_entries": 3, "index_date_min": "2023-01-01", "index_date_max": "2024-12-31",
                "exclusions": {"no_measurable_intrahepatic": 74, "hcc_not_confirmed": 26, "no_combination": 14,
                               "child_pugh_c": 2, "ecog_above_2": 0}}
    v, missing = ms.variables_report(_write_run(tmp_path / "run", {"cleaning": cleaning}))
    c = v["cohort"]
    assert (c["n_screened"], c["n_analysed"], c["pct_haic"]) == ("1,050", "876", "40.5%")
    assert c["pct_control"] == "59.5%"  # 100 - 40.525 = 59.475 -> 59.5
    assert (c["index_from"], c["index_to"]) == ("January 2023", "December 2024")
    # the three most frequent reasons, largest first; without tables/flow.csv the criterion names are used
    assert c["top_exclusions"] == ("no measurable intrahepatic (n = 74), hcc not confirmed (n = 26), and "
                                   "no combination (n = 14)")
    assert v["run"]["commit_short"] == "0123456" and v["run"]["data_cutoff"] == "September 30, 2025"
    assert v["run"]["software"] == "pandas 2.3.3 and lifelines 0.30.0" and v["run"]["n_input_files"] == "1"
    assert "matching: results.json has no 'matching' section" in missing
    assert "survival" not in v and "safety" not in v


def test_missing_results_key_is_reported_not_invented(tmp_path):
    v, missing = ms.variables_report(_write_run(tmp_path / "run", {"cleaning": {"n_screened": 10}}))
    assert v["cohort"] == {"n_screened": "10"}
    assert any("n_analysed: results key cleaning.n_analysed not found" in m for m in missing)


def test_build_variables_needs_a_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the pipeline first"):
        ms.build_variables(tmp_path)


def test_prepare_writes_variables_and_refreshes_generated_files(tmp_path):
    run = _write_run(tmp_path / "run", {"cleaning": {"n_screened": 1050, "exclusions": {"child_pugh_c": 2}}})
    for sub, name in (("notebooks", "01_cleaning.ipynb"), ("figures", "flow_diagram.png"),
                      ("figures", "flow_diagram.svg"), ("tables", "flow.md")):
        (run / sub).mkdir(exist_ok=True)
        (run / sub / name).write_text("x")
    (run / "tables" / "flow.csv").write_text("step,criterion,label,n\nscreened,,Records screened,1050\n"
                                             "excluded,child_pugh_c,Child-Pugh class C,2\n")
    root = tmp_path / "project"
    (root / ms.GENERATED_DIR / "tables").mkdir(parents=True)
    (root / ms.GENERATED_DIR / "tables" / "stale.md").write_text("from an earlier run")
    (root / ms.QUARTO_CONFIG).write_text("project: {type: manuscript}\n")
    (root / "requirements-lock.txt").write_text("pandas==2.3.3\n")
    prepared = ms.prepare(run, root)
    variables = yaml.safe_load((root / ms.VARIABLES_FILE).read_text(encoding="utf-8"))
    assert variables["cohort"]["n_screened"] == "1,050" and variables["run"]["seed"] == "7"
    # exclusion wording from the flow table's labels (acronym-led labels keep their capitals)
    assert variables["cohort"]["criteria"] == "Child-Pugh class C"
    assert variables["cohort"]["top_exclusions"] == "Child-Pugh class C (n = 2)"
    gen = root / ms.GENERATED_DIR
    assert (gen / "notebooks" / "01_cleaning.ipynb").is_file() and (gen / "figures" / "flow_diagram.svg").is_file()
    assert (gen / "tables" / "flow.md").is_file() and not (gen / "tables" / "flow.csv").exists()
    assert not (gen / "tables" / "stale.md").exists()
    assert (gen / "environment" / "requirements-lock.txt").read_text() == "pandas==2.3.3\n"
    # the header names the run folder relative to the project root when it lies below it, never this machine's path
    header = (root / ms.VARIABLES_FILE).read_text(encoding="utf-8").splitlines()[0]
    assert str(tmp_path) in header  # here the run lies outside the project tree
    inside = root / "outputs" / "t"
    shutil.copytree(run, inside)
    ms.prepare(inside, root)
    header = (root / ms.VARIABLES_FILE).read_text(encoding="utf-8").splitlines()[0]
    assert "from outputs/t " in header and str(tmp_path) not in header
    assert prepared.figures == ["flow_diagram.png"] and prepared.notebooks == ["01_cleaning.ipynb"]
    params_md = (gen / "run" / "params.md").read_text(encoding="utf-8")
    assert params_md.startswith("```yaml") and "pseudonym_key: <redacted>" in params_md
    # one digest per centre: sha256 of the lines "<sha256>  <path>\n" in path order (what sha256sum prints)
    digest = hashlib.sha256(("ab" * 32 + "  C01/patients.csv\n").encode()).hexdigest()
    assert f"| C01 | 1 | `{digest}` |" in (gen / "run" / "inputs.md").read_text(encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="not a Quarto project root"):
        ms.prepare(run, tmp_path / "elsewhere")


# --------------------------------------------------------------------------------------------------- checking
def _mini_project(root: Path, body: str, variables: dict, bib: str = "@article{known2020, title={T}}\n") -> Path:
    (root / "manuscript" / "_generated" / "tables").mkdir(parents=True)
    (root / ms.QUARTO_CONFIG).write_text(yaml.safe_dump({
        "project": {"type": "manuscript"}, "manuscript": {"article": "index.qmd"},
        "bibliography": "refs.bib",
        "crossref": {"custom": [{"kind": "float", "ref-type": "etbl", "prefix": "eTable", "name": "eTable"}]}}))
    (root / "manuscript" / "refs.bib").write_text(bib)
    (root / "manuscript" / "index.qmd").write_text(body)
    (root / ms.VARIABLES_FILE).write_text(yaml.safe_dump(variables))
    return root


CLEAN = """---
title: A study
abstract: |
  We saw {{< var a.n >}} patients.
---

## Methods {#sec-m}

As in @sec-m and @known2020, see @tbl-one and @etbl-two.

::: {#tbl-one}
{{< include _generated/tables/one.md >}}

Caption.
:::

::: {#etbl-two}
{{< include _generated/tables/one.md >}}

Caption two.
:::
"""


def test_check_references_accepts_a_clean_project(tmp_path):
    root = _mini_project(tmp_path, CLEAN, {"a": {"n": "1,050"}})
    (root / "manuscript" / "_generated" / "tables" / "one.md").write_text("| a |\n|---|\n| 1 |\n")
    assert ms.check_references(root) == []
    assert "We saw 1,050 patients." in ms.resolve_text(root)


def test_check_references_reports_every_kind_of_problem(tmp_path):
    nb = {"cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "outputs": [],
                     "source": ["#| label: fig-empty\n", "x = 1\n"]}], "metadata": {}, "nbformat": 4,
          "nbformat_minor": 5}
    body = CLEAN + """
{{< var a.missing >}} {{< var a.raw >}} {{< var a >}} {{< var a.xref >}} {{< include _generated/tables/none.md >}}
![](_generated/figures/none.png) @fig-nowhere [@unknown2021] {{< bogus x >}}
{{< embed _generated/nb.ipynb#fig-empty >}} {{< embed _generated/nb.ipynb#fig-absent >}}

::: {#fig-lonely}
![](_generated/tables/one.md)

Never referenced.
:::

Median survival was 14.2 months.
"""
    root = _mini_project(tmp_path, body, {"a": {"n": "1,050", "raw": 0.623456, "xref": "imputed (see @sec-x)"}})
    (root / "manuscript" / "_generated" / "tables" / "one.md").write_text("| a |\n|---|\n| 1 |\n")
    (root / "manuscript" / "_generated" / "nb.ipynb").write_text(json.dumps(nb))
    problems = "\n".join(ms.check_references(root))
    for expected in (f"var a.missing is not in {ms.VARIABLES_FILE}", "var a.raw = 0.623456 is not formatted for reading",
                     "var a is a dict, not a value", "include _generated/tables/none.md does not exist",
                     "image _generated/figures/none.png does not exist", "cross-reference @fig-nowhere has no matching",
                     "citation @unknown2021 is not in the bibliography", "unknown shortcode 'bogus'",
                     "fig-empty: the cell has no stored output", "no cell with id, label or tag 'fig-absent'",
                     "fig-lonely is never cross-referenced", "number typed by hand: 'Median survival was 14.2",
                     "fig-empty is never cross-referenced", "var a.xref holds a cross-reference"):
        assert expected in problems, expected
    assert len(ms.check_references(root)) == 14


def test_check_references_needs_the_variables_file(tmp_path):
    root = _mini_project(tmp_path, CLEAN, {})
    (root / ms.VARIABLES_FILE).unlink()
    (root / "manuscript" / "_generated" / "tables" / "one.md").write_text("| a |\n")
    assert any("_variables.yml does not exist" in p for p in ms.check_references(root))


def test_hand_typed_numbers_ignores_names_labels_and_generated_values():
    text = """---
title: RECIST 1.1 and CTCAE 5.0
author: Centre 12
abstract: |
  In {{< var n >}} patients (NCT06881433), grade ≥3 events with PD-1 and PD-L1 agents, Vp4 thrombus.
---
See @fig-km-12 and [@smith2020], ![](fig_2.png){width=80%} and <https://doi.org/10.1000/x1>.
`code 3` and <!-- 4 -->

```
5
```
Among 12 patients.
"""
    found = ms.hand_typed_numbers(text)
    assert [n for n, _ in found] == [13] and "Among 12" in found[0][1]  # front matter 'author' is not prose
    table = "| 12c | Explain missing data | @sec-x |\n| 13 | Report 3 numbers | x |\n"
    assert [n for n, _ in ms.hand_typed_numbers(table, checklist=True)] == [2]
    assert len(ms.hand_typed_numbers(table)) == 2


# --------------------------------------------------------------------------------------------------- the real sources
QMD_FILES = sorted(p.name for p in (ROOT / "manuscript").glob("*.qmd"))  # the article and every include file


def test_manuscript_sources_hold_no_hand_typed_number():
    assert {"index.qmd", "_supplement.qmd", "_target_trial_methods.qmd", "_missing-data.qmd"} <= set(QMD_FILES)
    for name in QMD_FILES:
        text = (ROOT / "manuscript" / name).read_text(encoding="utf-8")
        assert ms.hand_typed_numbers(text, checklist=name in ms.CHECKLIST_FILES) == [], name


def test_every_citation_is_in_the_bibliography_with_a_doi_or_url():
    bib = (ROOT / "manuscript" / "references.bib").read_text(encoding="utf-8")
    assert checks._bib_braces(bib, "references.bib") == []  # an unclosed entry stops Pandoc's whole bibliography
    entries = re.split(r"\n(?=@)", bib[bib.index("@"):])
    keys = {ms.BIB_KEY_RE.match(e).group(1): e for e in entries}
    for key, entry in keys.items():
        assert re.search(r"\b(doi|url)\s*=", entry), f"{key}: no DOI or URL"
    for doi in re.findall(r"doi\s*=\s*\{([^}]*)\}", bib):
        assert doi.startswith("10.") and " " not in doi, doi
    cited = set()
    for name in QMD_FILES:
        body = checks._strip_code(ms.SHORTCODE_RE.sub(" ", (ROOT / "manuscript" / name).read_text(encoding="utf-8")))
        cited |= {m.group(1).rstrip(".:") for m in ms.AT_RE.finditer(body)
                  if m.group(1).split("-")[0] not in ms.BUILTIN_XREF + ("etbl", "efig")}
    assert cited and cited <= set(keys), sorted(cited - set(keys))
    for required in ("eisenhauer2009recist", "lencioni2010mrecist", "nci2017ctcae", "vonelm2007strobe",
                     "ho2011matchit", "austin2011caliper", "austin2009balance", "davidsonpilon2019lifelines",
                     "polsterl2020sksurv", "johnson2015albi", "reig2022bclc", "vanderweele2017evalue",
                     "royston2013rmst", "clopper1934", "newcombe1998", "grambsch1994ph", "lin1989robust"):
        assert required in cited, required


def test_quarto_project_config():
    proj = ROOT / ms.QUARTO_PROJECT
    cfg = yaml.safe_load((ROOT / ms.QUARTO_CONFIG).read_text(encoding="utf-8"))
    assert cfg["project"]["type"] == "manuscript" and cfg["manuscript"]["meca-bundle"] is True
    assert (proj / cfg["manuscript"]["article"]).is_file() and cfg["manuscript"]["article"] == "index.qmd"
    # jats makes Quarto write the MECA bundle; typst gives the PDF without LaTeX
    assert set(cfg["format"]) == {"html", "docx", "typst", "jats"}
    assert (proj / cfg["bibliography"]).is_file()
    csl = (proj / cfg["csl"]).read_text(encoding="utf-8")
    assert "<rights license=" in csl and 'citation-format="numeric"' in csl  # licence header kept
    # crossref.custom in the schema of Quarto >= 1.4 (kind, key, reference-prefix; no ref-type / prefix / name)
    for custom in cfg["crossref"]["custom"]:
        assert {"kind", "key", "reference-prefix"} <= set(custom) and not {"ref-type", "prefix", "name"} & set(custom)
    nbs = [Path(n["notebook"]) for n in cfg["manuscript"]["notebooks"]]
    # the executed copies, relative to the Quarto project folder
    assert all((proj / p).parent == ROOT / ms.GENERATED_DIR / "notebooks" for p in nbs)
    assert [p.name for p in nbs] == [p.name for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    assert cfg["format"]["typst"]["number-sections"] is True  # Typst refuses @sec- references to unnumbered headings
    gitignore = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    for ignored in (ms.GENERATED_DIR, ms.VARIABLES_FILE, ms.QUARTO_OUTPUT_DIR):
        assert any(line.strip("/") == ignored for line in gitignore), ignored


# --------------------------------------------------------------------------------------------------- render
def test_render_without_quarto_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(quarto.shutil, "which", lambda name: None)
    outcome = ms.render(tmp_path, tmp_path / "out")
    assert not outcome.rendered
    assert "Quarto is not on the PATH" in outcome.message and "quarto render manuscript" in outcome.message
    assert str(tmp_path / ms.VARIABLES_FILE) in outcome.message


def test_render_copies_the_quarto_output_into_the_run(tmp_path, monkeypatch):
    """The copy step around ``quarto render`` (the CLI itself is replaced by a stub writing _manuscript/)."""
    def fake_quarto(exe, project, env=None, files=quarto.DELIVERABLES):
        (project / "_manuscript").mkdir(parents=True)
        for name in files:
            (project / "_manuscript" / name).write_text("x")
        return subprocess.CompletedProcess([exe, "render"], 0, "", "")

    monkeypatch.setattr(quarto.shutil, "which", lambda name: "/opt/quarto/bin/quarto")
    monkeypatch.setattr(quarto, "_run_quarto", fake_quarto)
    (tmp_path / ms.QUARTO_OUTPUT_DIR).mkdir(parents=True)
    (tmp_path / ms.QUARTO_OUTPUT_DIR / "stale.html").write_text("from an earlier render")
    outcome = ms.render(tmp_path, tmp_path / "out")
    assert outcome.rendered
    assert sorted(p.name for p in (tmp_path / "out" / "manuscript").iterdir()) == sorted(quarto.DELIVERABLES)
    monkeypatch.setattr(quarto, "_run_quarto", lambda exe, project, env: fake_quarto(exe, project, env, ("index.html",)))
    partial = ms.render(tmp_path, tmp_path / "out")
    assert not partial.rendered and "lacks index.docx, index.pdf, index-meca.zip" in partial.message
    monkeypatch.setattr(quarto, "_run_quarto", lambda exe, project, env: subprocess.CompletedProcess([exe], 1, "", "ERROR: x"))
    failed = ms.render(tmp_path, tmp_path / "out")
    assert not failed.rendered and "exit code 1" in failed.message and "ERROR: x" in failed.message


def test_manuscript_command_needs_a_finished_run(tmp_path, capsys):
    from analysis_utils.runner.cli import main

    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({"base": str(ROOT / "params" / "default.yaml"), "run_name": "none",
                                      "output_root": str(tmp_path / "outputs")}))
    assert main(["manuscript", "--params", str(params), "--no-render"]) == 2
    assert "holds no finished run" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------- real runs
def project_copy(dest: Path) -> Path:
    """The manuscript project's hand-written files (every file of manuscript/ except what prepare and Quarto write)
    in a temporary tree, so tests never write into manuscript/."""
    (dest / "manuscript").mkdir(parents=True)
    for f in sorted((ROOT / "manuscript").iterdir()):
        if f.is_file() and f.name != Path(ms.VARIABLES_FILE).name:
            shutil.copy(f, dest / "manuscript" / f.name)
    return dest


@pytest.fixture(scope="module")
def second_run(tmp_path_factory):
    """A second small run with another seed (different synthetic cohort, hence different numbers)."""
    from analysis_utils.runner import pipeline

    tmp = tmp_path_factory.mktemp("second_run")
    params = tmp / "small_seed2.yaml"
    params.write_text(yaml.safe_dump({"base": str(ROOT / "params" / "small.yaml"), "run_name": "small-seed2",
                                      "seed": 777, "output_root": str(tmp / "outputs"),
                                      "input_dir": str(tmp / "synthetic" / "raw")}))
    result = pipeline.run_notebooks(params, log=lambda m: None)
    assert result.ok, result.message
    return Path(result.output_dir)


@pytest.mark.slow
def test_manuscript_resolves_against_a_pipeline_run(small_run, tmp_path):
    root = project_copy(tmp_path / "project")
    prepared = ms.prepare(small_run, root)
    assert prepared.missing == [], prepared.missing
    assert ms.check_references(root) == []
    assert len(prepared.notebooks) == len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    variables = yaml.safe_load((root / ms.VARIABLES_FILE).read_text(encoding="utf-8"))
    results = json.loads((small_run / "results.json").read_text(encoding="utf-8"))
    assert variables["cohort"]["n_analysed"] == ms.fmt_int(results["cleaning"]["n_analysed"])
    hr = results["survival"]
    assert variables["survival"]["os"]["hr"] == ms.est_ci_text(hr["os_hr_matched"], hr["os_hr_matched_lower"],
                                                                hr["os_hr_matched_upper"])
    params_md = (root / ms.GENERATED_DIR / "run" / "params.md").read_text(encoding="utf-8")
    assert "pseudonym_key: <redacted>" in params_md and "synthetic-demo-key" not in params_md


# Manuscript variables fixed by the params and the synthetic design (identical in two runs that differ only in seed).
DESIGN_KEYS = {"cohort.criteria", "cohort.index_from", "cohort.index_to", "cohort.n_centers", "cohort.n_screened",
               "imputation.ps_missing", "run.data_cutoff", "run.n_input_files", "run.notebooks", "safety.window",
               "survival.os.rmst_tau", "target_trial.grace", "target_trial.main_time", "target_trial.scan_rule",
               "target_trial.tau", "target_trial.truncation_sensitivity"}


def _used_values(root: Path) -> dict[str, str]:
    variables = yaml.safe_load((root / ms.VARIABLES_FILE).read_text(encoding="utf-8"))
    keys = set()
    for name in ("index.qmd", "_supplement.qmd"):
        text = (root / "manuscript" / name).read_text(encoding="utf-8")
        keys |= {m.group(2).split()[0] for m in ms.SHORTCODE_RE.finditer(text) if m.group(1) == "var"}
    return {k: str(checks._lookup(variables, k)) for k in keys}


@pytest.mark.slow
def test_another_run_changes_the_numbers_and_nothing_typed_by_hand(small_run, second_run, tmp_path):
    roots = [project_copy(tmp_path / "a"), project_copy(tmp_path / "b")]
    for run, root in zip((small_run, second_run), roots):
        ms.prepare(run, root)
        assert ms.check_references(root) == []
    a, b = (_used_values(r) for r in roots)
    numeric = [k for k in a if re.search(r"\d", a[k]) and not k.startswith(("methods.", "run.python",
                                                                            "run.software", "run.commit"))]
    changed = [k for k in numeric if a[k] != b[k]]
    for key in ("target_trial.n_eligible", "survival.os.hr", "survival.os.median_haic", "matching.n_pairs",
                "response.mrecist.orr_haic", "safety.full.g3.haic", "run.seed"):
        assert key in changed, key
    # the design (params, the generator's configuration, the notebooks run) is the same in both runs, so these stay
    design = [k for k in numeric if k in DESIGN_KEYS]
    assert [k for k in design if a[k] != b[k]] == []
    results = [k for k in numeric if k not in DESIGN_KEYS]
    # every other number comes from the data; a few may coincide at the printed precision (a kappa of 0.72 in both,
    # a P value, an E-value bound at 1.00, a conclusion in words): at most 15 % (5 of 81 when this was written)
    assert len(changed) >= 0.85 * len(results), sorted(set(results) - set(changed))
    # the sources are the same files; only the resolved text differs, and every digit of it comes from a variable:
    # digits(resolved) = digits(source without shortcodes, all in allowed names) + digits(values substituted)
    texts = [ms.resolve_text(r) for r in roots]
    assert texts[0] != texts[1]
    source = (roots[0] / "manuscript" / "index.qmd").read_text(encoding="utf-8")
    assert ms.hand_typed_numbers(source) == []
    uses = [m.group(2).split()[0] for m in ms.SHORTCODE_RE.finditer(source) if m.group(1) == "var"]
    fixed = len(re.findall(r"\d", ms.SHORTCODE_RE.sub(lambda m: "" if m.group(1) == "var" else m.group(0), source)))
    for text, values in zip(texts, (a, b)):
        assert len(re.findall(r"\d", text)) == fixed + sum(len(re.findall(r"\d", values[k])) for k in uses)


# --------------------------------------------------------------------------------------------------- registry
def test_topic_modules_are_found_and_their_variables_built(tmp_path, monkeypatch):
    """A variables_<topic>.py module (VARIABLES_KEY, RESULTS_SECTION, variables) adds its block under VARIABLES_KEY;
    a missing results key is reported, not invented."""
    import types

    from analysis_utils.reporting.manuscript import values

    def topic_variables(r, params, missing):
        out = {}
        values.collect(out, "hr", lambda: ms.est_ci_text(r("hr"), r("hr_lower"), r("hr_upper")), missing)
        values.collect(out, "absent", lambda: r("nope"), missing)
        return out

    topic = types.SimpleNamespace(VARIABLES_KEY="target_trial", RESULTS_SECTION="tte", variables=topic_variables)
    monkeypatch.setattr(variables, "topic_modules", lambda: [topic])
    run = _write_run(tmp_path / "run", {"tte": {"hr": 0.71, "hr_lower": 0.6, "hr_upper": 0.84}})
    v, missing = ms.variables_report(run)
    assert v["target_trial"] == {"hr": "0.71 (95% CI 0.60–0.84)"}
    assert "absent: results key tte.nope not found" in missing
    # the repository's topics, each registered once, by its file name
    found = {m.__name__.rsplit(".", 1)[1]: (m.VARIABLES_KEY, m.RESULTS_SECTION) for m in values.topic_modules()}
    assert found == {"variables_imputation": ("imputation", "imputation"), "variables_outcomes": ("outcomes", "progression"),
                     "variables_simulation": ("simulation", None),
                     "variables_target_trial": ("target_trial", "target_trial")}
    source = Path(variables.__file__).read_text(encoding="utf-8")
    assert not re.search(r"variables_(imputation|outcomes|simulation|target_trial)\b", source), \
        "a topic module is registered by hand in variables.py as well"


def test_topic_blocks_reach_the_variables_without_a_hand_registration(tmp_path):
    """The repository's topic modules add their blocks: a section present gives the block, a section absent is
    reported; the simulation block needs no section."""
    run = _write_run(tmp_path / "run", {"target_trial": {"n_eligible": 812}})
    v, missing = ms.variables_report(run)
    assert v["target_trial"]["n_eligible"] == "812"
    assert "No Monte Carlo simulation output exists" in v["simulation"]["status"]
    assert "imputation" not in v and "imputation: results.json has no 'imputation' section" in missing
    assert "outcomes: results.json has no 'progression' section" in missing


def test_a_topic_module_missing_part_of_the_interface_is_an_error(monkeypatch):
    import types

    from analysis_utils.reporting.manuscript import values

    fake = types.SimpleNamespace(VARIABLES_KEY="x", variables=lambda r, p, m: {})
    monkeypatch.setattr(values.pkgutil, "iter_modules", lambda path: [types.SimpleNamespace(name="variables_x")])
    monkeypatch.setattr(values.importlib, "import_module", lambda name: types.SimpleNamespace(__name__=name, **vars(fake)))
    with pytest.raises(TypeError, match="lacks RESULTS_SECTION"):
        values.topic_modules()
    monkeypatch.setattr(values.importlib, "import_module",
                        lambda name: types.SimpleNamespace(__name__=name, SECTION="s", variables=lambda: {}))
    with pytest.raises(TypeError, match="lacks VARIABLES_KEY, RESULTS_SECTION"):
        values.topic_modules()  # no second way to register a topic: a variables_ module without the names is an error


def test_a_semicolon_after_a_cross_reference_is_reported(tmp_path):
    """Typst ends an embedded expression at ';', so '(@tbl-one; @etbl-two)' prints 'Table 1 eTable 2' in the PDF."""
    root = _mini_project(tmp_path, CLEAN.replace("see @tbl-one and @etbl-two", "see @tbl-one; @etbl-two; [@known2020; "
                                                 "@known2020]"), {"a": {"n": "1,050"}})
    (root / "manuscript" / "_generated" / "tables" / "one.md").write_text("| a |\n|---|\n| 1 |\n")
    problems = ms.check_references(root)
    assert len(problems) == 2 and "@tbl-one; the PDF (Typst) swallows a ';'" in problems[0], problems
    assert "@etbl-two;" in problems[1]  # citations in brackets keep their ';'


def test_includes_are_followed_by_the_checker_and_resolve_text(tmp_path):
    body = CLEAN + "\n{{< include _topic.qmd >}}\n"
    root = _mini_project(tmp_path, body, {"a": {"n": "1,050"}, "t": {"hr": "0.71"}})
    (root / "manuscript" / "_generated" / "tables" / "one.md").write_text("| a |\n|---|\n| 1 |\n")
    (root / "manuscript" / "_topic.qmd").write_text("The HR was {{< var t.hr >}} (@tbl-one); and 12 typed.\n")
    problems = ms.check_references(root)
    assert len(problems) == 1 and "manuscript/_topic.qmd:1: number typed by hand" in problems[0]
    text = ms.resolve_text(root, includes=True)
    assert "The HR was 0.71 (@tbl-one)" in text and "{{< include _topic.qmd >}}" not in text
    assert "{{< include _topic.qmd >}}" in ms.resolve_text(root)


def test_labelled_notebook_cells_must_have_one_output(tmp_path):
    def cell(label, n):
        return {"cell_type": "code", "id": label, "metadata": {}, "execution_count": 1,
                "source": [f"#| label: {label}\n", "x\n"],
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "x"}] * n}
    nb = {"cells": [cell("fig-a", 1), cell("tbl-b", 2), cell("fig-c", 0), cell("other-d", 3)], "metadata": {},
          "nbformat": 4, "nbformat_minor": 5}
    root = _mini_project(tmp_path, CLEAN, {"a": {"n": "1,050"}})
    (root / "manuscript" / "_generated" / "tables" / "one.md").write_text("| a |\n|---|\n| 1 |\n")
    (root / "manuscript" / "_generated" / "notebooks").mkdir()
    (root / "manuscript" / "_generated" / "notebooks" / "01_x.ipynb").write_text(json.dumps(nb))
    cfg = yaml.safe_load((root / ms.QUARTO_CONFIG).read_text())
    cfg["manuscript"]["notebooks"] = [{"notebook": "_generated/notebooks/01_x.ipynb", "title": "X"}]
    (root / ms.QUARTO_CONFIG).write_text(yaml.safe_dump(cfg))
    problems = ms.check_references(root)
    assert len(problems) == 2 and all("a fig-/tbl- labelled cell must produce exactly one" in p for p in problems)
    assert "cell tbl-b has 2 outputs" in problems[0] and "cell fig-c has 0 outputs" in problems[1]


def test_quarto_warnings_that_leave_the_article_incomplete_fail_the_render(tmp_path, monkeypatch):
    def fake_quarto(exe, project, env=None):
        (project / "_manuscript").mkdir(parents=True, exist_ok=True)
        for name in quarto.DELIVERABLES:
            (project / "_manuscript" / name).write_text("x")
        err = ("\x1b[33mWARNING (main.lua:1) Unknown var survival.os.hr_x specified in a var shortcode.\x1b[39m\n"
               "[WARNING] Could not fetch resource _generated/figures/x.png: replacing image with description\n")
        return subprocess.CompletedProcess([exe, "render"], 0, "", err)

    monkeypatch.setattr(quarto.shutil, "which", lambda name: "/opt/quarto/bin/quarto")
    monkeypatch.setattr(quarto, "_run_quarto", fake_quarto)
    outcome = ms.render(tmp_path, tmp_path / "out")
    assert not outcome.rendered and "Unknown var survival.os.hr_x" in outcome.message
    assert "Could not fetch resource" in outcome.message and not (tmp_path / "out" / "manuscript").exists()


def test_polish_sets_table_type_and_fixed_zip_times(tmp_path):
    import zipfile

    from analysis_utils.reporting.manuscript import polish

    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    cell = '<w:tc><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:tc>'
    data = (f'<w:tbl><w:tblGrid><w:gridCol w:w="1"/><w:gridCol w:w="1"/></w:tblGrid>'
            f'<w:tr><w:trPr><w:tblHeader/></w:trPr>{cell.format("a")}{cell.format("b")}</w:tr></w:tbl>')
    caption = ('<w:p><w:pPr><w:jc w:val="center"/></w:pPr><w:pPr><w:jc w:val="start"/><w:spacing w:before="200"/>'
               '<w:pStyle w:val="ImageCaption"/></w:pPr><w:r><w:t>Table 1</w:t></w:r></w:p>')
    layout = (f'<w:tbl><w:tblGrid><w:gridCol w:w="2"/></w:tblGrid><w:tr><w:tc>{caption}{data}'
              f'<w:p><w:pPr><w:jc w:val="center"/></w:pPr><w:r><w:t>note</w:t></w:r></w:p></w:tc></w:tr></w:tbl>')
    xml = f'<w:document {w}><w:body>{layout}<w:sectPr/></w:body></w:document>'.encode()
    path = tmp_path / "x.docx"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("word/document.xml", xml)
        z.writestr("other.xml", "<x/>")
    polish.polish_docx(path)
    with zipfile.ZipFile(path) as z:
        out = z.read("word/document.xml").decode()
        assert [i.date_time for i in z.infolist()] == [polish.FIXED_TIME] * 2
        assert [i.filename for i in z.infolist()] == ["word/document.xml", "other.xml"]
    assert out.count('<w:sz w:val="17"/>') == 2 + 1 and out.count("<w:cantSplit/>") == 1  # data table and note
    assert "<w:trPr><w:cantSplit/><w:tblHeader/></w:trPr>" in out  # the header row repeats; schema order kept
    # the caption: one w:pPr, the later alignment ('start' as 'left'), in schema order, kept with the table
    assert '<w:pPr><w:pStyle w:val="ImageCaption"/><w:keepNext/><w:spacing w:before="200"/><w:jc w:val="left"/>' \
           '</w:pPr>' in out
    assert '<w:pgSz w:w="11906" w:h="16838"/>' in out  # A4
    assert '<w:gridCol w:w="9026"/>' in out  # the float spans the text width of the A4 page
    first = path.read_bytes()
    polish.polish_docx(path)  # idempotent and byte-stable
    assert path.read_bytes() == first
