"""The StyleGAN2 recipe of the paper, single-scale and MS-PIE (reference §1 and §4).

One iteration (official ``StaticUnconditionalGAN`` / ``MSPIEStyleGAN2`` order):

1. draw the training size (:mod:`pegan.train.mspie`; the same on every rank) and resize the
   real batch to it;
2. D step: logistic loss on G(z) (no grad) and reals, + lazy R1 on reals every
   ``r1_interval`` iterations (weight gamma/2 * interval), one Adam step;
3. G step: non-saturating loss on a fresh G(z), + lazy path-length regularisation every
   ``pl_interval`` iterations on its own batch (b // pl_batch_shrink, weight pl_weight *
   interval), one Adam step;
4. G_ema update.

Style mixing (probability ``mix_prob``) happens inside the generator for every G(z).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from pegan.train import distributed, losses, mspie
from pegan.train.ema import ema_momentum, update_ema
from pegan.train.recipe import Recipe, StepOutput


@dataclass(frozen=True)
class StyleGAN2Settings:
    """Training hyper-parameters; every default is the official value (reference §1, §4)."""

    g_lr: float = 0.002 * 4 / 5                   # official 0.0016: 0.002 x lazy ratio 4/5
    g_beta1: float = 0.0
    g_beta2: float = 0.99 ** (4 / 5)              # 0.991992
    d_lr: float = 0.002 * 16 / 17                 # 0.00188235: lazy ratio 16/17
    d_beta1: float = 0.0
    d_beta2: float = 0.99 ** (16 / 17)            # 0.990585
    r1_gamma: float = 10.0                        # R1 weight gamma (loss weight gamma/2*interval = 80)
    r1_interval: int = 16                         # lazy R1 every 16 iterations (0: never)
    pl_weight: float = 2.0                        # path-length weight (loss weight 2*interval = 8)
    pl_interval: int = 4                          # lazy path length every 4 iterations (0: never)
    pl_batch_shrink: int = 2                      # PL batch = max(1, per-GPU batch // 2)
    pl_decay: float = 0.01                        # running-mean decay of the path length
    pl_scale: str = "base"                        # official: PL at the base scale (mmgen calls G
                                                  # without chosen_scale); "drawn": at the MS-PIE size
    mix_prob: float = 0.9                         # style-mixing probability during training
    ema_kimg_paper: float = 10.0                  # EMA half-life, thousands of *paper* images
                                                  # (converted with the preset's kimg_per_mimg)
    ema_nimg_per_step: float = 32.0               # official hook hard-codes 32 images per update
    ema_kimg: float | None = None                 # EMA half-life in kimg of *this run's* images
                                                  # (stylegan2-ada's ema_kimg); None: ema_kimg_paper
    ema_rampup: float | None = None               # half-life <= ema_rampup x images seen so far
                                                  # (stylegan2-ada's ema_rampup); None: no ramp-up
    scale_sampling: str = "intended"              # MS-PIE draw: "intended" [0.5, 0.25, 0.25] or
                                                  # "official-uniform" (np.random.choice bug)
    scale_probabilities: list | None = None       # explicit per-scale probabilities (None: intended)

    def __post_init__(self) -> None:
        from pegan.errors import PeganError

        if self.pl_scale not in ("base", "drawn"):
            raise PeganError(f"pl_scale {self.pl_scale!r}: choose 'base' (official) or 'drawn'")
        if self.scale_sampling not in mspie.SAMPLING_MODES:
            raise PeganError(f"scale_sampling {self.scale_sampling!r}: choose "
                             f"{' or '.join(mspie.SAMPLING_MODES)}")


def _requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class StyleGAN2Recipe(Recipe):
    """StyleGAN2 (Table 2) and MS-PIE StyleGAN2 (Table 5) training."""

    Settings = StyleGAN2Settings
    flip = True

    def __init__(self, spec, ctx, settings: StyleGAN2Settings) -> None:
        super().__init__(spec, ctx, settings)
        s = settings
        self.G, self.D = self.build_replicated_models()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.g_opt = torch.optim.Adam(self.G.parameters(), lr=s.g_lr, betas=(s.g_beta1, s.g_beta2))
        self.d_opt = torch.optim.Adam(self.D.parameters(), lr=s.d_lr, betas=(s.d_beta1, s.d_beta2))
        self.scales = list(spec.scales)
        self.sampler = mspie.ScaleSampler(self.scales, mode=s.scale_sampling,
                                          probabilities=s.scale_probabilities, seed=ctx.seed)
        self.pl_mean = torch.zeros((), device=ctx.device)
        self.ema_half_life_kimg = (s.ema_kimg if s.ema_kimg is not None
                                   else s.ema_kimg_paper / 1000.0 * spec.kimg_per_mimg)
        self.z_dim = getattr(self.G, "z_dim", None) or self.G_kwargs.get("style_dim", 512)

    # ------------------------------------------------------------------- interface
    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.g_opt, "D": self.d_opt}

    def extra_state(self) -> dict:
        return {"pl_mean": self.pl_mean.detach().cpu(), "scale_sampler": self.sampler.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.pl_mean = state["pl_mean"].to(self.ctx.device)
        self.sampler.load_state_dict(state["scale_sampler"])

    def eval_generator(self) -> nn.Module:
        return self.G_ema

    # ------------------------------------------------------------------- one iteration
    def _g_scale(self, px: int) -> int | None:
        return None if px == self.spec.resolution else px

    def _z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=self.ctx.device)

    def draw_scale(self) -> int:
        """This iteration's size. Every rank's sampler has the run's seed and the same
        checkpointed state, so all ranks draw the same size without a broadcast (the replica
        check at the end of a data-parallel run compares the samplers' states too)."""
        return self.sampler.draw()

    def step(self, real: torch.Tensor, iteration: int) -> StepOutput:
        s = self.settings
        G, D = self.G, self.D
        scale = self.draw_scale()
        real = mspie.resize_real(real, scale)
        b = real.shape[0]
        out: dict[str, torch.Tensor] = {}

        # -- discriminator
        _requires_grad(D, True)
        with torch.no_grad():
            fake = G(self._z(b), self._g_scale(scale), mix_prob=s.mix_prob)
        do_r1 = s.r1_interval > 0 and iteration % s.r1_interval == 0
        real_in = real.detach().requires_grad_(do_r1)
        real_logits, fake_logits = D(real_in), D(fake)
        d_loss = losses.d_logistic_loss(real_logits, fake_logits)
        total = d_loss
        out["D_loss"] = d_loss.detach()
        out["D_real"] = real_logits.detach().mean()
        out["D_fake"] = fake_logits.detach().mean()
        if do_r1:
            r1 = losses.r1_penalty(real_logits, real_in)
            total = total + r1 * (s.r1_gamma / 2 * s.r1_interval)
            out["R1"] = r1.detach()
        self.d_opt.zero_grad(set_to_none=True)
        total.backward()
        distributed.all_reduce_grads(D.parameters())
        self.d_opt.step()

        # -- generator
        _requires_grad(D, False)
        fake = G(self._z(b), self._g_scale(scale), mix_prob=s.mix_prob)
        g_loss = losses.g_nonsaturating_loss(D(fake))
        total = g_loss
        out["G_loss"] = g_loss.detach()
        if s.pl_interval > 0 and iteration % s.pl_interval == 0:
            pl_px = self.spec.resolution if s.pl_scale == "base" else scale
            n = max(1, b // s.pl_batch_shrink)
            img, latents = G(self._z(n), self._g_scale(pl_px), mix_prob=s.mix_prob,
                             return_latents=True)
            lengths = losses.path_lengths(img, latents)
            self.pl_mean = distributed.all_reduce_mean(
                losses.update_path_mean(self.pl_mean, lengths, s.pl_decay))
            pl = losses.path_length_penalty(lengths, self.pl_mean)
            total = total + pl * (s.pl_weight * s.pl_interval)
            out["PL"] = pl.detach()
            out["PL_mean"] = self.pl_mean.detach()
        self.g_opt.zero_grad(set_to_none=True)
        total.backward()
        distributed.all_reduce_grads(G.parameters())
        self.g_opt.step()
        _requires_grad(D, True)

        update_ema(self.G_ema, G, self.ema_beta(iteration))
        return StepOutput(out, {"scale": float(scale)})

    def ema_beta(self, iteration: int) -> float:
        """G_ema's momentum at `iteration`: the half-life, ramped up to `ema_rampup` x the
        images seen before this iteration when that is set (stylegan2-ada)."""
        s, half_life = self.settings, self.ema_half_life_kimg
        if s.ema_rampup is not None:
            half_life = min(half_life, iteration * self.spec.batch / 1000.0 * s.ema_rampup)
        return ema_momentum(half_life, s.ema_nimg_per_step)
