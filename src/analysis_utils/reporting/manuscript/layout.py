"""Where the Quarto manuscript project keeps its files, relative to the project root."""

VARIABLES_FILE = "_variables.yml"
QUARTO_CONFIG = "_quarto.yml"
ARTICLE_DIR = "manuscript"
GENERATED_DIR = "manuscript/_generated"
QUARTO_OUTPUT_DIR = "_manuscript"  # the manuscript project type's default output-dir
