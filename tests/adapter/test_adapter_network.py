import pytest
import torch

from geocorr.adapter.network import Adapter, AdapterSettings, BottleneckBlock, group_count


def test_group_count():
    assert group_count(64) == 32
    assert group_count(16) == 16
    assert group_count(48) == 24
    assert group_count(7) == 7
    assert group_count(67) == 1


@pytest.mark.parametrize("sources,out_dim", [
    ((("a", 64),), 32),
    ((("xfeat", 64), ("classical", 35)), 64),
    ((("s3", 40), ("s4", 80), ("s5", 80), ("dino", 48)), 48),
])
def test_shapes_and_unit_norm(sources, out_dim):
    torch.manual_seed(0)
    net = Adapter(AdapterSettings(sources=sources, out_dim=out_dim)).eval()
    feats = {n: torch.randn(2, c, 5, 7) for n, c in sources}
    out = net(feats)
    assert out.shape == (2, out_dim, 5, 7)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2, 5, 7))
    torch.testing.assert_close(net.mix_weights().sum(), torch.tensor(1.0))


def test_shortcut_identity_when_widths_match():
    assert isinstance(BottleneckBlock(32, 32).shortcut, torch.nn.Identity)
    assert not isinstance(BottleneckBlock(16, 32).shortcut, torch.nn.Identity)
    assert BottleneckBlock(64, 32).conv1.out_channels == 8


def test_bad_inputs():
    net = Adapter(AdapterSettings(sources=(("a", 4), ("b", 6)), out_dim=8))
    with pytest.raises(ValueError, match="missing source 'b'"):
        net({"a": torch.zeros(1, 4, 3, 3)})
    with pytest.raises(ValueError, match="'b' must be"):
        net({"a": torch.zeros(1, 4, 3, 3), "b": torch.zeros(1, 5, 3, 3)})
    with pytest.raises(ValueError, match="share"):
        net({"a": torch.zeros(1, 4, 3, 3), "b": torch.zeros(1, 6, 4, 3)})
    with pytest.raises(ValueError, match="out_dim"):
        AdapterSettings(sources=(("a", 4),), out_dim=6)
    with pytest.raises(ValueError, match="at least one"):
        AdapterSettings()


def test_settings_round_trip():
    s = AdapterSettings(sources=(("a", 4), ("b", 6)), out_dim=8, dropout=0.1)
    assert AdapterSettings.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="unknown"):
        AdapterSettings.from_dict({**s.to_dict(), "bogus": 1})


def test_mixing_weights_select_sources():
    torch.manual_seed(0)
    net = Adapter(AdapterSettings(sources=(("a", 4), ("b", 4)), out_dim=8)).eval()
    feats = {"a": torch.randn(1, 4, 3, 3), "b": torch.randn(1, 4, 3, 3)}
    with torch.no_grad():
        net.mix_logits.copy_(torch.tensor([50.0, -50.0]))
        only_a = torch.nn.functional.normalize(net.blocks["a"](feats["a"]), dim=1)
    torch.testing.assert_close(net(feats), only_a)


def test_dropout_only_in_training():
    torch.manual_seed(0)
    net = Adapter(AdapterSettings(sources=(("a", 8),), out_dim=8, dropout=0.5))
    x = {"a": torch.randn(1, 8, 4, 4)}
    net.eval()
    torch.testing.assert_close(net(x), net(x))
    net.train()
    assert not torch.allclose(net(x), net(x))
