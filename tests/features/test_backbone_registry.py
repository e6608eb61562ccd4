import pytest

from geocorr.features.classical import ClassicalBackbone
from geocorr.features.registry import backbone_names, make_backbone
from geocorr.features.xfeat import XFeatBackbone


def test_names_and_settings():
    assert {"xfeat", "classical", "dinov2", "dinov3", "sd"} <= set(backbone_names())
    b = make_backbone("xfeat", grid_size=32, context=True)
    assert isinstance(b, XFeatBackbone)
    assert b.settings.grid_size == 32 and b.settings.context.enabled
    assert isinstance(make_backbone("classical"), ClassicalBackbone)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="combinations are fused"):
        make_backbone("dinov2+sd")
    with pytest.raises(ValueError, match="unknown backbone"):
        make_backbone("resnet")
    with pytest.raises(ValueError, match="grid_sise"):
        make_backbone("xfeat", grid_sise=3)


def test_vit_names():
    from geocorr.features.vit import ViTBackbone

    v2, v3 = make_backbone("dinov2"), make_backbone("dinov3", layer=-2)
    assert isinstance(v2, ViTBackbone) and isinstance(v3, ViTBackbone)
    assert (v2.name, v2.settings.image_size) == ("dinov2", 840)
    assert (v3.name, v3.settings.image_size, v3.settings.layer) == ("dinov3", 960, -2)
    assert v3.settings.image_size % 16 == 0 and v2.settings.image_size % 14 == 0


def test_sd_name():
    from geocorr.features.sd import SDBackbone

    b = make_backbone("sd", timestep=100, layers=("s3", "s4"))
    assert isinstance(b, SDBackbone) and b.settings.timestep == 100
    assert b.settings.image_size == 960 and b.settings.output_grid == 60


def test_parse_weights():
    from geocorr.features.registry import parse_weights

    assert parse_weights(["xfeat=/w/x.pt", "dinov2=/m/d"]) == {"xfeat": "/w/x.pt", "dinov2": "/m/d"}
    assert parse_weights(["/w/a=b.pt"], default="xfeat") == {"xfeat": "/w/a=b.pt"}
    assert parse_weights(["xfeat=/w/x.pt"], default="xfeat") == {"xfeat": "/w/x.pt"}
    with pytest.raises(ValueError, match="expected NAME=PATH"):
        parse_weights(["/w/x.pt"])
    with pytest.raises(ValueError, match="expected NAME=PATH"):
        parse_weights(["resnet=/w/x.pt"])
    with pytest.raises(ValueError, match="empty path"):
        parse_weights(["xfeat="])


def test_make_backbones_routes_weights_and_shared_settings():
    from geocorr.features.registry import make_backbones

    bbs = make_backbones(["dinov2", "xfeat", "classical"],
                         weights={"xfeat": "/w/x.pt", "dinov2": "/m/dino"},
                         grid_size=32, context=True, layer=None)
    assert list(bbs) == ["dinov2", "xfeat", "classical"]
    # XFeat takes a state-dict path in `weights`, DINO a model path in `model`
    assert bbs["xfeat"].settings.weights == "/w/x.pt" and bbs["dinov2"].settings.model == "/m/dino"
    assert bbs["xfeat"].settings.grid_size == 32 and bbs["classical"].settings.grid_size == 32
    assert bbs["xfeat"].settings.context.enabled and bbs["classical"].settings.context.enabled
    assert bbs["dinov2"].settings.layer is None  # None settings are "not given"
    with pytest.raises(ValueError, match="not among the backbones"):
        make_backbones(["xfeat"], weights={"dinov2": "/m"})
    with pytest.raises(ValueError, match="'classical' has no weights"):
        make_backbones(["classical"], weights={"classical": "/m"})
    with pytest.raises(ValueError, match=r"\['context'\] apply to none"):
        make_backbones(["dinov2"], context=True)
    with pytest.raises(ValueError, match="repeat"):
        make_backbones(["xfeat", "xfeat"])
    with pytest.raises(ValueError, match="unknown backbone"):
        make_backbones(["resnet"])
