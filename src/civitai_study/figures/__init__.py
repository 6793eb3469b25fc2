"""Figures of the study: one function per figure, one shared style (``style``).

Each function takes the tidy tables notebooks 02–04 write (``tables`` computes them from a
snapshot when missing), draws one figure whose title states its finding, and keeps the data it
plots on the figure (``style.plotted_data``) so tests check numbers, not pixels:

- ``volume.uploads_by_nsfw_level`` (paper Fig. 3, counts and shares), ``volume.nsfw_share_trend``
- ``models.models_by_type``, ``models.models_by_base_model``, ``models.real_person_models``
- ``tags.top_tags`` (paper Fig. 5), ``tags.overrepresented_tags``, ``tags.promotional_tags``
  (paper Fig. 6)
- ``coded.categories_over_time``, ``coded.category_cooccurrence`` (notebooks 04 and 05),
  ``coded.shares_by_level``, ``coded.within_level``, ``coded.reliability`` (notebook 04)
- ``trends.fitted_vs_observed`` (notebook 03: observed shares against its fitted models)
- ``wordclouds.category_wordclouds`` (per coded category, redacted by default)
- ``creators.creator_lorenz``
- ``composition.nsfw_decomposition`` (the NSFW rise split into within-group and mix change)
- ``blur.blurhash_grid`` (a stand-in for paper Fig. 1 from BlurHash codes, never the images)

``index.FigureIndex`` saves them (``style.save_figure``) and writes ``figures/README.md``;
notebooks 03 and 04 register theirs in ``figure_registry.csv`` so the index carries their
findings too.
"""
