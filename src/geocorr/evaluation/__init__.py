"""geocorr.evaluation: scoring correspondences on keypoint and flow benchmarks.

- :mod:`~geocorr.evaluation.pck`: PCK (strict ``<``, resize-and-pad canvas),
  per-image/per-keypoint, per category, difficulty breakdowns;
- :mod:`~geocorr.evaluation.geometry_aware`: same-part group tables and the
  geometry-aware subset rule;
- :mod:`~geocorr.evaluation.predict`: nearest-neighbour / window soft-argmax
  keypoint transfer between two feature maps;
- :mod:`~geocorr.evaluation.scorer`: prediction files and predictors -> ``EvalResult``;
- :mod:`~geocorr.evaluation.flow_pck`: TSS flow PCK;
- :mod:`~geocorr.evaluation.tables`: rich tables and atomic JSON.

See docs/evaluation.md for the protocol.
"""
