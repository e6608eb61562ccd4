"""Stage 3's one loop: every filter on one pass == one `geocorr pseudolabel` run per filter."""

from __future__ import annotations

import shutil
import typing
from dataclasses import replace

import numpy as np
import pytest
from labels_fixture import build

from geocorr.engine.base import ItemFailure
from geocorr.evaluation.filter_study import FilterStudySettings
from geocorr.labels.pair import FilteredCandidates
from geocorr.labels.runner import LabelSettings, PairLoop, run_pseudolabels
from geocorr.labels.settings import FILTERS, Filter
from geocorr.labels.store import LabelStore
from geocorr.matching.pair import MatchSettings
from geocorr.matching.pairs import PairSamplingSettings

SETTINGS = LabelSettings(backbone="classical", match=MatchSettings(stride=1),
                         pairs=PairSamplingSettings(pairs_per_category=3, seed=1))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build(tmp_path_factory.mktemp("tiny"), categories=("blob",), n_images=3)


def test_the_filter_list_is_written_once():
    assert typing.get_args(Filter) == FILTERS == ("cyclic", "sphere", "geodesic")
    assert FilterStudySettings().filters is FILTERS
    for f in FILTERS:
        assert LabelSettings(filter=f).filter == f
    with pytest.raises(ValueError, match="filter"):
        LabelSettings(filter="mystery")
    with pytest.raises(ValueError, match="subset"):
        FilterStudySettings(filters=())


def test_one_pass_over_every_filter_equals_one_run_per_filter(tiny, tmp_path):
    data, cache = tiny
    loop = PairLoop(data, cache, SETTINGS, FILTERS)
    got = list(loop.run())
    assert [p for p, _ in got] == loop.pairs and len(loop.pairs) == 3
    cands = [c for _, c in got]
    assert all(isinstance(c, FilteredCandidates) and set(c.keep) == set(FILTERS) for c in cands)
    kept = {f: sum(int(c.keep[f].sum()) for c in cands) for f in FILTERS}
    assert kept["cyclic"] > kept["sphere"] > 0 and kept["cyclic"] > kept["geodesic"] > 0
    assert loop.labeller.prepare_s > 0
    stores = {f: tmp_path / f"study_{f}.sqlite" for f in FILTERS}
    loop.save(stores, cands, {"by": "test"})
    for f in FILTERS:
        one = tmp_path / f"run_{f}.sqlite"
        summary = run_pseudolabels(data, cache, one, replace(SETTINGS, filter=f), progress=False)
        assert (summary.labelled, summary.labels) == (3, kept[f])
        with LabelStore(one) as a, LabelStore(stores[f]) as b:
            assert a.dump() == b.dump()
            assert a.meta("settings") == b.meta("settings") == loop.store_settings(f)
            assert a.meta("settings")["settings"]["filter"] == f
        # the study's store resumes as a `geocorr pseudolabel --filter f` run: nothing to do
        again = run_pseudolabels(data, cache, stores[f], replace(SETTINGS, filter=f),
                                 progress=False)
        assert (again.skipped, again.labelled) == (3, 0)


def test_a_bad_pair_is_a_failure_or_raises_and_unknown_filters_are_refused(tiny, tmp_path):
    data, cache = tiny
    bad = tmp_path / "cache"
    shutil.copytree(cache, bad)
    (bad / "blob" / "blob_0001" / "mesh.ply").write_text("not a mesh\n")
    loop = PairLoop(data, bad, SETTINGS, ("geodesic",))
    res = dict(loop.run())
    failed = [p.pair_id for p, r in res.items() if isinstance(r, ItemFailure)]
    assert failed and all("blob_0001" in p for p in failed) and len(res) == 3
    with pytest.raises(ValueError, match="mesh.ply"):
        list(PairLoop(data, bad, SETTINGS).run(errors=()))
    with pytest.raises(ValueError, match="subset"):
        PairLoop(data, cache, SETTINGS, ("geodesic", "mystery"))
    ok = next(r for r in res.values() if not isinstance(r, ItemFailure))
    with pytest.raises(ValueError, match="unknown filter"):
        ok.labels("sphere")
    assert np.array_equal(ok.labels("geodesic").src_uv, ok.candidates.src_uv[ok.keep["geodesic"]])
