"""Precision/recall by hand; each filter's keep-mask == that filter run on the candidates."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "labels"))
from labels_fixture import build  # noqa: E402

from geocorr.evaluation.label_quality import (  # noqa: E402
    filter_quality,
    label_quality,
    quality_table,
)
from geocorr.labels.pair import label_all_filters  # noqa: E402
from geocorr.labels.runner import LabelSettings, PairInputs, label_pair, prepare_image  # noqa: E402
from geocorr.labels.settings import FILTERS  # noqa: E402
from geocorr.matching.pair import MatchSettings, match_pair  # noqa: E402
from geocorr.matching.pairs import ImagePair  # noqa: E402
from geocorr.matching.sphere import verify_sphere  # noqa: E402
from geocorr.matching.verify import verify_geodesic  # noqa: E402


def test_label_quality_hand_computed():
    keep = np.array([1, 1, 0, 1, 0], bool)
    correct = np.array([1, 0, 1, 1, 0], bool)
    q = label_quality("x", keep, correct)
    assert (q.candidates, q.kept, q.correct_candidates, q.correct_kept) == (5, 3, 3, 2)
    assert q.precision == pytest.approx(2 / 3) and q.recall == pytest.approx(2 / 3)
    none = label_quality("y", np.zeros(3, bool), np.array([1, 0, 0], bool))
    assert np.isnan(none.precision) and none.recall == 0.0
    with pytest.raises(ValueError, match="equal"):
        label_quality("z", keep, correct[:4])


def test_all_filters_match_the_runner_per_filter(tmp_path):
    data, cache = build(tmp_path, categories=("blob",), n_images=2)
    from geocorr.features.geometric import GeometricDescriptor
    from geocorr.features.registry import make_backbone

    s = LabelSettings(backbone="classical", match=MatchSettings(stride=1))
    bb, desc = make_backbone("classical"), GeometricDescriptor()
    a = prepare_image(data, cache, "blob", "blob_0000", bb, desc, s)
    b = prepare_image(data, cache, "blob", "blob_0001", bb, desc, s)
    pair = ImagePair("blob", "blob_0000", "blob_0001")
    fc = label_all_filters(pair, PairInputs(a, b), s)
    assert len(fc) > 0 and fc.keep["cyclic"].all()
    # the reference, written out: cyclic candidates of match_pair, then each verifier on them
    m = match_pair(a.features, b.features, a.mask, b.mask, s.match)
    cyc = np.flatnonzero(m.kept["cyclic"])
    src, trg = m.src_uv[cyc], m.trg_uv[cyc]
    ref_keep = {"cyclic": np.ones(len(cyc), bool)}
    ref_err = {"cyclic": np.zeros(len(cyc))}
    ref_missed = {"cyclic": 0}
    for f, res in (("geodesic", verify_geodesic(a.index, b.index, a.camera, b.camera, src, trg,
                                                s.verify)),
                   ("sphere", verify_sphere(a.index, b.index, a.camera, b.camera, src, trg,
                                            s.sphere))):
        ref_keep[f], ref_err[f], ref_missed[f] = res.kept, res.errors, res.n_missed
    assert 0 < ref_keep["geodesic"].sum() < len(cyc)  # the filters decide something here
    for f in FILTERS:
        got = fc.labels(f)
        k = np.flatnonzero(ref_keep[f])
        np.testing.assert_array_equal(fc.keep[f], ref_keep[f])
        np.testing.assert_array_equal(got.src_uv, src[k])
        np.testing.assert_array_equal(got.trg_uv, trg[k])
        np.testing.assert_array_equal(got.score, m.similarity[cyc][k].astype(np.float64))
        np.testing.assert_array_equal(got.error, ref_err[f][k])
        assert (got.n_candidates, got.n_missed) == (len(cyc), ref_missed[f])
        # the runner's one-filter function is the same cut
        one = label_pair(pair, PairInputs(a, b), replace(s, filter=f))
        np.testing.assert_array_equal(one.src_uv, got.src_uv)
        np.testing.assert_array_equal(one.error, got.error)
        assert one.n_missed == got.n_missed
    only = label_all_filters(pair, PairInputs(a, b), s, ("geodesic",))
    assert set(only.keep) == {"geodesic"}
    np.testing.assert_array_equal(only.keep["geodesic"], fc.keep["geodesic"])
    with pytest.raises(ValueError, match="unknown filter"):
        fc.labels("nope")
    # pooled scores: every candidate "correct" -> recall = kept share, precision 1
    q = filter_quality([fc, fc], [np.ones(len(fc), bool)] * 2)
    assert q["cyclic"].recall == 1.0 and q["cyclic"].kept == 2 * len(fc)
    assert q["geodesic"].kept == 2 * int(fc.keep["geodesic"].sum())
    assert "| geodesic |" in quality_table(q)
    with pytest.raises(ValueError, match="correctness"):
        filter_quality([fc], [np.ones(len(fc) + 1, bool)])


def test_filter_study_settings_and_existing_store(tmp_path):
    from geocorr.evaluation.filter_study import FilterStudySettings, run_filter_study

    with pytest.raises(ValueError, match="subset"):
        FilterStudySettings(filters=("cyclic", "mystery"))
    with pytest.raises(ValueError, match="min_labels"):
        FilterStudySettings(min_labels=1)
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "sphere.sqlite").write_text("old")
    with pytest.raises(ValueError, match="already exists"):
        run_filter_study(tmp_path / "nodata", tmp_path / "nocache", tmp_path, progress=False)
    assert (tmp_path / "labels" / "sphere.sqlite").read_text() == "old"
