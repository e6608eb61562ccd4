"""Part fusion in one place: the stage-1 confidence rule and the fused similarity it gives."""

import numpy as np
import pytest
import trimesh

from geocorr.features.base import FeatureMap
from geocorr.features.part_confidence import (
    ConfidenceSettings,
    render_iou,
    stage1_confidence,
)
from geocorr.features.part_fusion import PartFusionSettings, fuse_part, part_share
from geocorr.geometry.camera import Camera, look_at
from geocorr.geometry.image_transform import resize_and_pad
from geocorr.geometry.raster import rasterize

W = H = 64


def _record(margin=8.0, tally=(8.0, 0.0, 0.0, 0.0), conf=0.5, residual=0.05, order=1,
            failed=False):
    return {"margin": margin, "yaw": {"tally": list(tally)}, "yaw_symmetry": order,
            "canonical": {"confidence": conf, "residual": residual},
            "refine": {"failed": failed}, "failed": failed}


def test_perfect_confidence_is_one_and_missing_signals_count_as_one():
    assert stage1_confidence(1.0, _record()).value == 1.0
    c = stage1_confidence(0.95)  # no record (a user's mesh): only the IoU is known
    assert (c.yaw, c.canonical, c.residual, c.symmetry, c.value) == (1.0, 1.0, 1.0, 1.0, 1.0)
    old = {"margin": 8.0, "yaw": {"tally": [8, 0, 0, 0]}}  # record without a canonical step
    assert stage1_confidence(0.95, old).value == 1.0
    assert stage1_confidence(0.3, _record()).value == 0.0  # the mesh misses the mask
    assert stage1_confidence(0.95, _record(margin=0.0, tally=(4, 4, 0, 0))).yaw == 0.5  # a tie
    with pytest.raises(ValueError, match="iou"):
        stage1_confidence(1.5)


@pytest.mark.parametrize("signal, values, increasing", [
    ("iou", [0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.95], True),
    ("margin", [0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0], True),
    ("conf", [0.0, 0.05, 0.1, 0.2, 0.3, 0.6], True),
    ("residual", [0.0, 0.1, 0.2, 0.3, 0.45, 0.6, 1.0], False),
    ("order", [1, 2, 4], False),
])
def test_confidence_is_monotone_in_each_signal(signal, values, increasing):
    def value(x):
        if signal == "iou":
            return stage1_confidence(x, _record()).value
        return stage1_confidence(0.95, _record(**{signal: x})).value

    v = np.array([value(x) for x in values])
    d = np.diff(v) if increasing else -np.diff(v)
    assert (d >= 0).all() and (d > 0).any(), v
    assert v.max() == 1.0 and v.min() <= 0.5, v


def test_confidence_factors_by_hand():
    s = ConfidenceSettings()
    c = stage1_confidence(0.7, _record(margin=2.0, conf=0.15, residual=0.375, order=2), s)
    # fit (0.7-0.5)/(0.9-0.5) = 0.5; yaw (1 + (2/8)/0.5)/2 = 0.75; canonical 0.15/0.3 = 0.5;
    # residual 1 - (0.375-0.15)/(0.6-0.15) = 0.5; symmetry 1/2
    assert (c.fit, c.yaw, c.canonical, c.residual, c.symmetry) == pytest.approx(
        (0.5, 0.75, 0.5, 0.5, 0.5))
    v = 0.75 * 0.5 ** 4
    assert c.value == pytest.approx(v)
    # the confidence scales the part's odds: s / (1 - s) = v * 0.8 / 0.2
    s08 = part_share(c, PartFusionSettings(part_weight=0.8))
    assert s08 / (1 - s08) == pytest.approx(v * 4)
    assert part_share(None, PartFusionSettings(part_weight=0.8)) == 0.8
    shares = [part_share(stage1_confidence(iou, _record()), PartFusionSettings())
              for iou in np.linspace(0.2, 1.0, 17)]
    assert shares[0] == 0.0 and shares[-1] == PartFusionSettings().part_weight
    assert (np.diff(shares) >= 0).all()


def test_the_residual_factor_falls_with_the_shape_difference_to_the_reference():
    """The canonical alignment's residual reveals wrong proportions that the mask IoU does not.

    A box against itself leaves only sampling noise (~0.08 RMS radii): factor 1.
    Boxes stretched along their length (a reconstruction with wrong proportions:
    its silhouette can still be fitted, its parts sit elsewhere) leave larger
    residuals, 1.3x ~0.19 and 2.2x ~0.44, and the factor is the ramp's value
    ``1 - (r - 0.15) / (0.6 - 0.15)`` of each, strictly falling.
    """
    from geocorr.reconstruct.canonical import align_to_reference, centred, surface_points

    box = trimesh.creation.box(extents=(2.0, 1.0, 0.8))
    f = np.asarray(box.faces)
    ref = centred(surface_points(np.asarray(box.vertices), f, 2000, seed=0))
    residuals, factors, shares = [], [], []
    for stretch in (1.0, 1.3, 2.2):
        v = np.asarray(box.vertices) * np.array([stretch, 1.0, 1.0])
        r = align_to_reference(centred(surface_points(v, f, 2000, seed=1)), ref).residual
        c = stage1_confidence(0.95, _record(residual=r))
        residuals.append(r)
        factors.append(c.residual)
        shares.append(part_share(c, PartFusionSettings()))
    assert residuals[0] < 0.15 < residuals[1] < residuals[2] < 0.6, residuals
    assert factors[0] == 1.0 and factors[1] > factors[2] > 0.0, factors
    assert factors[2] == pytest.approx(1 - (residuals[2] - 0.15) / 0.45)
    assert shares[0] == PartFusionSettings().part_weight > shares[1] > shares[2], shares


def _scene(offset_px: float = 0.0):
    """An ellipsoid seen by a camera; its mask, shifted by ``offset_px`` pixels when asked."""
    mesh = trimesh.creation.icosphere(subdivisions=2)
    v = np.asarray(mesh.vertices) * np.array([1.4, 0.8, 0.6])
    f = np.asarray(mesh.faces)
    R, t = look_at(np.array([3.0, 1.0, 1.0]), np.zeros(3))
    K = np.array([[1.2 * H, 0, (W - 1) / 2], [0, 1.2 * H, (H - 1) / 2], [0, 0, 1.0]])
    cam = Camera(K, R, t, W, H)
    mask = rasterize(v, f, cam).mask
    if offset_px:
        mask = np.roll(mask, int(offset_px), axis=1)
    return v, f, cam, mask


def _fmap(seed: int, c: int = 8, grid: int = 16) -> FeatureMap:
    x = np.random.default_rng(seed).normal(size=(c, grid, grid)).astype(np.float32)
    return FeatureMap(x, resize_and_pad(W, H, grid * 4), "xfeat")


def test_render_iou_of_the_own_silhouette_is_one_and_falls_with_a_shift():
    v, f, cam, mask = _scene()
    assert render_iou(v, f, cam, mask) == 1.0
    assert render_iou(v, f, cam, np.roll(mask, 12, axis=1)) < 0.6
    with pytest.raises(ValueError, match="mask has shape"):
        render_iou(v, f, cam, mask[:-1])


def test_perfect_confidence_gives_the_constant_weight_fusion():
    v, f, cam, mask = _scene()
    fm = _fmap(0)
    gamma = 0.7
    conf = fuse_part(fm, v, f, cam, mask, PartFusionSettings(part_weight=gamma),
                     record=_record())
    const = fuse_part(fm, v, f, cam, mask, PartFusionSettings(part_weight=gamma,
                                                              confidence=None))
    assert conf.confidence.value == 1.0 and conf.share == gamma and const.share == gamma
    np.testing.assert_array_equal(conf.fused.features, const.fused.features)
    # an object cell: fused dot = (1 - gamma) cos_2D + gamma cos_part
    on = np.flatnonzero(np.linalg.norm(conf.part.features, axis=0).ravel() > 0)
    i, j = on[0], on[len(on) // 2]
    x2, xp = fm.features.reshape(fm.features.shape[0], -1), conf.part.features.reshape(
        conf.part.features.shape[0], -1)

    def cos(x, a, b):
        return x[:, a] @ x[:, b] / np.linalg.norm(x[:, a]) / np.linalg.norm(x[:, b])

    u = conf.fused.features.reshape(conf.fused.features.shape[0], -1)
    assert u[:, i] @ u[:, j] == pytest.approx(
        (1 - gamma) * cos(x2, i, j) + gamma * cos(xp, i, j), abs=1e-5)


def test_a_bad_reconstruction_gets_a_low_weight():
    v, f, cam, _ = _scene()
    _, _, _, shifted = _scene(offset_px=24)  # the mesh sits beside the mask
    fm = _fmap(1)
    good = fuse_part(fm, v, f, cam, rasterize(v, f, cam).mask, record=_record())
    bad = fuse_part(fm, v, f, cam, shifted, record=_record())
    assert good.share == PartFusionSettings().part_weight
    assert bad.confidence.iou < 0.3 and bad.share == 0.0
    # same channels as any other image, the 2D block at full weight, the part block zero
    assert bad.fused.features.shape == good.fused.features.shape
    c2 = fm.features.shape[0]
    np.testing.assert_allclose(np.linalg.norm(bad.fused.features[:c2], axis=0), 1.0, rtol=1e-5)
    assert not bad.fused.features[c2:].any()
    # a tied yaw vote (4 against 4) halves the part's odds; a 4-fold symmetric instance
    # quarters them
    g = good.share
    for rec, factor in ((_record(margin=0.0, tally=(4, 4, 0, 0)), 0.5), (_record(order=4), 0.25)):
        s = fuse_part(fm, v, f, cam, rasterize(v, f, cam).mask, record=rec).share
        assert s / (1 - s) == pytest.approx(factor * g / (1 - g))


def test_pair_similarity_counts_the_part_as_far_as_both_meshes_are_trusted():
    v, f, cam, mask = _scene()
    a = fuse_part(_fmap(2), v, f, cam, mask, record=_record())
    b = fuse_part(_fmap(3), v, f, cam, mask, record=_record(conf=0.075))  # canonical factor 1/4
    sa, sb = a.share, b.share
    assert sb / (1 - sb) == pytest.approx(0.25 * sa / (1 - sa))
    c2 = a.fused.features.shape[0] - a.part.features.shape[0]
    ua = a.fused.features.reshape(a.fused.features.shape[0], -1)
    ub = b.fused.features.reshape(b.fused.features.shape[0], -1)
    i = int(np.flatnonzero(np.linalg.norm(a.part.features, axis=0).ravel() > 0)[3])
    d2 = ua[:c2, i] @ ub[:c2, i] / np.sqrt((1 - sa) * (1 - sb))
    dp = ua[c2:, i] @ ub[c2:, i] / np.sqrt(sa * sb)
    assert ua[:, i] @ ub[:, i] == pytest.approx(
        np.sqrt((1 - sa) * (1 - sb)) * d2 + np.sqrt(sa * sb) * dp, abs=1e-6)
    assert abs(dp) <= 1 + 1e-5 and abs(d2) <= 1 + 1e-5


def test_settings_validate():
    with pytest.raises(ValueError, match="part_weight"):
        PartFusionSettings(part_weight=1.5)
    with pytest.raises(ValueError, match="iou_min"):
        ConfidenceSettings(iou_min=0.9, iou_ok=0.8)


def test_every_command_composes_through_fuse_part(monkeypatch):
    """match, eval (part_fused_source), pseudolabel (runner) and demo call fuse_part, and no
    other module renders part descriptors into a fused map by hand."""
    import ast
    from pathlib import Path

    import geocorr
    import geocorr.features.part_fusion as pf
    from geocorr.features.registry import make_backbone
    from geocorr.matching.images import MeshView, match_images

    calls = []
    real = pf.fuse_part

    def spy(*a, **kw):
        calls.append(kw.get("record"))
        return real(*a, **kw)

    monkeypatch.setattr(pf, "fuse_part", spy)
    v, f, cam, mask = _scene()
    img = np.zeros((H, W, 3), np.uint8)
    img[mask] = (200, 120, 40)
    res = match_images(img, img, make_backbone("classical"), mask_s=mask, mask_t=mask,
                       mesh_s=MeshView(v, f, cam), mesh_t=MeshView(v, f, cam))
    assert len(calls) == 2 and res.maps["fused"][0].features.shape[0] > 0
    # source check: render_descriptors is called only by the composition (and figures/benchmarks)
    src = Path(geocorr.__file__).parent
    users = []
    for p in src.rglob("*.py"):
        tree = ast.parse(p.read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        if "render_descriptors" in names:
            users.append(p.relative_to(src).as_posix())
        if "fuse_part" in names or "fuse_cached" in names:
            users.append(f"uses:{p.relative_to(src).as_posix()}")
    assert [u for u in users if not u.startswith("uses:")] == ["features/part_fusion.py"]
    for m in ("matching/images.py", "evaluation/adapter_predict.py", "labels/runner.py",
              "demo/features.py"):
        assert f"uses:{m}" in users, m


def test_cli_part_weight_defaults_to_the_settings_and_is_checked(tmp_path):
    import inspect

    from typer.testing import CliRunner

    from geocorr.cli import app
    from geocorr.cli._common import part_fusion_settings

    assert part_fusion_settings(None) == PartFusionSettings()
    assert part_fusion_settings(None, confidence=False).confidence is None
    assert part_fusion_settings(0.4).part_weight == 0.4
    for cmd in ("match", "eval", "pseudolabel", "demo"):
        res = CliRunner().invoke(app, [cmd, "--help"])
        assert "--part-weight" in res.output and "--constant-part-weight" in res.output, cmd
    res = CliRunner().invoke(app, ["pseudolabel", "--dataset", str(tmp_path), "--cache",
                                   str(tmp_path), "--out", str(tmp_path / "l.sqlite"),
                                   "--part-weight", "2"])
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "--part-weight" in lines[0] and "[0, 1]" in lines[0], res.output
    assert not (tmp_path / "l.sqlite").exists()
    # no command writes a default of its own
    import geocorr.cli.demo as d
    import geocorr.cli.eval as e
    import geocorr.cli.match as m
    import geocorr.cli.pseudolabel as p

    for mod in (d, e, m, p):
        assert 'typer.Option(None, "--part-weight"' in inspect.getsource(mod), mod.__name__
