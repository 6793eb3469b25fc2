"""Research compendium on CivitAI model personalisation (Wagner & Cetinic 2025, reproduced).

The package is organised along the pipeline: collect → snapshot → analyse → figures.
Notebooks under ``notebooks/`` call these modules; every number they show comes from here.
"""

__version__ = "0.1.0"
