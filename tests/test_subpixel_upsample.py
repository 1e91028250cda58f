"""SubpixelUpsample: the generator's transposed convolutions as a 2x2 convolution + pixel shuffle (inference)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cgan.spec import GeneratorSpec
from cgan.trainer.networks import SubpixelUpsample, build_generator, subpixel_upsampling


@pytest.mark.parametrize("cin,cout,h,w", [(4, 2, 1, 1), (6, 3, 5, 7), (8, 4, 8, 6), (16, 8, 3, 10)])
def test_same_outputs_as_the_transposed_convolution(cin, cout, h, w):
    torch.manual_seed(cin * 100 + h)
    deconv = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1).double()
    nn.init.normal_(deconv.bias)  # a zero bias would hide a bias laid out in the wrong phase
    x = torch.randn(2, cin, h, w, dtype=torch.float64)
    with torch.no_grad():
        want, got = deconv(x), SubpixelUpsample(deconv)(x)
    assert got.shape == want.shape == (2, cout, 2 * h, 2 * w)
    assert torch.allclose(got, want, atol=1e-12, rtol=0), (got - want).abs().max()


def test_a_whole_generator_keeps_its_outputs_and_its_trained_layers_are_untouched():
    spec = GeneratorSpec(blocks=2, ngf=8)
    torch.manual_seed(0)
    net = build_generator(spec).double().eval()
    x = torch.rand(1, 3, 20, 28, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        want = net(x)
        state = {k: v.clone() for k, v in net.state_dict().items()}
        fast = build_generator(spec, init=False).double().eval()
        fast.load_state_dict(state)  # the checkpoint's layout loads before the swap, as the runtime does it
        fast = subpixel_upsampling(fast)
        got = fast(x)
    assert sum(isinstance(m, SubpixelUpsample) for m in fast.modules()) == 2
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in fast.modules())
    assert torch.allclose(got, want, atol=1e-10, rtol=0)
    assert all(torch.equal(net.state_dict()[k], state[k]) for k in state)


def test_other_transposed_convolutions_are_refused():
    with pytest.raises(ValueError, match="SubpixelUpsample takes"):
        SubpixelUpsample(nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1))
