"""A small image classifier whose penultimate features serve as the embedding for FID/KID.

No Inception network is available offline, so generators are compared in the feature space of this
network, trained on the data set's own labels (KaoKore: gender x status from the file names).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from . import ModelConfig, register


@dataclass
class LabelClassifierConfig(ModelConfig):
    classes: tuple[str, ...] = ()
    widths: tuple[int, ...] = (32, 64, 128, 256)  # one stride-2 stage each: 64 -> 32 -> 16 -> 8 -> 4 px
    channels: int = 3


@register("label_classifier", LabelClassifierConfig)
class LabelClassifier(nn.Module):
    """Input: (N, 3, 64, 64) in [-1, 1]. ``features(x)`` -> (N, widths[-1]); ``forward(x)`` -> class logits."""

    def __init__(self, config: LabelClassifierConfig | None = None):
        super().__init__()
        self.config = c = config or LabelClassifierConfig()
        chans = [c.channels] + list(c.widths)
        layers = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(inplace=True),
                       nn.Conv2d(b, b, 3, stride=2, padding=1), nn.BatchNorm2d(b), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c.widths[-1], max(1, len(c.classes)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.body(x), 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.dropout(self.features(x), 0.2, self.training))
