"""StyleGAN2 losses and regularisers (official mmgen: ``wgan-logistic-ns`` GANLoss,
``R1GradientPenalty(norm_mode='HWC')``, ``GeneratorPathRegularizer``; reference §1)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import autograd


def d_logistic_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator logistic loss: softplus(D(fake)) + softplus(-D(real)), batch means."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: softplus(-D(G(z)))."""
    return F.softplus(-fake_logits).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1: squared gradient norm of D on reals, summed over C*H*W, averaged over the batch.

    `real_images` must have had ``requires_grad`` set before D saw them.
    """
    (grad,) = autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()


def path_lengths(images: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
    """Per-sample |J_w^T y| for y ~ N(0, I)/sqrt(H*W), averaged over the W+ layers: [N]."""
    noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
    (grad,) = autograd.grad((images * noise).sum(), latents, create_graph=True)
    return grad.pow(2).sum(2).mean(1).sqrt()


def path_length_penalty(lengths: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """(|J^T y| - a)^2 averaged over the batch, with `a` the (detached) running mean."""
    return (lengths - mean.detach()).pow(2).mean()


def update_path_mean(mean: torch.Tensor, lengths: torch.Tensor, decay: float) -> torch.Tensor:
    """Running mean of the path lengths: a + decay * (mean(lengths) - a)."""
    return (mean + decay * (lengths.detach().mean() - mean)).detach()
