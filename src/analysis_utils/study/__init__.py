"""The study's data and derivations: what the centres' exports mean and how the analysis variables follow from them.

Data: :mod:`.project` (project root, params files, output folders), :mod:`.contract` (the data dictionary in
``data/data_dictionary.yaml``, reading and harmonising a centre's export), :mod:`.quality` (the located
data-quality log), :mod:`.reading` (all centres, stacked), :mod:`.identifiers` (study IDs, duplicates, identifier
removal).
Derivations: :mod:`.config` (the cleaning parameters), :mod:`.treatment` (time zero, drug classes, HAIC timing,
arm), :mod:`.baseline` (baseline scan), :mod:`.scores` (Child-Pugh, ALBI, BCLC, Vp/Cheng), :mod:`.endpoints` (OS,
best overall response, PFS), :mod:`.eligibility` (criteria and STROBE flow), :mod:`.cleaning` (the whole cleaning
step), :mod:`.recist_rules` and :mod:`.recist` (RECIST 1.1 and mRECIST), :mod:`.ctcae` (CTCAE 5.0 terms and lab
grading, ``data/ctcae_terms.yaml``).
Rules: docs/methods/ (recist-mrecist.md, ctcae.md, liver-scores-and-staging.md, eligibility-and-time-zero.md) and
docs/data-dictionary.md.
"""
