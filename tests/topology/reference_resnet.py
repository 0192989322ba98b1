"""A hand-written torch ResNet (torchvision's BasicBlock and Bottleneck layouts, no torchvision
needed).

The reference the ResNet tests, bench/bench_topology.py and bench/bench_gpu.py compare nnspec's
YAML ResNets with. Each block registers its modules in forward order (the shortcut last), as
torchvision does, so an in-order state-dict copy lines up with nnspec's
``body.<i>.op/norm`` then ``shortcut`` keys.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet50"]


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Module | None:
    """A 1x1-conv projection with batch norm where the shape changes, else the identity."""
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """torchvision's BasicBlock, written out: conv-bn-relu-conv-bn (+ shortcut) -> relu."""

    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.down = _shortcut(c_in, width, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (x if self.down is None else self.down(x)))


class Bottleneck(nn.Module):
    """torchvision's Bottleneck ("ResNet v1.5": the stride on the 3x3 conv), written out:
    1x1 conv to ``width`` -> 3x3 conv (stride) -> 1x1 conv to ``4 * width``, batch norm after
    each, ReLU after the first two and after the residual add."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.down = _shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + (x if self.down is None else self.down(x)))


class ResNet(nn.Module):
    """Stem (7x7 conv, BN, ReLU, max pool), four stages of ``repeats[i]`` blocks at widths 64,
    128, 256, 512 (stride 2 in the first block of stages 2-4), global average pool, linear head."""

    def __init__(
        self,
        repeats: tuple[int, ...],
        classes: int = 1000,
        block: type[BasicBlock | Bottleneck] = BasicBlock,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        blocks: list[nn.Module] = []
        c_in = 64
        for stage, n in enumerate(repeats):
            width = 64 * 2**stage
            for r in range(n):
                blocks.append(block(c_in, width, 2 if r == 0 and stage > 0 else 1))
                c_in = width * block.expansion
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def resnet50(classes: int = 1000) -> ResNet:
    """torchvision's ``resnet50`` layout: Bottleneck blocks repeated 3, 4, 6, 3 times."""
    return ResNet((3, 4, 6, 3), classes, Bottleneck)
