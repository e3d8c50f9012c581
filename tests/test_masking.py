"""Identifiers typed into ordinary columns are masked before anything is parsed, logged or written."""
import pandas as pd

from analysis_utils.study.cleaning import CleaningConfig, clean
from analysis_utils.study.masking import IdentifierMasker, build_masker, mask_frame, national_id_valid
from analysis_utils.study.quality import QualityLog
from conftest import patient_tables

# GB 11643-1999 example: 11010519491231002 -> check character X (weights 2^(17-i) mod 11, sum 167, 167 mod 11 = 2)
VALID_ID = "11010519491231002X"


def test_national_id_check_character_and_birth_date():
    assert national_id_valid(VALID_ID) and national_id_valid(VALID_ID.lower())
    assert not national_id_valid("110105194912310021")      # wrong check character
    assert not national_id_valid("110105194913310028")      # month 13
    assert not national_id_valid("12345")


def test_patterns_names_and_codes():
    m = IdentifierMasker(names=["张伟", "Li Na Wang"], long_tokens=["13800000001"], codes=["PLC-008102"])
    text, kinds = m.scan(f"腹泻 张伟 ID {VALID_ID} tel +86 139-1234-5678, see PLC-008102")
    assert "张伟" not in text and VALID_ID not in text and "1234-5678" not in text and "PLC-008102" not in text
    assert set(kinds) == {"name", "national ID", "mobile number", "medical record number"}
    # Latin names only at word boundaries; a valid ID that fails the check is left alone
    assert m.scan("Li Na Wangs")[1] == () and m.scan("call li na wang.")[1] == ("name",)
    assert m.scan("110105194912310021")[1] == ()
    # numbers and dates are not searched for names and MRNs, only for long identifiers
    assert m.scan("PLC-008102", text_column=False)[1] == () and m.scan("13800000001", text_column=False)[1]


def test_distinct_identifiers_get_distinct_masks():
    m = IdentifierMasker(names=["张伟", "王芳"])
    a, b, a2 = m.mask("张伟"), m.mask("王芳"), m.mask("张伟")
    assert a != b and a == a2 and a.startswith("<masked:")


def test_mask_frame_logs_location_never_the_value():
    frame = pd.DataFrame({"source_row": [1, 2, 3], "mrn": ["A1", "A1", "A2"],
                          "ae_term": ["fatigue", "rash 13912345678", "none"], "grade": ["1", "2", "1"],
                          "attribution": ["related", "related", "无关"]})
    log = QualityLog()
    out = mask_frame(frame, "adverse_events", IdentifierMasker(names=["无关"]), log, "C01", "C01/adverse_events.csv")
    assert out["ae_term"].tolist()[0] == "fatigue" and "13912345678" not in out["ae_term"].iloc[1]
    assert out["attribution"].tolist() == ["related", "related", "无关"]  # an allowed label is never touched
    dq = log.to_frame()
    assert dq[["row", "column"]].values.tolist() == [[2, "ae_term"]] and dq["value"].iloc[0] == ""


def test_log_values_pass_through_the_masker():
    log = QualityLog()
    log.add(rule="r", action="a", value="张伟 13912345678")
    log.set_masker(IdentifierMasker(names=["张伟"]).mask)
    log.add(rule="r", action="a", value="see 张伟")
    assert "张伟" not in log.to_frame().to_csv() and "13912345678" not in log.to_frame().to_csv()


def test_identifiers_typed_anywhere_reach_no_output(make_export):
    a = patient_tables("A1", n=1)
    b = patient_tables("A2", n=2)
    name, phone = b["patients"][0]["patient_name"], b["patients"][0]["phone"]
    a["adverse_events"][0]["ae_term"] = f"fatigue, {name} {phone}"
    a["patients"][0]["histology_subtype"] = VALID_ID
    a["tumour_assessments"][1]["lesion_id"] = name
    a["labs"][0]["value"] = phone
    cleaned = clean(make_export({"C01": [a, b]}), CleaningConfig(data_cutoff=pd.Timestamp("2025-09-30"),
                                                                 pseudonym_key="k"))
    text = (cleaned.screened.to_csv() + "".join(t.to_csv() for t in cleaned.tables.values())
            + cleaned.quality.to_frame().to_csv() + cleaned.quality.summary().to_csv())
    for value in (name, phone, VALID_ID):
        assert value not in text
    dq = cleaned.quality.to_frame()
    masked = dq[dq["rule"].str.contains("typed into a non-identifier column")]
    assert set(masked["column"]) == {"ae_term", "histology_subtype", "lesion_id", "value"}
    assert (masked["value"] == "").all()


def test_build_masker_collects_the_export_identifiers():
    p = pd.DataFrame({"patient_name": ["张伟", ""], "phone": ["13800000001", ""], "national_id": ["110101197001019999", ""],
                      "mrn": ["PLC-000001", "PLC-000002"]})
    m = build_masker([p], {"PLC-000003"})
    assert m.scan("PLC-000003 and PLC-000001")[0].count("<masked:") == 2
    assert not national_id_valid("110101197001019999")  # caught as a value of the export, not by the pattern
    assert m.scan("110101197001019999", text_column=False)[1] == ("phone or ID of the export",)
