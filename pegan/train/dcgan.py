"""The DCGAN training recipe (SWD table, rows swd-dcgan-a/b/c).

Official DCGAN recipe (Radford et al. 2016; mmgen ``dcgan_celeba-cropped_64_b128x1_300k``):
vanilla GAN loss (discriminator binary cross-entropy, non-saturating generator loss), Adam
lr 2e-4, betas (0.5, 0.999), one D step then one G step per iteration, no EMA (the snapshot
holds the trained generator, sampled in eval mode). 38.4M images at batch 128 = 300k
iterations in the paper preset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pegan.seeding import stream_seed
from pegan.train.distributed import all_reduce_grads
from pegan.train.losses import d_logistic_loss, g_nonsaturating_loss
from pegan.train.recipe import Recipe, StepOutput, TrainContext


@dataclass(frozen=True)
class DCGANSettings:
    lr: float = 2e-4              # official Adam lr (G and D)
    beta1: float = 0.5            # official Adam betas (0.5, 0.999)
    beta2: float = 0.999


class DCGANRecipe(Recipe):
    """Vanilla-GAN training of :mod:`pegan.models.dcgan` (see the module docstring)."""

    Settings = DCGANSettings

    def __init__(self, spec, ctx: TrainContext, settings: DCGANSettings) -> None:
        super().__init__(spec, ctx, settings)
        self.G, self.D = self.build_replicated_models()
        betas = (settings.beta1, settings.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=settings.lr, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=settings.lr, betas=betas)
        self.rng = torch.Generator(device=ctx.device).manual_seed(stream_seed(ctx.seed, ctx.rank))

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_G, "D": self.opt_D}

    def load_extra_state(self, state: dict) -> None:
        if "rng" in state:              # a checkpoint of before per-rank generator states
            self.rng.set_state(state["rng"])

    def generators(self) -> dict[str, torch.Generator]:
        return {"rng": self.rng}

    def eval_generator(self) -> nn.Module:
        return self.G

    def _z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.G.z_dim, generator=self.rng, device=self.ctx.device)

    def step(self, real: torch.Tensor, iteration: int) -> StepOutput:
        n = real.shape[0]
        self.G.train()
        self.D.train()
        # D step: logistic loss on reals and (detached) fakes.
        with torch.no_grad():
            fake = self.G(self._z(n))
        self.opt_D.zero_grad(set_to_none=True)
        d_loss = d_logistic_loss(self.D(real), self.D(fake))
        d_loss.backward()
        all_reduce_grads(self.D.parameters())
        self.opt_D.step()
        # G step: non-saturating loss.
        self.opt_G.zero_grad(set_to_none=True)
        g_loss = g_nonsaturating_loss(self.D(self.G(self._z(n))))
        g_loss.backward()
        all_reduce_grads(self.G.parameters())
        self.opt_G.step()
        return StepOutput({"d_loss": d_loss.detach(), "g_loss": g_loss.detach()})
