"""A fast inpainting generator (LaMa-style fast Fourier convolutions) and its PatchGAN discriminator.

Input: the RGB image in [0, 1] with the hole zeroed, plus the mask (1 = hole). The network works behind a
pixel-unshuffle front end (as in FFDNet), downsamples with strided convolutions to 1/8 of the input size,
runs FFC residual blocks there (Suvorov et al. 2022, "LaMa"), and comes back with nearest-neighbour
upsampling + convolutions and additive skips. An FFC block splits its channels into a local part (3x3
convolutions) and a global part (a 1x1 convolution in the 2-D Fourier domain), so every block sees the
whole image at the cost of a few small matrix products: wide context, cheap.

In PyTorch the Fourier units use ``torch.fft``. ``torch.fft`` does not export to ONNX (TorchScript exporter,
opset 17: "aten::fft_rfft2 ... not supported"), so while the module is traced for export the 2-D real FFT is
written as products with DFT matrices built from the input's shape (:func:`rfft2` / :func:`irfft2`, equal to
``torch.fft.rfft2/irfft2(norm="ortho")`` to 1e-6). At 1/8 resolution these matrices are small (64 x 64 for a
512 px input) and cost little next to the convolutions (they grow as n^3: keep ONNX inputs <= ~2048 px), and
the graph keeps dynamic height/width, so CPU inference goes through ONNX Runtime like the denoiser.

Fully convolutional: pad the input's sides to a multiple of ``multiple``. The output is the full RGB
prediction (sigmoid, [0, 1]); callers paste it back into the hole only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from . import ModelConfig, register


# ------------------------------------------------------------------------------------------------- DFT
def _angles(n: torch.Tensor | int, m: torch.Tensor | int, ref: torch.Tensor) -> torch.Tensor:
    """2*pi * (k * j mod n) / n for k < m, j < n as a (m, n) float tensor (exact integer phase)."""
    k = torch.arange(m, device=ref.device).unsqueeze(1)
    j = torch.arange(n, device=ref.device).unsqueeze(0)
    return torch.remainder(k * j, n).to(ref.dtype) * (2 * math.pi) / _num(n, ref)


def _num(n: torch.Tensor | int, ref: torch.Tensor) -> torch.Tensor:
    """A size as a 0-d tensor of ``ref``'s dtype (kept symbolic when traced for ONNX export)."""
    return ref.new_ones(()) * n


def exporting() -> bool:
    """True while the module is traced for ONNX export (``torch.fft`` has no ONNX export there)."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()


def dft_basis(h: int | torch.Tensor, w: int | torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The matrices :func:`rfft2` / :func:`irfft2` need for an (h, w) grid, orthonormal scaling included.

    Build it once per forward pass and share it between layers working at the same size.
    """
    k = w // 2 + 1
    scale = torch.rsqrt(_num(h * w, ref))
    ah = _angles(h, h, ref)                                    # (h, h), symmetric
    ch, sh = torch.cos(ah) * scale, torch.sin(ah) * scale
    aw = _angles(w, k, ref)                                    # (k, w)
    cw, sw = torch.cos(aw), torch.sin(aw)
    # irfft's Hermitian weights: DC (and Nyquist for even w) count once, every other bin twice
    idx = torch.arange(k, device=ref.device)
    c = torch.where((idx == 0) | (idx * 2 == w), 1.0, 2.0).to(ref.dtype).unsqueeze(1)
    fwd_w = torch.cat([cw.t(), -sw.t()], 1)                    # (w, 2k): x @ fwd_w = [re | im] along w
    inv_w = torch.cat([cw * c, -sw * c], 0)                    # (2k, w): [re | im] @ inv_w = irfft along w
    return ch, sh, fwd_w, inv_w


def rfft2(x: torch.Tensor, basis: tuple[torch.Tensor, ...] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary parts of ``torch.fft.rfft2(x, norm="ortho")`` via matrix products (ONNX-friendly)."""
    ch, sh, fwd_w, _ = basis if basis is not None else dft_basis(x.shape[-2], x.shape[-1], x)
    xri = torch.matmul(x, fwd_w)                               # (.., h, 2k)
    a, b = torch.matmul(ch, xri), torch.matmul(sh, xri)
    k = xri.shape[-1] // 2
    return a[..., :k] + b[..., k:], a[..., k:] - b[..., :k]


def irfft2(yr: torch.Tensor, yi: torch.Tensor, w: int | torch.Tensor | None = None,
           basis: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
    """``torch.fft.irfft2(torch.complex(yr, yi), s=(h, w), norm="ortho")`` via matrix products."""
    ch, sh, _, inv_w = basis if basis is not None else dft_basis(yr.shape[-2], w, yr)
    a, b = torch.matmul(ch, torch.cat([yr, yi], -1)), torch.matmul(sh, torch.cat([yi, yr], -1))
    k = yr.shape[-1]
    zr, zi = a[..., :k] - b[..., :k], a[..., k:] + b[..., k:]
    return torch.matmul(torch.cat([zr, zi], -1), inv_w)


# ---------------------------------------------------------------------------------------------- config
@dataclass
class InpaintNetConfig(ModelConfig):
    widths: tuple[int, ...] = (32, 64, 128)   # encoder widths; level i runs at 1/2**(i+1) scale (unshuffle x2 first)
    blocks: int = 6                           # FFC residual blocks at the lowest resolution
    global_ratio: float = 0.75                # share of the channels in the Fourier (global) branch
    use_fft: bool = True                      # False: plain residual blocks (no global branch) for comparison
    leaky: float = 0.2                        # LeakyReLU slope
    upsample: str = "nearest"                 # decoder upsampling: "nearest" (8x8 blocks seen) or "bilinear"
    refine: int = 0                           # residual 3x3 blocks at the top level (1/2 scale) before the tail


# ------------------------------------------------------------------------------------------------- FFC
class FourierUnit(nn.Module):
    """1x1 convolution on the stacked real/imaginary parts of the 2-D spectrum."""

    def __init__(self, ch: int, leaky: float):
        super().__init__()
        self.conv = nn.Conv2d(2 * ch, 2 * ch, 1)
        self.leaky = leaky

    def forward(self, x: torch.Tensor, basis: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        if exporting():  # DFT as matrix products: exports to ONNX with dynamic height/width
            if basis is None:
                basis = dft_basis(x.shape[-2], x.shape[-1], x)
            yr, yi = rfft2(x, basis)
        else:            # torch.fft: O(n log n), the same numbers
            f = torch.fft.rfft2(x.float(), norm="ortho")
            yr, yi = f.real.to(x.dtype), f.imag.to(x.dtype)
        y = F.leaky_relu(self.conv(torch.cat([yr, yi], 1)), self.leaky)
        yr, yi = y.chunk(2, dim=1)
        if exporting():
            return irfft2(yr, yi, basis=basis)
        return torch.fft.irfft2(torch.complex(yr.float(), yi.float()), s=x.shape[-2:], norm="ortho").to(x.dtype)


class SpectralTransform(nn.Module):
    def __init__(self, ch: int, leaky: float):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch // 2, 1)
        self.fu = FourierUnit(ch // 2, leaky)
        self.conv2 = nn.Conv2d(ch // 2, ch, 1)
        self.leaky = leaky

    def forward(self, x: torch.Tensor, basis: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        x = F.leaky_relu(self.conv1(x), self.leaky)
        return self.conv2(x + self.fu(x, basis))


class FFC(nn.Module):
    """Fast Fourier convolution on (local, global) channel groups, then LeakyReLU.

    local out = 3x3 conv of all channels (LaMa's l2l + g2l in one convolution); global out = 3x3 conv of the
    local channels (l2g) + the spectral transform of the global ones (g2g).
    """

    def __init__(self, ch: int, ratio: float, leaky: float):
        super().__init__()
        self.cg = int(round(ch * ratio)) // 2 * 2
        self.cl = ch - self.cg
        self.to_l = nn.Conv2d(ch, self.cl, 3, padding=1, padding_mode="reflect")
        self.l2g = nn.Conv2d(self.cl, self.cg, 3, padding=1, padding_mode="reflect")
        self.g2g = SpectralTransform(self.cg, leaky)
        self.leaky = leaky

    def forward(self, x: torch.Tensor, basis: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        xl, xg = x[:, :self.cl], x[:, self.cl:]
        yl = self.to_l(x)
        yg = self.l2g(xl) + self.g2g(xg, basis)
        return F.leaky_relu(torch.cat([yl, yg], 1), self.leaky)


class FFCBlock(nn.Module):
    def __init__(self, ch: int, ratio: float, leaky: float):
        super().__init__()
        self.ffc1 = FFC(ch, ratio, leaky)
        self.ffc2 = FFC(ch, ratio, leaky)

    def forward(self, x: torch.Tensor, basis: tuple[torch.Tensor, ...] | None = None) -> torch.Tensor:
        return x + self.ffc2(self.ffc1(x, basis), basis)


class ResBlock(nn.Module):
    def __init__(self, ch: int, leaky: float):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect")
        self.leaky = leaky

    def forward(self, x: torch.Tensor, basis=None) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), self.leaky))


# ------------------------------------------------------------------------------------------- generator
@register("inpaint_net", InpaintNetConfig)
class InpaintNet(nn.Module):
    """image: (N, 3, H, W) in [0, 1] (hole pixels are ignored); mask: (N, 1, H, W), 1 = hole.

    Returns the (N, 3, H, W) prediction in [0, 1] everywhere; paste it into the hole only.
    """

    def __init__(self, config: InpaintNetConfig | None = None):
        super().__init__()
        self.config = config = config or InpaintNetConfig()
        w, a = config.widths, config.leaky
        self.head = nn.Conv2d(4 * 4, w[0], 3, padding=1, padding_mode="reflect")
        self.down = nn.ModuleList(nn.Conv2d(w[i], w[i + 1], 3, stride=2, padding=1) for i in range(len(w) - 1))
        block = (lambda: FFCBlock(w[-1], config.global_ratio, a)) if config.use_fft else (lambda: ResBlock(w[-1], a))
        self.body = nn.ModuleList(block() for _ in range(config.blocks))
        self.up = nn.ModuleList(nn.Conv2d(w[i + 1], w[i], 3, padding=1, padding_mode="reflect")
                                for i in range(len(w) - 1))
        self.refine = nn.ModuleList(ResBlock(w[0], a) for _ in range(config.refine))
        self.tail = nn.Conv2d(w[0], 4 * 3, 3, padding=1, padding_mode="reflect")
        if config.upsample not in ("nearest", "bilinear"):
            raise ValueError(f"upsample must be 'nearest' or 'bilinear', not {config.upsample!r}")

    @property
    def multiple(self) -> int:
        return 2 ** len(self.config.widths)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a = self.config.leaky
        x = torch.cat([image * (1 - mask), mask], 1)
        f = F.leaky_relu(self.head(F.pixel_unshuffle(x, 2)), a)
        skips = []
        for down in self.down:
            skips.append(f)
            f = F.leaky_relu(down(f), a)
        # the DFT matrices for ONNX export are built once and shared by every block
        basis = dft_basis(f.shape[-2], f.shape[-1], f) if self.config.use_fft and exporting() else None
        for block in self.body:
            f = block(f, basis)
        for i in reversed(range(len(self.up))):
            if self.config.upsample == "bilinear":
                f = F.interpolate(f, scale_factor=2.0, mode="bilinear", align_corners=False)
            else:
                f = F.interpolate(f, scale_factor=2.0, mode="nearest")
            f = F.leaky_relu(self.up[i](f), a) + skips[i]
        for block in self.refine:
            f = block(f)
        return torch.sigmoid(F.pixel_shuffle(self.tail(f), 2))


# --------------------------------------------------------------------------------------- discriminator
@dataclass
class InpaintDiscConfig(ModelConfig):
    width: int = 32
    layers: int = 3        # stride-2 layers; receptive field 70 px at 3 (the classic PatchGAN)


@register("inpaint_disc", InpaintDiscConfig)
class InpaintDisc(nn.Module):
    """PatchGAN (pix2pix / LaMa NLayerDiscriminator) without normalisation (R1 keeps it in check).

    ``forward(x)`` returns (logits (N, 1, h, w), [features of every layer]) for feature matching.
    """

    def __init__(self, config: InpaintDiscConfig | None = None):
        super().__init__()
        self.config = config = config or InpaintDiscConfig()
        chans = [3] + [config.width * 2 ** min(i, 3) for i in range(config.layers + 1)]
        self.blocks = nn.ModuleList()
        for i in range(config.layers + 1):
            stride = 2 if i < config.layers else 1
            self.blocks.append(nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 4, stride=stride, padding=1),
                                             nn.LeakyReLU(0.2, inplace=True)))
        self.out = nn.Conv2d(chans[-1], 1, 4, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for b in self.blocks:
            x = b(x)
            feats.append(x)
        return self.out(x), feats
