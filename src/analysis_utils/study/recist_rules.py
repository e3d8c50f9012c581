"""The rules of RECIST 1.1 and mRECIST (HCC) as named, vectorised functions: numpy arrays in, numpy arrays out.

Rules: docs/methods/recist-mrecist.md, after Eisenhauer et al. 2009, "New response evaluation criteria in solid
tumours: revised RECIST guideline (version 1.1)", Eur J Cancer 45:228-247, doi:10.1016/j.ejca.2008.10.026, and
Lencioni & Llovet 2010, "Modified RECIST (mRECIST) assessment for hepatocellular carcinoma", Semin Liver Dis
30:52-60, doi:10.1055/s-0030-1247132. The engine that applies them to a lesion table (baseline, time points, best
overall response) is :mod:`analysis_utils.study.recist`.

Section marks in the docstrings name the rule:
RECIST 1.1: §1.1 lesion categories at baseline (measurable, non-measurable, pathological nodes); §1.2 target and
non-target selection; §1.3 target-lesion response; §1.4 non-target response and new lesions; §1.5 overall response
per time point; §1.6 best overall response (SD minimum duration, confirmation).
mRECIST: §2.1 target selection and measurement of viable (arterially enhancing) tumour; §2.2 target-lesion response;
§2.3 non-target response; §2.4 HCC-specific rules (porta-hepatis nodes, effusions, new liver lesions).

Documented choices (where the criteria leave room)
-------------------------------------------------
* Target selection: largest first, at most 2 per organ and 5 in total; ties in size are broken by ``lesion_id``
  (ascending, lexicographic). ``organ`` is the organ unit, so all lymph nodes form one organ and both lungs one
  organ. Bone: ``ld_mm`` is read as the soft-tissue component.
* mRECIST nodes: there is no porta-hepatis flag, so every ``lymph_node`` is treated as a porta-hepatis node
  (malignant only with SA >= 20 mm, §2.4), at baseline and as a new lesion. Smaller nodes are not lesions.
* mRECIST intrahepatic target: arterial_enhancement True, ``ld_mm`` >= 10 mm (RECIST-measurable, §2.1) and a
  measured viable diameter > 0; it is then measured by ``viable_ld_mm``. Extrahepatic lesions use RECIST.
  A viable diameter >= 10 mm shows LD >= 10 mm when ``ld_mm`` is not recorded (the viable part lies inside the
  lesion, so viable <= LD).
* What the recorded values imply (mRECIST, liver; ``recover_mrecist_measurements``): a viable diameter > 0 means
  arterial enhancement when that is not recorded (viable tumour is the enhancing tumour); no arterial enhancement,
  or LD 0, means a viable diameter 0 when that is not recorded.
* Effusions: never targets. Under mRECIST an effusion (baseline or new) counts only when
  ``cytology_confirmed`` is True (§2.4). Under RECIST a baseline effusion is a non-target lesion and a new
  effusion annotated "new" is a new lesion (PD, §1.4 "any unequivocal new lesion"); RECIST 1.1's advice to
  seek cytology before calling PD on an effusion alone is not modelled (no reader judgement in the data).
* New lesions: RECIST: every lesion_id annotated "new" at a follow-up visit is PD at its first appearance,
  measured or not. mRECIST: a new liver lesion counts if at some scan it is >= 10 mm (max of ld/viable) with
  arterial enhancement, or if it grows by >= 10 mm over its first measured size (atypical nodule, §2.4);
  PD is dated to its first appearance. New nodes need SA >= 20 mm, new effusions cytology; others as RECIST.
* Target response order: CR (complete data), then PD (possibly on the measured targets only), then NE
  (a target not measured), then PR, else SD. CR before PD means a node that stays < 10 mm is not PD.
  PD needs a strictly positive increase, so a nadir of 0 followed by any regrowth is PD under mRECIST and
  needs >= 5 mm under RECIST. Comparisons use a 1e-9 mm tolerance against floating-point error.
* Non-target lesion resolved: status "absent"; a node "present" with SA < 10 mm; under mRECIST a liver
  non-target "present" without arterial enhancement (False) or with viable diameter 0 (§2.3).
  "not_assessed" / missing row = not assessed. An empty status with measurements is read from them
  (``measured_lesion_state``): 0 mm (node: SA < 10 mm; mRECIST liver: no viable tissue) = resolved, a measured
  size = present; an empty status without any measurement = not assessed. No non-target lesions -> non-target response "none",
  which the overall table reads as CR.
* SD minimum and confirmation (§1.6): SD (and "non-CR/non-PD") counts only if assessed >= ``min_sd_days`` after
  index, otherwise it becomes PD if the next assessment is PD, else NE; CR followed by PR is read as PR.
"""

from __future__ import annotations

from typing import Final

import numpy as np

__all__ = [
    "CRITERIA", "ORGANS", "LESION_TYPES", "NONTARGET_STATUSES", "MEASURE_COLUMNS", "RESPONSES",
    "NE", "PD", "SD", "PR", "CR", "NON_CR_NON_PD", "NONE", "RESOLVED", "PERSISTS", "PROGRESSED", "UNASSESSED",
    "check_criterion", "lesion_measure", "is_baseline_lesion", "is_target_candidate", "apply_target_limits",
    "recover_mrecist_measurements", "measured_lesion_state",
    "target_response", "nontarget_lesion_state", "nontarget_response", "new_lesion_qualifies", "overall_response",
    "apply_sd_minimum", "confirm_responses",
]

CRITERIA: Final = ("recist", "mrecist")
ORGANS: Final = (
    "liver", "lung", "lymph_node", "bone", "adrenal", "peritoneum",
    "portal_vein", "ascites", "pleural_effusion", "other",
)
LESION_TYPES: Final = ("target", "non_target", "new")
NONTARGET_STATUSES: Final = ("present", "absent", "unequivocal_progression", "not_assessed")
#: The three diameters, in the order of the codes LD, VIABLE, SA.
MEASURE_COLUMNS: Final = ("ld_mm", "viable_ld_mm", "short_axis_mm")
#: Response labels; the integer code of a label is its position (NE=0 ... none=6).
RESPONSES: Final = ("NE", "PD", "SD", "PR", "CR", "non-CR/non-PD", "none")
NE, PD, SD, PR, CR, NON_CR_NON_PD, NONE = range(7)
#: BOR order CR > PR > SD > PD > NE (§1.6); "non-CR/non-PD" ranks with SD.
BOR_RANK: Final = np.array([0, 1, 2, 3, 4, 2, 0])
RANK_TO_CODE: Final = np.array([NE, PD, SD, PR, CR])

# integer codes of organs, diameters and lesion types (positions in the tuples above), shared with the engine
LIVER: Final = ORGANS.index("liver")
NODE: Final = ORGANS.index("lymph_node")
EFFUSION: Final = np.isin(np.arange(len(ORGANS)), [ORGANS.index("ascites"), ORGANS.index("pleural_effusion")])
NEVER_TARGET: Final = EFFUSION | (np.arange(len(ORGANS)) == ORGANS.index("portal_vein"))
LD, VIABLE, SA = 0, 1, 2
NEW: Final = LESION_TYPES.index("new")
_PRESENT, _ABSENT, _UNEQUIVOCAL, _NOT_ASSESSED = 0, 1, 2, 3
# non-target lesion states (nontarget_lesion_state)
RESOLVED, PERSISTS, PROGRESSED, UNASSESSED = 0, 1, 2, 3
_EPS: Final = 1e-9


def check_criterion(criterion: str) -> str:
    """``criterion`` itself if it is "recist" or "mrecist", else ValueError."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    return criterion


def lesion_measure(organ: np.ndarray, criterion: str) -> np.ndarray:
    """Which diameter a lesion contributes to the sum: 0 ld_mm, 1 viable_ld_mm, 2 short_axis_mm.

    RECIST 1.1 §1.2: nodal targets by short axis, non-nodal by longest diameter. mRECIST §2.1: intrahepatic
    lesions by the viable (arterially enhancing) longest diameter; extrahepatic lesions as RECIST.
    """
    kind = np.where(organ == NODE, SA, LD)
    if check_criterion(criterion) == "mrecist":
        kind = np.where(organ == LIVER, VIABLE, kind)
    return kind


def is_baseline_lesion(organ: np.ndarray, short_axis_mm: np.ndarray, cytology_true: np.ndarray,
                       criterion: str) -> np.ndarray:
    """True for baseline findings that are tumour at all (target or non-target).

    RECIST §1.1: a node with SA < 10 mm is normal, not a lesion. mRECIST §2.4: nodes are malignant only with
    SA >= 20 mm (every lymph_node treated as porta hepatis), and ascites / pleural effusion only when
    cytologically confirmed. A node without a recorded SA is kept (it cannot be called normal).
    """
    node_min = 20.0 if check_criterion(criterion) == "mrecist" else 10.0
    keep = ~((organ == NODE) & (short_axis_mm < node_min))
    if criterion == "mrecist":
        keep &= ~(EFFUSION[organ] & ~cytology_true)
    return keep


def is_target_candidate(organ: np.ndarray, ld_mm: np.ndarray, viable_ld_mm: np.ndarray,
                        short_axis_mm: np.ndarray, arterial_true: np.ndarray, criterion: str) -> np.ndarray:
    """Measurable at baseline, hence eligible as a target lesion.

    RECIST §1.1: non-nodal LD >= 10 mm; node SA >= 15 mm; portal vein, ascites and pleural effusion are never
    measurable (§1.1, §2.4). mRECIST §2.1/§2.4: intrahepatic lesions need arterial enhancement, LD >= 10 mm
    and a measured viable diameter > 0; nodes SA >= 20 mm; other extrahepatic lesions as RECIST. A viable
    diameter >= 10 mm shows LD >= 10 mm when ``ld_mm`` is not recorded (viable <= LD).
    """
    node = organ == NODE
    mrecist = check_criterion(criterion) == "mrecist"
    ok = np.where(node, short_axis_mm >= (20.0 if mrecist else 15.0), ld_mm >= 10.0)
    if mrecist:
        ld_ok = (ld_mm >= 10.0) | (np.isnan(ld_mm) & (viable_ld_mm >= 10.0))
        liver_ok = arterial_true & ld_ok & (viable_ld_mm > 0.0)
        ok = np.where(organ == LIVER, liver_ok, ok)
    return ok & ~NEVER_TARGET[organ]


def _cumcount(keys: np.ndarray) -> np.ndarray:
    """Position of each element among earlier elements with the same key (pandas cumcount)."""
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    n = len(k)
    starts = np.ones(n, dtype=bool)
    starts[1:] = k[1:] != k[:-1]
    start_pos = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    out = np.empty(n, dtype=np.int64)
    out[order] = np.arange(n) - start_pos
    return out


def apply_target_limits(patient: np.ndarray, organ: np.ndarray, size_mm: np.ndarray, tiebreak: np.ndarray,
                        eligible: np.ndarray, max_total: int = 5, max_per_organ: int = 2) -> np.ndarray:
    """Choose targets among eligible lesions: largest first, <= 2 per organ, <= 5 in total (RECIST §1.2).

    Greedy in order of decreasing size per patient, ties by ``tiebreak`` ascending (the lesion_id rank);
    equivalent to keeping the 2 largest per organ and then the 5 largest of those.
    """
    idx = np.flatnonzero(eligible)
    order = idx[np.lexsort((tiebreak[idx], -size_mm[idx], patient[idx]))]
    organ_rank = _cumcount(patient[order].astype(np.int64) * len(ORGANS) + organ[order])
    kept = order[organ_rank < max_per_organ]
    chosen = kept[_cumcount(patient[kept].astype(np.int64)) < max_total]
    out = np.zeros(len(patient), dtype=bool)
    out[chosen] = True
    return out


def recover_mrecist_measurements(organ: np.ndarray, ld_mm: np.ndarray, viable_ld_mm: np.ndarray,
                                 arterial_true: np.ndarray, arterial_false: np.ndarray
                                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the recorded values of a liver lesion imply for mRECIST (§2.1, §2.3) where a value is not recorded.

    mRECIST measures the viable tumour, defined as the part that takes up contrast in the arterial phase. Hence,
    for liver rows only: a viable diameter > 0 with arterial enhancement not recorded means enhancement
    (``enhancing``); a viable diameter not recorded with no arterial enhancement (False), or with an LD of 0 mm
    (the viable part lies inside the lesion), means a viable diameter of 0 (``no_viable``). Nothing else is
    inferred: an LD > 0 with enhancement says nothing about the size of the viable part.
    Returns (viable_ld_mm, arterial_true, enhancing, no_viable): the completed arrays and the masks of the rows
    completed by each rule (for the data-quality log).
    """
    liver = organ == LIVER
    enhancing = liver & ~arterial_true & ~arterial_false & (viable_ld_mm > 0.0)
    no_viable = liver & np.isnan(viable_ld_mm) & (arterial_false | (ld_mm == 0.0))
    return np.where(no_viable, 0.0, viable_ld_mm), arterial_true | enhancing, enhancing, no_viable


def measured_lesion_state(organ: np.ndarray, ld_mm: np.ndarray, short_axis_mm: np.ndarray,
                          viable_ld_mm: np.ndarray, arterial_true: np.ndarray, arterial_false: np.ndarray,
                          criterion: str) -> np.ndarray:
    """State of a lesion read from its measurements alone (no status recorded): RESOLVED, PERSISTS or UNASSESSED.

    RECIST §1.4 / mRECIST §2.3 applied to the diameters: a node is resolved with SA < 10 mm and present with
    SA >= 10 mm; under mRECIST a liver lesion is resolved with no viable tissue (viable diameter 0, no arterial
    enhancement, or LD 0) and present with a viable diameter > 0 or an enhancing LD > 0; any other lesion is
    resolved at LD 0 and present with LD > 0 (or a viable diameter > 0, which lies inside it). Without the
    measurement a rule needs, the lesion is not assessed.
    """
    node = organ == NODE
    sa_state = np.select([short_axis_mm < 10.0, short_axis_mm >= 10.0], [RESOLVED, PERSISTS], UNASSESSED)
    ld_state = np.select([ld_mm == 0.0, (ld_mm > 0.0) | (viable_ld_mm > 0.0)], [RESOLVED, PERSISTS], UNASSESSED)
    state = np.where(node, sa_state, ld_state)
    if check_criterion(criterion) == "mrecist":
        gone = (viable_ld_mm == 0.0) | arterial_false | (ld_mm == 0.0)
        there = (viable_ld_mm > 0.0) | (arterial_true & (ld_mm > 0.0))
        liver_state = np.select([gone, there], [RESOLVED, PERSISTS], UNASSESSED)
        state = np.where(organ == LIVER, liver_state, state)
    return state


def target_response(sum_mm: np.ndarray, n_missing: np.ndarray, baseline_sum: np.ndarray, nadir: np.ndarray,
                    all_cr: np.ndarray, criterion: str) -> np.ndarray:
    """Target-lesion response per time point (RECIST §1.3; mRECIST §2.2). Returns response codes.

    CR: all targets measured, non-nodal (mRECIST: viable) diameters 0 and nodal SA < 10 mm (``all_cr``).
    PD: sum of the measured targets >= 20% above the nadir, with an increase > 0 and, for RECIST only,
    >= 5 mm; this holds even when some targets are not measured. NE: a target not measured and no PD.
    PR: sum <= 70% of the baseline sum. SD otherwise.
    """
    increase = sum_mm - nadir
    progressed = (increase >= 0.2 * nadir - _EPS) & (increase > _EPS)
    if check_criterion(criterion) == "recist":
        progressed &= increase >= 5.0 - _EPS
    complete = n_missing == 0
    partial = (sum_mm - baseline_sum) <= -0.3 * baseline_sum + _EPS
    return np.select([complete & all_cr, progressed, ~complete, partial], [CR, PD, NE, PR], SD)


def nontarget_lesion_state(found: np.ndarray, status: np.ndarray, organ: np.ndarray, short_axis_mm: np.ndarray,
                           viable_ld_mm: np.ndarray, arterial_false: np.ndarray, criterion: str,
                           ld_mm: np.ndarray | None = None, arterial_true: np.ndarray | None = None) -> np.ndarray:
    """State of one non-target lesion at one visit: RESOLVED, PERSISTS, PROGRESSED or UNASSESSED.

    RECIST §1.4: "absent", or a node "present" with SA < 10 mm, is resolved; "unequivocal_progression" is
    progression; "not_assessed" or a missing row is not assessed. mRECIST §2.3: a liver non-target also
    resolves when its arterial enhancement is gone (False) or its viable diameter is 0. A row without a status
    (NA, coded < 0) is read from its measurements (``measured_lesion_state``; needs ``ld_mm`` and
    ``arterial_true``, otherwise it is not assessed): a lesion with measurements is assessable from them.
    """
    st = np.where(found, status, _NOT_ASSESSED)
    present = st == _PRESENT
    resolved = (st == _ABSENT) | (present & (organ == NODE) & (short_axis_mm < 10.0))
    if check_criterion(criterion) == "mrecist":
        resolved |= present & (organ == LIVER) & (arterial_false | (viable_ld_mm == 0.0))
    state = np.select([st == _UNEQUIVOCAL, resolved, present], [PROGRESSED, RESOLVED, PERSISTS], UNASSESSED)
    if ld_mm is not None and arterial_true is not None:
        empty = found & (np.asarray(status) < 0)
        measured = measured_lesion_state(organ, ld_mm, short_axis_mm, viable_ld_mm, arterial_true, arterial_false,
                                         criterion)
        state = np.where(empty, measured, state)
    return state


def nontarget_response(n_lesions: np.ndarray, n_progressed: np.ndarray, n_unassessed: np.ndarray,
                       n_resolved: np.ndarray) -> np.ndarray:
    """Non-target response per time point (RECIST §1.4; mRECIST §2.3, "IR/SD" reported as non-CR/non-PD).

    PD if any non-target unequivocally progressed; NE if any not assessed; CR if all resolved;
    non-CR/non-PD otherwise; "none" when the patient has no non-target lesion.
    """
    return np.select(
        [n_lesions == 0, n_progressed > 0, n_unassessed > 0, n_resolved == n_lesions],
        [NONE, PD, NE, CR], NON_CR_NON_PD,
    )


def new_lesion_qualifies(organ: np.ndarray, first_size: np.ndarray, max_size: np.ndarray,
                         any_typical: np.ndarray, max_short_axis: np.ndarray, any_cytology: np.ndarray,
                         criterion: str) -> np.ndarray:
    """Whether a new lesion (aggregated over its scans from first appearance on) means PD.

    RECIST §1.4: every new lesion. mRECIST §2.4: a liver lesion if it is >= 10 mm with typical arterial
    enhancement at some scan (``any_typical``) or grows by >= 10 mm over its first measured size (atypical
    nodule); a node if SA >= 20 mm; an effusion if cytologically confirmed; other sites as RECIST.
    """
    if check_criterion(criterion) == "recist":
        return np.ones(len(organ), dtype=bool)
    liver = any_typical | (max_size - first_size >= 10.0 - _EPS)
    return np.select([organ == LIVER, organ == NODE, EFFUSION[organ]],
                     [liver, max_short_axis >= 20.0, any_cytology], True).astype(bool)


def overall_response(target: np.ndarray, nontarget: np.ndarray, new_lesion: np.ndarray) -> np.ndarray:
    """Overall time-point response (RECIST §1.5; mRECIST §2.4 uses the same table).

    With target disease: PD if target PD, non-target PD or a new lesion; CR if target CR and non-target CR
    (or none); PR if target CR with non-target non-CR/non-PD or NE, or target PR; SD if target SD; NE if
    target NE. Without targets (``target == NONE``): non-target CR -> CR, non-CR/non-PD -> non-CR/non-PD,
    NE or no lesion at all -> NE.
    """
    no_target = target == NONE
    return np.select(
        [
            (target == PD) | (nontarget == PD) | new_lesion,
            no_target & (nontarget == CR),
            no_target & (nontarget == NON_CR_NON_PD),
            no_target,
            (target == CR) & ((nontarget == CR) | (nontarget == NONE)),
            (target == CR) | (target == PR),
            target == SD,
        ],
        [PD, CR, NON_CR_NON_PD, NE, CR, PR, SD],
        NE,
    )


def apply_sd_minimum(response: np.ndarray, sd_ok: np.ndarray, next_response: np.ndarray) -> np.ndarray:
    """SD minimum duration (RECIST §1.6): SD (or non-CR/non-PD) assessed < ``min_sd_days`` after index
    does not count as SD; it becomes PD if the next assessment is PD, else NE."""
    stable = (response == SD) | (response == NON_CR_NON_PD)
    early = np.where(next_response == PD, PD, NE)
    return np.where(stable & ~sd_ok, early, response)


def confirm_responses(response: np.ndarray, subsequent: np.ndarray, sd_ok: np.ndarray) -> np.ndarray:
    """Confirmation table of RECIST §1.6 for CR/PR time points; other responses pass through.

    ``subsequent``: response of the confirming assessment (>= confirm_min_days later), NE if none.
    CR->CR: CR; CR->PR, PR->CR, PR->PR: PR; PR->SD: SD; CR->SD/PD and PR->PD: SD if the SD minimum is met
    else PD; CR->NE and PR->NE: SD if the SD minimum is met else NE.
    """
    cr, pr = response == CR, response == PR
    sub_resp = (subsequent == CR) | (subsequent == PR)
    sub_sd = (subsequent == SD) | (subsequent == NON_CR_NON_PD)
    return np.select(
        [~(cr | pr), cr & (subsequent == CR), sub_resp, pr & sub_sd, sd_ok, subsequent == NE],
        [response, CR, PR, SD, SD, NE],
        PD,
    )
