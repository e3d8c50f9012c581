"""General statistics, validated against R and independent of this study.

Functions take arrays or data frames plus column names and return numbers or frames; nothing here knows about
arms, study columns or clinical rules. Each module's docstring names the R function whose definition it reproduces;
the conventions and their sources are in docs/methods/ (survival.md, matching-and-weighting.md,
binary-outcomes.md) and the places where R and the Python libraries disagree in docs/methods/README.md.

Survival: :mod:`.kaplan_meier` (survfit, quantile.survfit, number at risk, reverse-KM follow-up),
:mod:`.logrank` (survdiff), :mod:`.cox` (coxph with Efron/Breslow ties, robust and cluster variance),
:mod:`.cox_zph` (cox.zph), :mod:`.rmst` (survRM2::rmst2), :mod:`.evalue` (EValue::evalues.HR),
:mod:`.landmark`, :mod:`.survival_input` (shared input checks).
Propensity scores: :mod:`.propensity` (glm), :mod:`.matching` (MatchIt nearest), :mod:`.weights` (WeightIt),
:mod:`.balance` (MatchIt/cobalt balance statistics).
Binary outcomes: :mod:`.binomial` (exact and score CIs, risk difference, odds ratio, 2 x 2 tests, kappa),
:mod:`.logistic` (logistic, weighted and conditional logistic regression with sandwich variance).
Sustained strategies with a grace period: :mod:`.ccw` (clone-censor-weight: person-interval expansion, pooled
logistic deviation models, IPC weights, weighted Kaplan-Meier on (start, stop] data, contrasts, bootstrap; as R's
TrialEmulation / survival::survfit with weights), :mod:`.irls` (glm.fit for the binomial logit, also blockwise for
person-interval designs), :mod:`.cox_counting` (coxph on (start, stop] data with weights).
Missing data: :mod:`.mice` (chained equations on statsmodels' MICEData: pmm, logreg, polyreg, delta shifts),
:mod:`.mi` (mice::pool Rubin's rules, Barnard-Rubin df, the "within" runner). Meta-analysis: :mod:`.meta`
(metafor::rma random effects, I^2).
"""
