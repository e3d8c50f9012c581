"""What the reader sees: formatted tables, figures, the run's results.json and the Quarto manuscript.

:mod:`.figures` (common look, arm colours, saving), :mod:`.tables` (number formatting, CSV/Markdown writers,
Table 1), one module per notebook topic with its tables and figures (:mod:`.cleaning`, :mod:`.matching`,
:mod:`.survival`, :mod:`.response`, :mod:`.safety`), :mod:`.results` (results.json) and :mod:`.manuscript`
(``_variables.yml``, generated includes, checks, rendering with Quarto).
"""
