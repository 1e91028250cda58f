"""The networks of the CycleGAN paper (Zhu et al. 2017, appendix 7.2) — the only generator definition in cgan.

Module and parameter names match the official repository's `ResnetGenerator` and `NLayerDiscriminator`
(junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py) so that official checkpoints load with strict=True:
`model.1.weight` (c7s1-ngf) … `model.10.conv_block.1.weight` (first residual block) … `model.26.bias` (c7s1-3).
Export and the runtime rebuild a generator from a `GeneratorSpec` with `build_generator(spec)`.
"""
from __future__ import annotations

import torch
from torch import nn

from cgan.spec import GeneratorSpec


def _norm(channels: int) -> nn.Module:
    # Instance norm without affine parameters or running statistics: the official `--norm instance`.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Residual block: pad-conv3x3-IN-ReLU-(dropout)-pad-conv3x3-IN, plus the skip connection."""

    def __init__(self, dim: int, dropout: bool = False):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), _norm(dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), _norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d2ngf, d4ngf, N×R4ngf, u2ngf, ungf, c7s1-3, tanh (paper notation).

    Input and output are NCHW in [-1, 1]; height and width must be multiples of 4 for the output to have the
    input's size (two stride-2 downsamplings, undone by two transposed convolutions).
    """

    def __init__(self, spec: GeneratorSpec):
        super().__init__()
        self.spec = spec
        n = spec.ngf
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(spec.in_channels, n, 7, bias=True), _norm(n), nn.ReLU(True)]
        for mult in (1, 2):  # d2ngf, d4ngf
            layers += [nn.Conv2d(n * mult, n * mult * 2, 3, stride=2, padding=1, bias=True), _norm(n * mult * 2), nn.ReLU(True)]
        for _ in range(spec.blocks):
            layers.append(ResnetBlock(n * 4, spec.dropout))
        for mult in (4, 2):  # u2ngf, ungf
            layers += [nn.ConvTranspose2d(n * mult, n * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=True),
                       _norm(n * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(n, spec.out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """The 70×70 PatchGAN: C64-C128-C256-C512, LeakyReLU 0.2, no norm on the first layer, 1-channel output."""

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for i in range(1, n_layers):
            prev, mult = mult, min(2 ** i, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=True), _norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=True), _norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        seq += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """The paper's initialisation: conv weights ~ N(0, 0.02), biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


class SubpixelUpsample(nn.Module):
    """A trained `ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)` as the same arithmetic in
    another form, for inference: a 2x2 convolution to 4*cout channels over the input padded by one zero row and
    column at the bottom and right, then a pixel shuffle (sub-pixel convolution, Shi et al. 2016).

    Output pixel (2a + py, 2b + px) of the transposed convolution sums input pixels (a, b), (a, b + 1), (a + 1, b)
    and (a + 1, b + 1) with kernel taps that depend only on the phase (py, px): on an even row tap 1 of the input's
    row a; on an odd row tap 2 of row a and tap 0 of row a + 1 (zero past the last row: output_padding). Columns
    likewise. So each phase is a 2x2 convolution whose kernel holds those taps (zeros elsewhere), and the four
    phases are one convolution with 4*cout outputs, interleaved by `pixel_shuffle(2)`.

    Why: on an H200 (2026-12-04, 720p FP16, torch.compile) cuDNN ran the two transposed convolutions with sm80
    "indexed" kernels at ~47 TFLOP/s, 1.16 ms of the 3.07 ms spent in convolutions; a plain 2x2 convolution takes
    the Hopper kernels the other convolutions get. It does 16/9 of the multiplications (the zero taps). Whether it is
    faster is for `cgan-bench` to say (`+subpixel` variants); the outputs match to float rounding.
    """

    def __init__(self, deconv: nn.ConvTranspose2d):
        super().__init__()
        if (deconv.kernel_size, deconv.stride, deconv.padding, deconv.output_padding, deconv.dilation,
                deconv.groups) != ((3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1):
            raise ValueError(f"SubpixelUpsample takes the generator's ConvTranspose2d(3, stride 2, padding 1, "
                             f"output_padding 1), not {deconv}")
        w = deconv.weight.detach()                     # (cin, cout, 3, 3)
        cin, cout = w.shape[:2]
        k = w.new_zeros(cout, 2, 2, cin, 2, 2)         # (cout, py, px, cin, dy, dx)
        taps = ({0: 1}, {0: 2, 1: 0})                  # phase -> {offset into the input: kernel tap}
        for py, rows in enumerate(taps):
            for px, cols in enumerate(taps):
                for dy, ky in rows.items():
                    for dx, kx in cols.items():
                        k[:, py, px, :, dy, dx] = w[:, :, ky, kx].t()
        self.weight = nn.Parameter(k.reshape(4 * cout, cin, 2, 2), requires_grad=False)
        bias = deconv.bias.detach() if deconv.bias is not None else w.new_zeros(cout)
        self.bias = nn.Parameter(bias.repeat_interleave(4), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.conv2d(nn.functional.pad(x, (0, 1, 0, 1)), self.weight, self.bias)
        return nn.functional.pixel_shuffle(y, 2)


def subpixel_upsampling(net: ResnetGenerator) -> ResnetGenerator:
    """Replace `net`'s transposed convolutions by their `SubpixelUpsample` form, in place, for inference (the
    weights are derived from the trained ones; training and checkpoints keep the paper's layers)."""
    layers = net.model
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.ConvTranspose2d):
            layers[i] = SubpixelUpsample(layer)  # (its weights are made from the layer's, on its device)
    return net


def build_generator(spec: GeneratorSpec, init: bool = True) -> ResnetGenerator:
    net = ResnetGenerator(spec)
    return init_weights(net) if init else net


def build_discriminator(in_channels: int = 3, ndf: int = 64, n_layers: int = 3, init: bool = True) -> NLayerDiscriminator:
    net = NLayerDiscriminator(in_channels, ndf, n_layers)
    return init_weights(net) if init else net


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrappers' prefixes (`module.` from DataParallel/DDP, `_orig_mod.` from torch.compile) and the
    running-stat buffers that checkpoints from old PyTorch versions stored for InstanceNorm layers."""
    out = {}
    for k, v in state.items():
        for prefix in ("module.", "_orig_mod."):
            while k.startswith(prefix):
                k = k[len(prefix):]
        k = k.replace("._orig_mod.", ".")
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue
        out[k] = v
    return out


def infer_spec(state: dict[str, torch.Tensor]) -> GeneratorSpec:
    """Recover a GeneratorSpec from an official-layout generator state_dict (blocks, ngf, channels, dropout)."""
    from cgan.errors import IntegrityError

    if "model.1.weight" not in state:
        raise IntegrityError("not a ResNet generator checkpoint: no 'model.1.weight' "
                             "(expected the official ResnetGenerator layout)")
    w_first = state["model.1.weight"]
    shape = tuple(getattr(w_first, "shape", ()))
    if len(shape) != 4:
        raise IntegrityError(f"not a ResNet generator checkpoint: 'model.1.weight' has the shape {list(shape)}, "
                             f"not a first convolution's [ngf, channels, 7, 7]")
    ngf, in_ch = int(shape[0]), int(shape[1])
    try:
        block_ids = sorted({int(k.split(".")[1]) for k in state if ".conv_block." in k and k.startswith("model.")})
        last = max(int(k.split(".")[1]) for k in state if k.startswith("model.") and k.endswith(".weight"))
    except ValueError:  # a key like model.x.conv_block.1.weight: not the official layout
        raise IntegrityError("not a ResNet generator checkpoint: keys not in the official ResnetGenerator layout "
                             "(model.N.…)") from None
    if not block_ids:
        raise IntegrityError("not a ResNet generator checkpoint: no residual blocks (model.N.conv_block.*)")
    dropout = any(".conv_block.6.weight" in k for k in state)
    try:
        out_ch = int(state[f"model.{last}.weight"].shape[0])
    except (KeyError, IndexError, AttributeError):
        raise IntegrityError("not a ResNet generator checkpoint: malformed last layer") from None
    return GeneratorSpec(blocks=len(block_ids), ngf=ngf, in_channels=in_ch, out_channels=out_ch, dropout=dropout)
