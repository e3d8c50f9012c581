"""Records stage: the screened records (persons plus referral duplicates) and their fake identifiers.

Referral duplicates (cal. data quality: 0.5-1 % of records, `duplicate_share`): an eligible person recorded again
at another centre with a new MRN, the same national ID, name and birth date, half with AFP/albumin re-measured;
all tables are copied (exports.py) and the record is logged as defect duplicate_patient (defects.py).

Identifiers are fake (pinyin or Chinese names, 11-digit phones starting 13/15/18, 18-character national IDs with a
valid GB 11643 check digit and sex digit, centre-style MRNs) and unique per person.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis_utils.synthetic.population import Centre

# Name parts (pinyin, hanzi) and national-ID area codes of the fake identifiers.
_SURNAMES = (("Wang", "王"), ("Li", "李"), ("Zhang", "张"), ("Liu", "刘"), ("Chen", "陈"), ("Yang", "杨"),
             ("Huang", "黄"), ("Zhao", "赵"), ("Wu", "吴"), ("Zhou", "周"), ("Xu", "徐"), ("Sun", "孙"),
             ("Ma", "马"), ("Zhu", "朱"), ("Qian", "钱"), ("Guo", "郭"), ("He", "何"), ("Lin", "林"),
             ("Luo", "罗"), ("Gao", "高"), ("Zheng", "郑"), ("Liang", "梁"), ("Xie", "谢"), ("Song", "宋"),
             ("Tang", "唐"), ("Han", "韩"), ("Feng", "冯"), ("Deng", "邓"), ("Cao", "曹"), ("Peng", "彭"))
# No surname is a suffix of another (e.g. "Hu" in "Zhu"), so a full name is never a substring of another name.
_GIVEN = (("jian", "建"), ("guo", "国"), ("ming", "明"), ("hua", "华"), ("wei", "伟"), ("qiang", "强"),
          ("jun", "军"), ("ping", "平"), ("hong", "红"), ("li", "丽"), ("xiu", "秀"), ("ying", "英"),
          ("zhi", "志"), ("yong", "勇"), ("hai", "海"), ("bo", "波"), ("tao", "涛"), ("lei", "磊"),
          ("fang", "芳"), ("min", "敏"), ("jing", "静"), ("xiang", "祥"), ("de", "德"), ("sheng", "胜"),
          ("rong", "荣"), ("qing", "庆"), ("chun", "春"), ("dong", "东"), ("xin", "新"), ("yu", "宇"),
          ("long", "龙"), ("feng", "峰"), ("kai", "凯"), ("hao", "浩"), ("bin", "斌"))
_AREA_CODES = ("110105", "310104", "440106", "330106", "420106", "510107", "320102", "370102", "430102",
               "350203", "450103", "610113", "210102", "130104", "410105")


def make_records(cfg: dict, p: pd.DataFrame, centres: list[Centre], rng: np.random.Generator) -> pd.DataFrame:
    """One record per person at its centre, plus referral duplicates of eligible persons at another centre."""
    n_dup = cfg["n_records"] - len(p)
    rec = pd.DataFrame({"person_id": p["person_id"], "centre_idx": p["centre_idx"], "duplicate_of_record": -1,
                        "afp_factor": 1.0, "albumin_shift": 0.0})
    sizes = np.array([c.n_records for c in centres])
    have = np.bincount(p["centre_idx"], minlength=len(centres))
    need = np.repeat(np.arange(len(centres)), sizes - have)
    pool = np.flatnonzero((p["exclusion_criterion"] == "none").to_numpy())
    dups = []
    for k, target in enumerate(need[:n_dup]):
        cand = pool[p["centre_idx"].to_numpy()[pool] != target] if len(centres) > 1 else pool
        src = int(rng.choice(cand))
        pool = pool[pool != src]
        slight = rng.random() < 0.5
        dups.append({"person_id": src, "centre_idx": int(target), "duplicate_of_record": src,
                     "afp_factor": float(rng.uniform(0.85, 1.15)) if slight else 1.0,
                     "albumin_shift": float(rng.choice([-1.0, 1.0])) if slight else 0.0})
    rec = pd.concat([rec, pd.DataFrame(dups)], ignore_index=True) if dups else rec
    rec["record_id"] = np.arange(len(rec))
    rec["center_id"] = [centres[i].center_id for i in rec["centre_idx"]]
    return rec


def assign_identifiers(rec: pd.DataFrame, p: pd.DataFrame, centres: list[Centre], rng: np.random.Generator) -> None:
    """Fake, unique identifiers: MRN per record; name, phone, birth date (T0 - age) and national ID per
    person (shared by duplicates). Adds columns to `rec` and `birth_date` to the persons `p`."""
    persons = np.unique(rec["person_id"])
    names, phones, ids = {}, {}, {}
    used_names: set[str] = set()
    used_phones: set[str] = set()
    for pid in persons:
        while True:
            sur = _SURNAMES[int(rng.integers(len(_SURNAMES)))]
            g1 = _GIVEN[int(rng.integers(len(_GIVEN)))]
            g2 = _GIVEN[int(rng.integers(len(_GIVEN)))]
            pinyin = f"{sur[0]} {(g1[0] + g2[0]).capitalize()}"
            hanzi = sur[1] + g1[1] + g2[1]
            if pinyin not in used_names and hanzi not in used_names:
                used_names.update((pinyin, hanzi))
                names[pid] = (pinyin, hanzi)
                break
        while True:
            ph = "1" + str(rng.choice(["3", "5", "8"])) + "".join(map(str, rng.integers(0, 10, 9)))
            if ph not in used_phones:
                used_phones.add(ph)
                phones[pid] = ph
                break
        ids[pid] = int(rng.integers(len(_AREA_CODES))), int(rng.integers(0, 1000))
    rec["patient_name_pinyin"] = [names[pid][0] for pid in rec["person_id"]]
    rec["patient_name_hanzi"] = [names[pid][1] for pid in rec["person_id"]]
    rec["phone"] = [phones[pid] for pid in rec["person_id"]]
    rec["_id_seed"] = [ids[pid] for pid in rec["person_id"]]
    used_mrn: set[str] = set()
    mrns = []
    for cidx in rec["centre_idx"]:
        c = centres[cidx]
        while True:
            num = int(rng.integers(10_000, 9_999_999))
            m = (f"{c.mrn_prefix}{num:07d}", f"{c.mrn_prefix}-{num % 1_000_000:06d}",
                 f"{c.mrn_prefix}{2020 + num % 5}{num % 100000:05d}")[c.mrn_style]
            if m not in used_mrn:
                used_mrn.add(m)
                mrns.append(m)
                break
    rec["mrn"] = mrns
    p["birth_date"] = p["index_date"].to_numpy() - np.round(p["age"].to_numpy() * 365.25).astype("timedelta64[D]")
    nid = _national_ids(rec, p)
    rec["national_id"] = [nid[pid] for pid in rec["person_id"]]


def _national_ids(rec: pd.DataFrame, p: pd.DataFrame) -> dict[int, str]:
    """18-character national ID per person: area code, birth date, sequence (odd = male), GB 11643 check."""
    out: dict[int, str] = {}
    used: set[str] = set()
    for pid, (area, seq) in zip(rec["person_id"], rec["_id_seed"]):
        if pid in out:
            continue
        birth = pd.Timestamp(p.at[pid, "birth_date"]).strftime("%Y%m%d")
        male = p.at[pid, "sex"] == "male"
        s = seq
        while True:
            s3 = s % 1000
            if (s3 % 2 == 1) != male:
                s3 = (s3 + 1) % 1000
            body = f"{_AREA_CODES[area]}{birth}{s3:03d}"
            nid = body + national_id_check_digit(body)
            if nid not in used:
                used.add(nid)
                out[pid] = nid
                break
            s += 2
    return out


def national_id_check_digit(first17: str) -> str:
    """GB 11643-1999 check character: weights 2^(17-i) mod 11, sum mod 11 mapped to '10X98765432'."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"national ID body must be 17 digits, got {first17!r}")
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    total = sum(int(d) * w for d, w in zip(first17, weights))
    return "10X98765432"[total % 11]
