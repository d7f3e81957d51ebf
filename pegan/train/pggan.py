"""The PGGAN training recipe (SWD table, rows swd-pggan-a/b/c).

Official PGGAN recipe (Karras et al. 2018; mmgen ``pggan_celeba-cropped_128_g8_12Mimgs``):

* WGAN-GP: ``D(fake) - D(real) + 10 * GP + 0.001 * D(real)^2`` (drift), GP on random
  interpolates with the gradient norm over C*H*W; generator loss ``-D(G(z))``; one D step
  then one G step per iteration;
* Adam lr 1e-3, betas (0, 0.99), eps 1e-8; optimiser moments reset when a new level starts
  (official ``reset_opt_for_new_lod``);
* generator EMA with beta 0.999 per iteration (official G smoothing);
* growth (mmgen ``nkimgs_per_scale``): 600k images at 4x4, then 1200k per level, of which the
  first 600k fade the new level in (``transition_kimgs``); the last level trains to the end
  of the run. Paper Mimg are mapped through the preset's ``kimg_per_mimg``, so every preset
  grows through every level. Real images are average-pooled to the current level and faded
  the same way as the generator output.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import autograd, nn

from pegan.seeding import stream_seed
from pegan.train.distributed import all_reduce_grads
from pegan.train.ema import update_ema
from pegan.train.recipe import Recipe, StepOutput, TrainContext


@dataclass(frozen=True)
class PGGANSettings:
    lr: float = 1e-3                  # official Adam lr (G and D)
    beta1: float = 0.0                # official Adam betas (0, 0.99)
    beta2: float = 0.99
    gp_weight: float = 10.0           # official WGAN-GP weight
    drift_weight: float = 0.001       # official epsilon_drift
    ema_beta: float = 0.999           # official G smoothing per iteration
    first_level_mimg: float = 0.6     # paper Mimg at 4x4 (official 600 kimg)
    level_mimg: float = 1.2           # paper Mimg per later level, fade-in included (1200 kimg)
    transition_mimg: float = 0.6      # paper Mimg of each fade-in (official 600 kimg)
    reset_optimizer: bool = True      # reset Adam moments at each new level (official)


def growth(kimg: float, num_levels: int, settings: PGGANSettings,
           kimg_per_mimg: float) -> tuple[int, float]:
    """(level, alpha) after `kimg` images: level 0 = 4x4, alpha the fade-in of that level."""
    first = settings.first_level_mimg * kimg_per_mimg
    per_level = settings.level_mimg * kimg_per_mimg
    fade = settings.transition_mimg * kimg_per_mimg
    if kimg < first:
        return 0, 1.0
    level = min(num_levels - 1, 1 + int((kimg - first) // per_level))
    start = first + (level - 1) * per_level
    alpha = 1.0 if fade <= 0 else min(1.0, (kimg - start) / fade)
    return level, alpha


def reals_at(real: torch.Tensor, level: int, alpha: float) -> torch.Tensor:
    """Real images pooled to the native size of `level` and faded like the generator."""
    size = 4 * 2 ** level
    x = F.avg_pool2d(real, real.shape[-1] // size) if real.shape[-1] != size else real
    if alpha < 1.0 and level > 0:
        low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(low, x, alpha)
    return x


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     rng: torch.Generator) -> torch.Tensor:
    """WGAN-GP: (|grad_x D(x)| - 1)^2 on per-sample random interpolates, norm over C*H*W."""
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=rng, device=real.device)
    mixed = torch.lerp(fake.detach(), real.detach(), eps).requires_grad_(True)
    (grad,) = autograd.grad(D(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


class PGGANRecipe(Recipe):
    """Progressive WGAN-GP training of :mod:`pegan.models.pggan` (see the module docstring)."""

    Settings = PGGANSettings

    def __init__(self, spec, ctx: TrainContext, settings: PGGANSettings) -> None:
        super().__init__(spec, ctx, settings)
        self.G, self.D = self.build_replicated_models()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        betas = (settings.beta1, settings.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=settings.lr, betas=betas, eps=1e-8)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=settings.lr, betas=betas, eps=1e-8)
        self.rng = torch.Generator(device=ctx.device).manual_seed(stream_seed(ctx.seed, ctx.rank))
        self.level = -1              # level of the last step (optimiser reset on change)
        self.images_per_iteration = self.schedule().images_per_iteration

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_G, "D": self.opt_D}

    def extra_state(self) -> dict:
        return {"level": self.level}

    def load_extra_state(self, state: dict) -> None:
        if "rng" in state:              # a checkpoint of before per-rank generator states
            self.rng.set_state(state["rng"])
        self.level = int(state.get("level", -1))

    def generators(self) -> dict[str, torch.Generator]:
        return {"rng": self.rng}

    def eval_generator(self) -> nn.Module:
        return self.G_ema

    def _z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.G.z_dim, generator=self.rng, device=self.ctx.device)

    def step(self, real: torch.Tensor, iteration: int) -> StepOutput:
        kimg = iteration * self.images_per_iteration / 1000.0
        level, alpha = growth(kimg, self.G.num_levels, self.settings, self.spec.kimg_per_mimg)
        if level != self.level and self.settings.reset_optimizer:
            self.opt_G.state.clear()
            self.opt_D.state.clear()
        self.level = level
        for net in (self.G, self.D, self.G_ema):
            net.set_progress(level, alpha)
        self.G.train()
        self.D.train()
        real = reals_at(real, level, alpha)
        n = real.shape[0]

        # D step: WGAN-GP + drift.
        with torch.no_grad():
            fake = self.G.synthesize(self._z(n))
        self.opt_D.zero_grad(set_to_none=True)
        d_real, d_fake = self.D(real), self.D(fake)
        gp = gradient_penalty(self.D, real, fake, self.rng)
        drift = d_real.pow(2).mean()
        wgan = d_fake.mean() - d_real.mean()
        d_loss = wgan + self.settings.gp_weight * gp + self.settings.drift_weight * drift
        d_loss.backward()
        all_reduce_grads(self.D.parameters())
        self.opt_D.step()

        # G step.
        self.opt_G.zero_grad(set_to_none=True)
        g_loss = -self.D(self.G.synthesize(self._z(n))).mean()
        g_loss.backward()
        all_reduce_grads(self.G.parameters())
        self.opt_G.step()
        update_ema(self.G_ema, self.G, self.settings.ema_beta)
        return StepOutput({"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "gp": gp.detach()},
                          {"level": float(level), "alpha": float(alpha), "res": float(4 * 2 ** level)})
