"""Scoring keypoint predictions against a benchmark: from a file, or from a predictor.

Two entry points share one path (``pairs + predictions -> PairScore -> PCKReport``):

- :func:`score_file`: predictions written by *any* method as JSON Lines, one
  object per pair, ``{"pair": "<pair id>", "trg_kps": [[x, y], ...]}`` in
  original target-image pixels, aligned with the pair's source keypoints
  (what ``geocorr score`` runs);
- :func:`evaluate_pairs`: a ``predict(pair) -> (N, 2)`` callable, e.g.
  :func:`geocorr.evaluation.predict.feature_predictor` over a backbone (what
  ``geocorr eval`` runs).

Pair ids are the readers' ``KeypointPair.pair_id`` (SPair: the pair stem of
the Layout file; the others: see docs/evaluation.md); the leading number of
an id (``"000001"`` or ``"1"`` for ``000001-...``) is accepted too
(:func:`pair_aliases`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from geocorr.atomic import write_text_atomic
from geocorr.data.ap10k import AP10KDataset
from geocorr.data.keypoint_groups import (
    AP10K_GROUPS,
    GROUPS_AP10K,
    GROUPS_NONE,
    GROUPS_SPAIR,
    SPAIR_GROUPS,
)
from geocorr.data.pairs import KeypointPair, PairDataset, ThresholdRule
from geocorr.data.pfpascal import PFPascalDataset
from geocorr.data.pfwillow import PFWillowDataset
from geocorr.data.spair import SPairDataset
from geocorr.engine import ItemFailure, ready_state
from geocorr.engine.local import LocalEngine
from geocorr.evaluation.pck import (
    DEFAULT_CANVAS,
    PairScore,
    PCKReport,
    pck_report,
    score_pair,
)

__all__ = [
    "DatasetKind",
    "DATASET_RULES",
    "DEFAULT_ALPHAS",
    "EvalResult",
    "PredictionFile",
    "open_dataset",
    "read_predictions",
    "write_predictions",
    "score_predictions",
    "pair_aliases",
    "evaluate_pairs",
    "score_file",
]

DatasetKind = Literal["spair", "pfpascal", "pfwillow", "ap10k"]

DATASET_RULES: dict[str, ThresholdRule] = {
    "spair": "bbox", "ap10k": "bbox", "pfpascal": "image", "pfwillow": "keypoints"}
"""PCK threshold rule of each keypoint benchmark."""

DEFAULT_ALPHAS: dict[str, tuple[float, ...]] = {
    "spair": (0.01, 0.05, 0.1), "ap10k": (0.01, 0.05, 0.1),
    "pfpascal": (0.05, 0.1, 0.15), "pfwillow": (0.05, 0.1, 0.15)}
"""PCK levels each benchmark's tables report."""


def open_dataset(kind: str, root: str | Path, **kwargs: Any) -> PairDataset:
    """Open a keypoint benchmark by name (``spair``, ``pfpascal``, ``pfwillow``, ``ap10k``).

    ``kwargs`` go to the reader (e.g. ``layout="small"`` for SPair).
    """
    if kind == "spair":
        return SPairDataset(root, **kwargs)
    if kind == "pfpascal":
        return PFPascalDataset(root, **kwargs)
    if kind == "pfwillow":
        return PFWillowDataset(root, **kwargs)
    if kind == "ap10k":
        return AP10KDataset(root, **kwargs)
    raise ValueError(f"unknown dataset {kind!r}; use one of spair, pfpascal, pfwillow, ap10k "
                     f"(TSS is scored from flow: geocorr.evaluation.flow_pck)")


@dataclass(frozen=True, eq=False)
class EvalResult:
    """Scores of one set of predictions on one benchmark split.

    Attributes:
        dataset: benchmark name (``"spair"``...).
        split: split name, or ``None`` when pairs were passed in directly.
        threshold_rule: how ``T`` was measured.
        alphas: PCK levels.
        size: canvas side ``S`` of the resize-and-pad protocol (``None``: original pixels).
        report: all PCK numbers.
        scores: per-pair errors, in pair order (for swap analyses, plots, re-thresholding).
        keypoint_groups: category -> ``{"source": where its same-part group table
            came from ("Meta/categories.json", "SPair-71k built-in", "AP-10K built-in",
            "none"), "num_groups": its number of groups}``, for the categories scored.
            A category with no groups has no geometry-aware subset and no swap rate.
    """

    dataset: str
    split: str | None
    threshold_rule: ThresholdRule
    alphas: tuple[float, ...]
    size: int | None
    report: PCKReport
    scores: tuple[PairScore, ...]
    keypoint_groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_dict(self, per_pair: bool = False) -> dict[str, Any]:
        """JSON-ready dict; ``per_pair`` adds each pair's errors and threshold."""
        d: dict[str, Any] = {"dataset": self.dataset, "split": self.split,
                             "threshold_rule": self.threshold_rule, "size": self.size,
                             "num_pairs": len(self.scores), **self.report.to_dict(),
                             "keypoint_groups": {c: dict(g) for c, g in
                                                 sorted(self.keypoint_groups.items())}}
        if per_pair:
            d["pairs"] = [{"pair": s.pair_id, "category": s.category,
                           "threshold": s.threshold, "errors": s.errors.tolist(),
                           "geometry_aware": s.geometry_aware.tolist()} for s in self.scores]
        return d


@dataclass(frozen=True)
class PredictionFile:
    """Parsed predictions file.

    Attributes:
        path: the file.
        trg_kps: ``pair id -> (N, 2)`` float64 predicted target keypoints.
        lines: ``pair id ->`` 1-based line number (for error messages).
    """

    path: Path
    trg_kps: dict[str, np.ndarray]
    lines: dict[str, int]


def read_predictions(path: str | Path) -> PredictionFile:
    """Read a JSON Lines predictions file (blank lines are skipped).

    Raises:
        FileNotFoundError: no such file.
        IsADirectoryError: ``path`` is a directory.
        ValueError: not UTF-8 text, a malformed line, a missing/ill-typed field or a repeated pair;
            the message names the file and the line.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"predictions file {path} is a directory; expected a JSON Lines "
                                "file (only --dataset tss reads a directory of .flo files)")
    if not path.is_file():
        raise FileNotFoundError(f"predictions file {path} does not exist")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        no = data[:exc.start].count(b"\n") + 1
        raise ValueError(f"{path}:{no}: not UTF-8 text (byte {exc.start}); expected JSON Lines, "
                         'one {"pair": ..., "trg_kps": [[x, y], ...]} per line') from None
    kps: dict[str, np.ndarray] = {}
    lines: dict[str, int] = {}
    # the text decoded above, split into lines as a text-mode file would be
    for no, line in enumerate(io.StringIO(text, newline=None), start=1):
        if not line.strip():
            continue
        where = f"{path}:{no}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not a JSON object ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ValueError(f"{where}: expected a JSON object "
                             f'{{"pair": ..., "trg_kps": [[x, y], ...]}}')
        for key in ("pair", "trg_kps"):
            if key not in obj:
                raise ValueError(f"{where}: missing field '{key}'")
        pid = obj["pair"]
        if not isinstance(pid, str | int) or isinstance(pid, bool):
            raise ValueError(f"{where}: field 'pair' must be a string, got {pid!r}")
        pid = str(pid)
        if pid in kps:
            raise ValueError(f"{where}: pair '{pid}' already predicted on line {lines[pid]}")
        try:
            arr = np.asarray(obj["trg_kps"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: field 'trg_kps' must be a list of [x, y] "
                             f"numbers") from None
        if arr.size == 0:
            arr = arr.reshape(0, 2)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise ValueError(f"{where}: field 'trg_kps' must be a list of [x, y] pairs, "
                             f"got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{where}: field 'trg_kps' has NaN or inf")
        kps[pid] = arr
        lines[pid] = no
    return PredictionFile(path=path, trg_kps=kps, lines=lines)


def write_predictions(path: str | Path, predictions: Mapping[str, Any]) -> None:
    """Write ``pair id -> (N, 2)`` predictions as the JSON Lines file ``geocorr score`` reads.

    Written atomically (temporary file + ``os.replace``); pairs in mapping order.

    Raises:
        ValueError: a prediction is not ``(N, 2)`` finite numbers (names the pair).
    """
    path = Path(path)
    lines = []
    for pid, kps in predictions.items():
        arr = np.asarray(kps, dtype=np.float64)
        if arr.size == 0:
            arr = arr.reshape(0, 2)
        if arr.ndim != 2 or arr.shape[1] != 2 or not np.all(np.isfinite(arr)):
            raise ValueError(f"prediction for pair '{pid}' must be (N, 2) finite numbers, "
                             f"got shape {arr.shape}")
        lines.append(json.dumps({"pair": str(pid), "trg_kps": arr.tolist()}))
    write_text_atomic(path, "".join(line + "\n" for line in lines))


def _groups_for(dataset: PairDataset | str) -> Callable[[str], tuple[tuple[int, ...], ...]]:
    if isinstance(dataset, str):
        if dataset == "ap10k":
            return lambda _cat: AP10K_GROUPS
        if dataset == "spair":
            return lambda cat: SPAIR_GROUPS.get(cat, ())
        return lambda _cat: ()
    return dataset.geometry_groups


def _group_source_for(dataset: PairDataset | str) -> Callable[[str], str]:
    if isinstance(dataset, str):
        if dataset == "ap10k":
            return lambda _cat: GROUPS_AP10K
        if dataset == "spair":
            return lambda cat: GROUPS_SPAIR if cat in SPAIR_GROUPS else GROUPS_NONE
        return lambda _cat: GROUPS_NONE
    source = getattr(dataset, "geometry_groups_source", None)
    if source is None:  # a reader without the method: say only whether groups exist
        return lambda cat: "dataset reader" if dataset.geometry_groups(cat) else GROUPS_NONE
    return source


def _rule_for(dataset: PairDataset | str) -> ThresholdRule:
    if isinstance(dataset, str):
        if dataset not in DATASET_RULES:
            raise ValueError(f"unknown dataset kind {dataset!r}; use one of "
                             f"{', '.join(DATASET_RULES)}")
        return DATASET_RULES[dataset]
    return dataset.threshold_rule


def _name(dataset: PairDataset | str) -> str:
    return dataset if isinstance(dataset, str) else dataset.name


def score_predictions(pairs: Sequence[KeypointPair], predictions: PredictionFile,
                      dataset: PairDataset | str, alphas: Sequence[float] | None = None, *,
                      size: int | None = DEFAULT_CANVAS, split: str | None = None) -> EvalResult:
    """Score a parsed predictions file against the pairs of a split.

    Args:
        pairs: the split's pairs.
        predictions: from :func:`read_predictions`.
        dataset: the reader (gives threshold rule and groups) or its kind name.
        alphas: PCK levels; ``None`` = the benchmark's usual ones.
        size: canvas side ``S``; ``None`` scores in original pixels.
        split: recorded in the result.

    Raises:
        ValueError: predictions for unknown pairs, wrong keypoint counts (naming
            the line), or pairs without a prediction (listing a few).
    """
    by_id = {p.pair_id: p for p in pairs}
    aliases = pair_aliases(pairs)
    resolved: dict[str, np.ndarray] = {}
    first_line: dict[str, int] = {}
    unknown = []
    for key, arr in predictions.trg_kps.items():
        pid = key if key in by_id else aliases.get(key)
        line = predictions.lines[key]
        if pid is None:
            unknown.append((key, line))
            continue
        if pid in resolved:
            raise ValueError(f"{predictions.path}:{line}: pair '{pid}' already predicted on "
                             f"line {first_line[pid]} (as '{key}')")
        n = by_id[pid].num_keypoints
        if len(arr) != n:
            raise ValueError(f"{predictions.path}:{line}: pair '{pid}' has {n} source "
                             f"keypoints but {len(arr)} predictions")
        resolved[pid] = arr
        first_line[pid] = line
    if unknown:
        key, line = unknown[0]
        raise ValueError(f"{predictions.path}:{line}: unknown pair '{key}' (not in the split; "
                         f"{len(unknown)} unknown in all)")
    missing = [p.pair_id for p in pairs if p.pair_id not in resolved]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise ValueError(f"{predictions.path}: {len(missing)} of {len(pairs)} pairs have no "
                         f"prediction: {shown}")
    return evaluate_pairs(pairs, lambda p: resolved[p.pair_id], dataset, alphas,
                          size=size, split=split)


def pair_aliases(pairs: Sequence[KeypointPair]) -> dict[str, str]:
    """Short names accepted for pairs in prediction files: ``alias -> pair_id``.

    A pair id starting with digits and a dash (SPair ``000001-...``, the PF
    readers' ``000000-...``) can also be named by that number, with or without
    its leading zeros (``"000001"`` or ``"1"``). Aliases shared by two pairs are dropped.
    """
    seen: dict[str, str | None] = {}
    for p in pairs:
        head = p.pair_id.split("-", 1)[0]
        if head.isdigit() and head != p.pair_id:
            for alias in {head, str(int(head))}:
                seen[alias] = None if alias in seen and seen[alias] != p.pair_id else p.pair_id
    ids = {p.pair_id for p in pairs}
    return {a: pid for a, pid in seen.items() if pid is not None and a not in ids}


def evaluate_pairs(pairs: Sequence[KeypointPair], predict_fn: Callable[[KeypointPair], Any],
                   dataset: PairDataset | str, alphas: Sequence[float] | None = None, *,
                   size: int | None = DEFAULT_CANVAS, split: str | None = None,
                   progress: bool = False, engine=None) -> EvalResult:
    """Predict every pair with ``predict_fn`` and score it.

    Args:
        pairs: pairs to score.
        predict_fn: ``pair -> (N, 2)`` target keypoints in original target pixels.
        dataset: a reader (threshold rule, groups) or a kind name ``"spair"``...
        alphas: PCK levels; ``None`` = the benchmark's usual ones.
        size: canvas side ``S``; ``None`` scores in original pixels.
        split: recorded in the result.
        progress: show a rich progress bar.
        engine: a :class:`~geocorr.engine.Engine` that runs ``predict_fn`` (Ray:
            tasks over chunks of one category's pairs, ``predict_fn`` shipped once
            per worker); scoring happens here, in pair order, so the result is
            the local one. Default: local.

    Returns:
        An :class:`EvalResult`.

    Raises:
        The first error ``predict_fn`` raised on a pair (as a local run would).
    """
    from functools import partial

    name = _name(dataset)
    rule = _rule_for(dataset)
    groups = _groups_for(dataset)
    alphas = tuple(float(a) for a in (alphas or DEFAULT_ALPHAS.get(name, (0.05, 0.1))))
    if any(not 0 < a for a in alphas):
        raise ValueError(f"alphas must be positive, got {alphas}")
    engine = engine or LocalEngine()
    pairs = list(pairs)
    preds: dict[int, Any] = {}
    results = engine.map_items(partial(_predict_index, pairs), range(len(pairs)),
                               setup=ready_state(predict_fn),
                               group=lambda i: pairs[i].category,
                               label=lambda i: f"pair {pairs[i].pair_id}")
    if progress:
        from rich.progress import track

        results = track(results, total=len(pairs), description=f"scoring {name}")
    for i, pred in results:
        if isinstance(pred, ItemFailure):
            raise pred.error
        preds[i] = pred
    scores = tuple(score_pair(p, preds[i], rule=rule, size=size, groups=groups(p.category))
                   for i, p in enumerate(pairs))
    source = _group_source_for(dataset)
    keypoint_groups = {c: {"source": source(c), "num_groups": len(groups(c))}
                       for c in sorted({p.category for p in pairs})}
    return EvalResult(dataset=name, split=split, threshold_rule=rule, alphas=alphas, size=size,
                      report=pck_report(scores, alphas), scores=scores,
                      keypoint_groups=keypoint_groups)


def _predict_index(pairs: Sequence[KeypointPair], predict_fn: Callable[[KeypointPair], Any],
                   i: int) -> Any:
    return predict_fn(pairs[i])


def score_file(dataset: PairDataset, split: str, predictions_path: str | Path,
               alphas: Sequence[float] | None = None, *, size: int | None = DEFAULT_CANVAS
               ) -> EvalResult:
    """Read ``split`` of ``dataset`` and a predictions file, and score it (``geocorr score``)."""
    preds = read_predictions(predictions_path)
    return score_predictions(dataset.pairs(split), preds, dataset, alphas, size=size,
                             split=split)
