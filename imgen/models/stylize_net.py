"""Unpaired photo -> painting translation (CUT / FastCUT, Park et al. 2020), sized for CPUs.

``stylize_net``: a fully convolutional ResNet generator: 7x7 stem, two stride-2 3x3 convolutions, ``n_blocks``
residual blocks at 1/4 scale, two (bilinear x2 + 3x3 convolution) upsamplers (no transposed convolutions,
so no checkerboard artefacts), a 7x7 head and tanh. Every convolution pads by reflection. Input and output
are RGB in [0, 1] (scaled to [-1, 1] inside, as CUT does); the input's sides must be multiples of
``multiple`` (4) and at least ``min_side`` (16) px: :mod:`imgen.tasks.stylize` pads smaller images.

Normalisation: instance norm (no affine, as in CUT). Instance norm uses statistics of the whole input, so
running the network tile by tile would give each tile its own statistics (visible seams and colour shifts
between tiles; measured on the 512x512 astronaut, 256 px tiles with 64 px overlap vs the whole image: 24/255
mean absolute difference, up to 136, for a briefly trained model). The task therefore never tiles: it runs the whole photo at a capped processing size
(``max_side``) and brings the *change* (output - input at that size) to full resolution, added to the
full-resolution photo (see :mod:`imgen.tasks.stylize`). The network's cost is then bounded by the cap, and
the photo's own fine detail survives. Exports to ONNX (opset 17) with dynamic height/width.

:meth:`StylizeNet.encode` returns the encoder features PatchNCE compares (the input itself, the stem, both
downsamplers and the middle residual block, as CUT's ``nce_layers`` 0,4,8,12,16 do).

``stylize_disc``: the 70x70 PatchGAN discriminator (instance norm, LeakyReLU) that CUT uses.
:class:`PatchSampleMLP` is CUT's ``PatchSampleF``: random patch locations per layer, a two-layer MLP per layer,
L2-normalised embeddings. It is used only in training and is not part of the exported weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from . import ModelConfig, register


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r} (instance or none)")


def _conv(cin: int, cout: int, k: int, stride: int = 1, pad: str = "reflect") -> nn.Conv2d:
    if pad not in ("reflect", "zeros"):
        raise ValueError(f"unknown pad {pad!r} (reflect or zeros)")
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, padding_mode=pad)


@dataclass
class StylizeNetConfig(ModelConfig):
    ngf: int = 16            # stem width; 2x after the first downsampler, 4x in the residual blocks
    n_blocks: int = 6        # residual blocks at 1/4 scale
    norm: str = "instance"   # "instance" (CUT) or "none"
    pad: str = "reflect"     # "reflect" (CUT) or "zeros" (ONNX Runtime fuses it into the convolution: faster)


class ResBlock(nn.Module):
    def __init__(self, ch: int, norm: str, pad: str = "reflect"):
        super().__init__()
        self.body = nn.Sequential(_conv(ch, ch, 3, pad=pad), _norm(norm, ch), nn.ReLU(inplace=True),
                                  _conv(ch, ch, 3, pad=pad), _norm(norm, ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Up(nn.Module):
    """Bilinear x2 then a 3x3 convolution (resize-convolution: no checkerboard artefacts)."""

    def __init__(self, cin: int, cout: int, norm: str, pad: str = "reflect"):
        super().__init__()
        self.conv = _conv(cin, cout, 3, pad=pad)
        self.norm = _norm(norm, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        return F.relu(self.norm(self.conv(x)), inplace=True)


@register("stylize_net", StylizeNetConfig)
class StylizeNet(nn.Module):
    """x: (N, 3, H, W) RGB in [0, 1], H and W multiples of 4 (>= 16). Returns the translated image in [0, 1]."""

    multiple = 4
    min_side = 16

    def __init__(self, config: StylizeNetConfig | None = None):
        super().__init__()
        self.config = c = config or StylizeNetConfig()
        g, n, pad = c.ngf, c.norm, c.pad
        self.stem = nn.Sequential(_conv(3, g, 7, pad=pad), _norm(n, g), nn.ReLU(inplace=True))
        self.down1 = nn.Sequential(_conv(g, 2 * g, 3, 2, pad), _norm(n, 2 * g), nn.ReLU(inplace=True))
        self.down2 = nn.Sequential(_conv(2 * g, 4 * g, 3, 2, pad), _norm(n, 4 * g), nn.ReLU(inplace=True))
        self.blocks = nn.ModuleList(ResBlock(4 * g, n, pad) for _ in range(c.n_blocks))
        self.up1 = Up(4 * g, 2 * g, n, pad)
        self.up2 = Up(2 * g, g, n, pad)
        self.head = _conv(g, 3, 7, pad=pad)

    # PatchNCE taps: 0 = the input, 1 = stem, 2 = down1, 3 = down2, 4 = the middle residual block
    def feature_channels(self) -> list[int]:
        g = self.config.ngf
        return [3, g, 2 * g, 4 * g, 4 * g]

    def encode(self, x: torch.Tensor, layers=(0, 1, 2, 3, 4)) -> list[torch.Tensor]:
        """Encoder features at the requested taps (a prefix of the forward pass; stops at the last one)."""
        feats = {}
        f = x * 2 - 1
        feats[0] = f
        last = max(layers)
        for i, stage in enumerate((self.stem, self.down1, self.down2), start=1):
            if last < i:
                break
            f = stage(f)
            feats[i] = f
        if last >= 4:
            for blk in self.blocks[: max(1, self.config.n_blocks // 2)]:
                f = blk(f)
            feats[4] = f
        return [feats[i] for i in layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.down2(self.down1(self.stem(x * 2 - 1)))
        for blk in self.blocks:
            f = blk(f)
        f = self.up2(self.up1(f))
        return torch.tanh(self.head(f)) * 0.5 + 0.5


# ------------------------------------------------------------------------------------------- discriminator
@dataclass
class StylizeDiscConfig(ModelConfig):
    ndf: int = 64
    n_layers: int = 3        # 3 = the 70x70 PatchGAN


@register("stylize_disc", StylizeDiscConfig)
class PatchDiscriminator(nn.Module):
    """x: (N, 3, H, W) in [0, 1] -> (N, 1, h, w) real/fake logits, one per overlapping patch."""

    def __init__(self, config: StylizeDiscConfig | None = None):
        super().__init__()
        self.config = c = config or StylizeDiscConfig()
        ch = c.ndf
        layers: list[nn.Module] = [nn.Conv2d(3, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for i in range(1, c.n_layers + 1):
            nxt = c.ndf * min(2 ** i, 8)
            stride = 2 if i < c.n_layers else 1
            layers += [nn.Conv2d(ch, nxt, 4, stride, 1), nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2, True)]
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * 2 - 1)


# --------------------------------------------------------------------------------------------- PatchNCE
class PatchSampleMLP(nn.Module):
    """CUT's PatchSampleF: per layer, features at random locations -> 2-layer MLP -> L2-normalised vectors.

    ``forward(feats, num_patches, ids=None)`` returns (embeddings, ids); pass the ``ids`` returned for the
    source features when embedding the output's features, so both are taken at the same locations.
    """

    def __init__(self, channels: list[int], nc: int = 256):
        super().__init__()
        self.mlps = nn.ModuleList(nn.Sequential(nn.Linear(c, nc), nn.ReLU(inplace=True), nn.Linear(nc, nc))
                                  for c in channels)

    def forward(self, feats: list[torch.Tensor], num_patches: int = 256, ids: list[torch.Tensor] | None = None,
                generator: torch.Generator | None = None):
        out, out_ids = [], []
        for i, (f, mlp) in enumerate(zip(feats, self.mlps)):
            n, c, h, w = f.shape
            flat = f.permute(0, 2, 3, 1).reshape(n, h * w, c)
            if ids is not None:
                idx = ids[i]
            else:
                idx = torch.randperm(h * w, generator=generator)[: min(num_patches, h * w)].to(f.device)
            x = mlp(flat[:, idx, :].reshape(-1, c))
            out.append(F.normalize(x, dim=1))
            out_ids.append(idx)
        return out, out_ids


def patch_nce_loss(q: torch.Tensor, k: torch.Tensor, batch: int, tau: float = 0.07) -> torch.Tensor:
    """PatchNCE (InfoNCE over patches): each output patch ``q`` must pick the input patch ``k`` at the same
    location among the other patches of the same image. q, k: (batch * P, C), L2-normalised."""
    k = k.detach()
    p = q.shape[0] // batch
    qb, kb = q.view(batch, p, -1), k.view(batch, p, -1)
    l_pos = (qb * kb).sum(-1, keepdim=True)                      # (B, P, 1)
    l_neg = torch.bmm(qb, kb.transpose(1, 2))                    # (B, P, P)
    eye = torch.eye(p, device=q.device, dtype=torch.bool)[None]
    l_neg = l_neg.masked_fill(eye, -10.0)                        # the positive is not its own negative
    logits = torch.cat([l_pos, l_neg], dim=2).flatten(0, 1) / tau
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, target)
