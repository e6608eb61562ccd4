"""OrientAnythingV2 end to end against the API stand-in (tests/fakes/orient_anything_v2).

The stand-in knows one object, a prism over an irregular hexagon whose front
(+X) is one side face; its checkpoint carries the side faces' normal azimuths.
The adapter loads it as it would load the real repository (sys.path, class and
function names, strict state dict, PIL input, 0-d tensor outputs), and the
8-view yaw vote must recover a known turn of the prism.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from geocorr.reconstruct.orientation import OrientAnythingV2, OrientationEstimator
from geocorr.reconstruct.views import render_view, rotation_z
from geocorr.reconstruct.yaw_vote import VoteSettings, apply_yaw_correction, canonicalize_yaw

torch = pytest.importorskip("torch")

SIDES_DEG = np.array([0.0, 35.0, 109.0, 155.0, 255.0, 330.0])
"""Normal azimuths of the prism's side faces; 0 = its front (+X)."""


def prism(sides_deg=SIDES_DEG, height=0.6):
    """Vertical prism: polygon ``{p : n_i . p <= 1}``, Z up, sides' normals at ``sides_deg``."""
    b = np.radians(np.sort(sides_deg))
    n = np.stack([np.cos(b), np.sin(b)], 1)
    k = len(b)
    corners = np.array([np.linalg.solve(np.stack([n[i], n[(i + 1) % k]]), [1.0, 1.0])
                        for i in range(k)])  # corner i between sides i and i+1
    v = np.concatenate([np.c_[corners, np.zeros(k)], np.c_[corners, np.full(k, height)]])
    faces = []
    for i in range(k):  # side i spans corners i-1 and i
        a, c = (i - 1) % k, i
        faces += [[a, c, k + c], [a, k + c, k + a]]
    faces += [[0, i, i + 1] for i in range(1, k - 1)]
    faces += [[k, k + i + 1, k + i] for i in range(1, k - 1)]
    return v, np.array(faces)


def test_prism_sides_face_where_stated():
    v, f = prism()
    tri = v[f]
    nrm = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    side = np.abs(nrm[:, 2]) < 1e-9
    az = np.sort(np.unique(np.round(np.degrees(np.arctan2(nrm[side, 1], nrm[side, 0])) % 360,
                                    6)))
    np.testing.assert_allclose(az, np.sort(SIDES_DEG))


@pytest.fixture()
def estimator(stand_in, tmp_path):
    repo = stand_in("orient_anything_v2")
    import importlib.util

    spec = importlib.util.spec_from_file_location("_oa_tower_for_ckpt", repo / "vision_tower.py")
    tower = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tower)
    model = tower.VGGT_OriAny_Ref(out_dim=900, dtype=torch.float32, nopretrain=True)
    with torch.no_grad():
        model.side_azimuths_deg.copy_(torch.as_tensor(SIDES_DEG))
        model.logit_scale.fill_(0.7)
    ckpt = tmp_path / "rotmod_realrotaug_best.pt"
    torch.save(model.state_dict(), ckpt)
    return OrientAnythingV2(repo, ckpt, device="cpu")


def _angle_diff(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize("turn_deg", [0.0, 90.0, 180.0, 260.0])
def test_yaw_vote_recovers_a_known_turn(estimator, turn_deg):
    """Mesh turned by theta: view psi shows azimuth psi - theta; the vote undoes theta."""
    assert isinstance(estimator, OrientationEstimator)
    v0, f = prism()
    v = v0 @ rotation_z(turn_deg).T
    settings = VoteSettings()
    vote = canonicalize_yaw(v, f, estimator, settings)
    psi = np.arange(settings.num_views) * 360.0 / settings.num_views
    assert _angle_diff(vote.estimated, psi - turn_deg).max() <= 2.0, vote.estimated
    k = round(-turn_deg / 90.0) % 4
    assert vote.correction == k and vote.margin == settings.num_views
    v_fixed, _ = apply_yaw_correction(v, np.eye(3), vote.correction)
    residual = (turn_deg + 90 * k + 180) % 360 - 180       # what a quarter-turn vote cannot undo
    np.testing.assert_allclose(v_fixed, v0 @ rotation_z(residual).T, atol=1e-9)


def test_estimate_reads_the_outputs(estimator):
    v, f = prism()
    est = estimator.estimate(render_view(v, f, 30.0))
    assert est.symmetry == 1 and est.confidence is None
    assert _angle_diff(est.azimuth_deg, 30.0) <= 2.0
    assert isinstance(est.azimuth_deg, float) and math.isfinite(est.azimuth_deg)
    with pytest.raises(ValueError, match="uint8"):
        estimator.estimate(np.zeros((8, 8, 3), np.float32))


def test_checkpoint_must_match(stand_in, tmp_path):
    repo = stand_in("orient_anything_v2")
    ckpt = tmp_path / "bad.pt"
    torch.save({"unrelated": torch.zeros(1)}, ckpt)
    v, f = prism()
    with pytest.raises(RuntimeError, match="side_azimuths_deg"):
        OrientAnythingV2(repo, ckpt).estimate(render_view(v, f, 0.0))
    with pytest.raises(FileNotFoundError, match="vision_tower.py"):
        OrientAnythingV2(tmp_path / "nowhere", ckpt).estimate(render_view(v, f, 0.0))
