"""Convolutional experts for image modalities (pixels flattened in ``X``, shape ``(C, H, W)``)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Spatial side of the coarsest feature map; images are downsampled by 2 until they reach it.
_MIN_SIDE = 8
#: The encoder's coarsest map is pooled to this side and flattened, keeping where things are
#: (a global average would keep only what is there, and position carries anatomy).
_POOLED = 4


def _fast_layout(h: Tensor) -> Tensor:
    """``h`` (N, C, H, W) in channels-last memory on CPU, where oneDNN's convolutions and their
    gradients then skip the layout copies (about 30% less time per training step of a 32x32
    expert pair); unchanged elsewhere. Only the memory layout changes: results agree to float rounding."""
    return h.contiguous(memory_format=torch.channels_last) if h.device.type == "cpu" else h


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResidualBlock(nn.Module):
    """Pre-activation residual block: ``x + conv(act(norm(conv(act(norm(x))))))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _norm(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            _norm(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def n_downsamples(image_shape: Sequence[int]) -> int:
    """How many stride-2 stages bring the smaller side of the image down to about 8 pixels."""
    side = min(image_shape[1], image_shape[2])
    return max(0, int(math.floor(math.log2(side / _MIN_SIDE))))


def stage_channels(image_shape: Sequence[int], base_channels: int) -> list[int]:
    """Channels per resolution stage: ``base_channels`` doubling per downsample, capped at 4x."""
    return [base_channels * min(2**i, 4) for i in range(n_downsamples(image_shape) + 1)]


class ConvEncoder(nn.Module):
    """Image → mean and log-variance of a Gaussian expert.

    A stem convolution, then per stage a stride-2 convolution and a residual block until
    the side is about 8 pixels (no residual block at full resolution, where it costs most),
    average pooling to a 4x4 grid that keeps where things are (a global average would keep
    only what is there) and a linear map to ``2 * n_latent``. The input is the likelihood's flattened encoder input, reshaped to
    ``(in_channels, H, W)`` (with NaN entries: the values and the observed indicator as
    separate channels).

    Parameters
    ----------
    image_shape
        ``(C, H, W)`` of the modality.
    in_channels
        Channels of the encoder input (``C``, or ``2 C`` with missingness indicators).
    n_latent
        Latent dimension.
    base_channels
        Width of the first stage.
    n_covariates
        Width of a covariate vector (batch one-hot, ...) joined to the pooled features before
        the last linear map; 0 for none.
    """

    def __init__(self, image_shape: Sequence[int], in_channels: int, n_latent: int, *, base_channels: int = 16,
                 n_covariates: int = 0) -> None:
        super().__init__()
        self.in_shape = (in_channels, int(image_shape[1]), int(image_shape[2]))
        chans = stage_channels(image_shape, base_channels)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, chans[0], 3, padding=1)]
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), ResidualBlock(c_out)]
        layers += [_norm(chans[-1]), nn.SiLU(), nn.AdaptiveAvgPool2d(_POOLED), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(chans[-1] * _POOLED * _POOLED + n_covariates, 2 * n_latent)

    def forward(self, x: Tensor, covariates: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Mean and log-variance; ``covariates`` ``(*lead, n_covariates)`` when the encoder has any."""
        lead = x.shape[:-1]
        h = self.body(_fast_layout(x.reshape(-1, *self.in_shape)))
        if covariates is not None:
            h = torch.cat([h, covariates.reshape(-1, covariates.shape[-1])], dim=-1)
        mu, logvar = self.out(h).reshape(*lead, -1).chunk(2, dim=-1)
        return mu, logvar.clamp(-10.0, 8.0)


class ConvDecoder(nn.Module):
    """Latent → full-resolution feature map of ``out_channels`` channels, flattened.

    A linear map to the coarsest grid, then per stage a residual block and a 2x
    nearest-neighbour upsampling followed by a convolution, resized to exactly ``(H, W)``
    and a last convolution to ``out_channels``;
    the likelihood's per-pixel head turns the features into distribution parameters.

    Parameters
    ----------
    n_latent
        Input dimension: the latent dimension, plus the covariates' width for a conditional decoder.
    image_shape
        ``(C, H, W)`` of the modality.
    out_channels
        Channels of the returned feature map (the likelihood's ``n_hidden``).
    base_channels
        Width of the finest stage.
    """

    def __init__(self, n_latent: int, image_shape: Sequence[int], *, out_channels: int = 8,
                 base_channels: int = 16) -> None:
        super().__init__()
        _, height, width = (int(v) for v in image_shape)
        self.size = (height, width)
        self.out_channels = out_channels
        n_down = n_downsamples(image_shape)
        self.coarse = (max(1, height // 2**n_down), max(1, width // 2**n_down))
        chans = stage_channels(image_shape, base_channels)[::-1]
        self.inp = nn.Linear(n_latent, chans[0] * self.coarse[0] * self.coarse[1])
        self.c0 = chans[0]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            layers += [ResidualBlock(c_in), nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, padding=1)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(_norm(chans[-1]), nn.SiLU(), nn.Conv2d(chans[-1], out_channels, 3, padding=1))

    def forward(self, z: Tensor) -> Tensor:
        lead = z.shape[:-1]
        h = _fast_layout(self.inp(z.reshape(-1, z.shape[-1])).reshape(-1, self.c0, *self.coarse))
        h = self.body(h)
        if tuple(h.shape[-2:]) != self.size:
            h = F.interpolate(h, size=self.size, mode="bilinear", align_corners=False)
        return self.head(h).reshape(*lead, -1)
