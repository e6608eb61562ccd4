"""geocorr.evaluation: scoring correspondences on keypoint and flow benchmarks.

- :mod:`~geocorr.evaluation.pck`: PCK (strict ``<``, resize-and-pad canvas),
  per-image/per-keypoint, per category, difficulty breakdowns;
- :mod:`~geocorr.evaluation.geometry_aware`: the geometry-aware subset rule
  (its same-part group tables are data: :mod:`geocorr.data.keypoint_groups`);
- :mod:`~geocorr.evaluation.predict`: nearest-neighbour / window soft-argmax
  keypoint transfer between two feature maps;
- :mod:`~geocorr.evaluation.scorer`: prediction files and predictors -> ``EvalResult``;
- :mod:`~geocorr.evaluation.flow_pck`: TSS flow PCK;
- :mod:`~geocorr.evaluation.tables`: rich tables and atomic JSON.

See docs/evaluation.md for the protocol.
"""
