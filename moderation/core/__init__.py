"""The spam filter itself, plain Python with no web framework and no database: text normalisation
(`text`), features and signals (`features`), the calibrated model and its clues (`classifier`), a site's
own correction (`site_model`), grouped folds, thresholds and metrics (`folds`, `thresholds`, `metrics`),
training and honest evaluation (`training`, `evaluation`), the corpora it learns from (`corpora`,
`datasets`, `data/`; site exports in `exports`, the file records both read in `records`), near-duplicates
(`similar`) and the versioned artifacts it is saved as (`model_store`). It may import `moderation.comment`
and `moderation.errors` and nothing else of ours.
"""
