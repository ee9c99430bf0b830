from __future__ import annotations

import pytest
import torch

from mdlprob.distributions import Gaussian
from mdlprob.nn import ConvDecoder, ConvEncoder
from mdlprob.nn._conv import n_downsamples


@pytest.mark.parametrize(("shape", "n_down"), [((1, 28, 28), 1), ((3, 32, 32), 2), ((1, 64, 48), 2), ((2, 128, 128), 4)])
def test_downsampling_stops_near_eight_pixels(shape, n_down):
    assert n_downsamples(shape) == n_down


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 20, 36)])
def test_encoder_and_decoder_keep_leading_dims_and_exact_size(shape):
    c, h, w = shape
    enc = ConvEncoder(shape, 2 * c, 5)
    mu, logvar = enc(torch.randn(2, 3, 2 * c * h * w))
    assert mu.shape == logvar.shape == (2, 3, 5)
    dec = ConvDecoder(5, shape, out_channels=4)
    feats = dec(torch.randn(7, 3, 5))
    assert feats.shape == (7, 3, 4 * h * w)
    lik = Gaussian(c * h * w, 4, image_shape=shape)
    assert lik(feats)["loc"].shape == (7, 3, c * h * w)


def test_samples_in_a_batch_do_not_interact():
    """Group norm, not batch norm: an image's encoding does not depend on its batch mates."""
    torch.manual_seed(0)
    enc = ConvEncoder((1, 16, 16), 1, 3).eval()
    x = torch.randn(4, 256)
    alone = enc(x[:1])[0]
    together = enc(torch.cat([x[:1], 100 * x[1:]]))[0][:1]
    torch.testing.assert_close(alone, together)


def test_pixel_head_maps_channels_per_pixel():
    lik = Gaussian(2 * 8 * 8, 3, image_shape=(2, 8, 8))
    head = lik.loc_head
    h = torch.zeros(1, 3 * 64)
    h[0, 5] = 1.0  # channel 0, pixel 5 only
    out = head(h) - head(torch.zeros_like(h))
    changed = torch.nonzero(out[0].abs() > 0).ravel().tolist()
    assert set(changed) <= {5, 64 + 5}


def test_image_shape_must_match_n_vars():
    with pytest.raises(ValueError, match="C \\* H \\* W == n_vars"):
        Gaussian(100, 4, image_shape=(1, 8, 8))


@pytest.mark.parametrize("shape", [(1, 32, 32), (2, 28, 30)])
def test_channels_last_layout_on_cpu_leaves_outputs_and_gradients_unchanged(shape, monkeypatch):
    """The CPU fast path only changes the memory layout: values and gradients match the plain layout."""
    from mdlprob.nn import _conv

    torch.manual_seed(0)
    enc, dec = ConvEncoder(shape, shape[0], 5), ConvDecoder(5, shape)
    x = torch.rand(3, 2, shape[0] * shape[1] * shape[2])

    def run():
        enc.zero_grad()
        dec.zero_grad()
        mu, logvar = enc(x)
        out = dec(mu + logvar.exp())
        (out.square().mean() + mu.sum()).backward()
        grads = [p.grad.clone() for p in [*enc.parameters(), *dec.parameters()]]
        return mu.detach(), out.detach(), grads

    mu_fast, out_fast, grads_fast = run()
    assert out_fast.is_contiguous() and out_fast.shape == (3, 2, 8 * shape[1] * shape[2])
    monkeypatch.setattr(_conv, "_fast_layout", lambda h: h)
    mu_plain, out_plain, grads_plain = run()
    assert torch.allclose(mu_fast, mu_plain, atol=1e-5, rtol=1e-5)
    assert torch.allclose(out_fast, out_plain, atol=1e-5, rtol=1e-5)
    for g_fast, g_plain in zip(grads_fast, grads_plain, strict=True):
        assert torch.allclose(g_fast, g_plain, atol=1e-5, rtol=1e-4)


def test_fast_layout_is_channels_last_on_cpu():
    from mdlprob.nn._conv import _fast_layout

    h = _fast_layout(torch.rand(2, 3, 8, 8))
    assert h.is_contiguous(memory_format=torch.channels_last) and not h.is_contiguous()
