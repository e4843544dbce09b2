"""Model building blocks: the one-hot CNN's padding invariance and the width-scaled default lr."""

from __future__ import annotations

import pytest
import torch

from genoml.config import DataConfig, FinetuneConfig
from genoml.models import ConvAttention, OneHotCNN, ShallowCNN


@pytest.mark.parametrize("length", [1, 2, 7, 30])
@pytest.mark.parametrize("arch", ["cnn", "cnn-shallow", "cnn-attn"])
def test_cnn_features_do_not_depend_on_padding(length, arch):
    """A record alone and the same record padded next to a longer one give the same features (eval mode)."""
    torch.manual_seed(0)
    net = {
        "cnn": lambda: OneHotCNN(4, filters=16, layers=3, bins=3),
        "cnn-shallow": lambda: ShallowCNN(4, filters=16),
        "cnn-attn": lambda: ConvAttention(4, filters=16, heads=2, bins=3),
    }[arch]().eval()
    x = torch.nn.functional.one_hot(torch.randint(0, 4, (1, length)), 4).float()  # (1, L, 4)
    alone = net(x, torch.ones(1, length))
    padded = torch.cat([x, torch.zeros(1, 41 - length, 4)], 1)  # (1, 41, 4)
    mate = torch.nn.functional.one_hot(torch.randint(0, 4, (1, 41)), 4).float()
    mask = torch.zeros(2, 41)
    mask[0, :length] = 1
    mask[1] = 1
    batched = net(torch.cat([padded, mate]), mask)
    torch.testing.assert_close(batched[0], alone[0], rtol=1e-5, atol=1e-6)


def test_cnn_shapes_and_gradients():
    net = OneHotCNN(20, filters=8, layers=2, pool=2, bins=0)
    x = torch.rand(3, 13, 20, requires_grad=True)
    out = net(x, torch.ones(3, 13))
    assert out.shape == (3, 2 * 8) == (3, net.hidden_size)
    binned = OneHotCNN(20, filters=8, layers=2, bins=4, bin_channels=5)
    assert binned(x, torch.ones(3, 13)).shape == (3, 2 * 8 + 4 * 5) == (3, binned.hidden_size)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def config(**kw) -> FinetuneConfig:
    return FinetuneConfig(data=DataConfig(train="x.csv"), out="o", **kw)


def test_default_lr_scales_with_width_for_full_and_partial():
    assert config(strategy="full").default_lr(768) == pytest.approx(1e-4)
    assert config(strategy="full").default_lr(128) == pytest.approx(6e-4)
    assert config(strategy="full").default_lr(2560) == pytest.approx(1e-4)  # never below the BERT-base value
    assert config(strategy="partial:2").default_lr(64) == pytest.approx(1e-3)  # capped
    assert config(strategy="lora").default_lr(128) == pytest.approx(1e-3)  # not width-scaled
    assert config(strategy="probe").default_lr(128) == pytest.approx(2e-3)
    assert config(strategy="full", lr=3e-5).default_lr(128) == pytest.approx(3e-5)  # --lr wins
    assert config(model="cnn").default_lr() == pytest.approx(2e-3)
