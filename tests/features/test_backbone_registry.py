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
