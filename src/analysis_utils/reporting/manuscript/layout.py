"""Where the Quarto manuscript project keeps its files, relative to the compendium's root.

The Quarto project is the ``manuscript/`` folder (its ``_quarto.yml``, the article ``index.qmd`` at its top): Quarto
1.7's manuscript type resolves notebooks, JATS sub-articles and output paths against the article's folder in some
places and the project folder in others, so the two must be the same folder.
"""

QUARTO_PROJECT = "manuscript"                          # the Quarto project folder (``quarto render manuscript``)
QUARTO_CONFIG = f"{QUARTO_PROJECT}/_quarto.yml"
VARIABLES_FILE = f"{QUARTO_PROJECT}/_variables.yml"    # read by {{< var >}}: it sits beside _quarto.yml
ARTICLE_DIR = QUARTO_PROJECT
GENERATED_DIR = f"{QUARTO_PROJECT}/_generated"         # the run's notebooks, figures, tables (git-ignored)
QUARTO_OUTPUT_DIR = f"{QUARTO_PROJECT}/_manuscript"    # the manuscript project type's default output-dir
