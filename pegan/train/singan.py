"""The SinGAN training recipe: one image, one stage per pyramid scale, coarse to fine.

It runs inside the generic loop (:mod:`pegan.train.loop`) like every family, so it gets the
same checkpoint/resume, time budget, NaN guard and logs; one loop iteration is one SinGAN
iteration of the current stage, and stage ``s`` covers iterations
``[s * iters_per_scale, (s + 1) * iters_per_scale)``.

Official recipe (mmgen ``singan_*`` configs; reference §7):

* per stage, only the current generator and discriminator blocks train, each with its own
  Adam (lr 5e-4, betas (0.5, 0.999)) and a x0.1 lr step at 80 % of the stage (official
  ``MultiStepLR(milestones=[1600])`` of 2000 iterations);
* 3 discriminator steps then 3 generator steps per iteration; WGAN loss with a gradient
  penalty of weight 0.1 (per-pixel gradient norm, ``norm_mode='pixel'``); generator loss
  ``-D(fake) + 10 * MSE(reconstruction, real)``;
* noise amplitude 1 at stage 0, then ``0.1 * RMSE(up-sampled reconstruction, real)``;
* a new block starts from the previous stage's weights when their shapes match;
* finished stages run in eval mode (frozen, BatchNorm running statistics), as the original.

The training image: the dataset's single image with its aspect ratio kept, longer side
``max_size`` (exactly what ``pegan prepare-data`` writes). It is rebuilt from the dataset spec
because the loop's data loader serves square crops, which SinGAN must not use; the first
batch of the loop is compared with the same crop of it, so a --data file holding another
image is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import autograd, nn

from pegan.errors import PeganError
from pegan.models import singan
from pegan.seeding import stream_seed
from pegan.train.distributed import all_reduce_grads
from pegan.train.recipe import Recipe, Schedule, StepOutput, TrainContext


@dataclass(frozen=True)
class SinGANSettings:
    lr_g: float = 5e-4                # official Adam lr (G and D)
    lr_d: float = 5e-4
    beta1: float = 0.5                # official betas (0.5, 0.999)
    beta2: float = 0.999
    d_steps: int = 3                  # official disc_steps
    g_steps: int = 3                  # official generator_steps
    gp_weight: float = 0.1            # official GradientPenaltyLoss weight (pixel norm)
    rec_weight: float = 10.0          # official reconstruction MSE weight
    noise_amp_init: float = 0.1       # official noise_weight_init
    lr_step_at: float = 0.8           # lr x gamma after this fraction of a stage (1600/2000)
    lr_gamma: float = 0.1


def load_training_image(spec) -> tuple[torch.Tensor, torch.Tensor]:
    """The single training image [1, 3, H, W] in [-1, 1], longer side max_size, and the
    square crop [3, max_size, max_size] the loop's data loader makes of it (a consistency
    check of the --data file)."""
    from pegan.data.images import square
    from pegan.data.prepare import is_single_image, source_images

    if not is_single_image(spec.dataset_spec):
        raise PeganError(f"SinGAN experiment {spec.name} needs a single-image dataset "
                         f"(kind skimage, or a folder entry whose path is one image file); "
                         f"{spec.dataset} is not")
    size = int(spec.singan["max_size"])
    _, images = source_images(spec.dataset, spec.dataset_spec, 1, size)
    img = next(iter(images))
    return _tensor(img)[None].contiguous(), _tensor(square(img, size))


def _tensor(img) -> torch.Tensor:
    """PIL RGB -> [3, H, W] float in [-1, 1] (as the loop's data loader converts)."""
    from pegan.data.images import to_array

    return torch.from_numpy(to_array(img).copy()).permute(2, 0, 1).to(torch.float32) / 127.5 - 1.0


def image_pyramid(image: torch.Tensor, sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """The real image at every stage size (antialiased bicubic, clamped to [-1, 1])."""
    return [image if tuple(image.shape[-2:]) == tuple(s) else
            F.interpolate(image, size=tuple(s), mode="bicubic", align_corners=False,
                          antialias=True).clamp(-1, 1)
            for s in sizes]


def pixel_gradient_penalty(D: nn.Module, stage: int, real: torch.Tensor, fake: torch.Tensor,
                           rng: torch.Generator) -> torch.Tensor:
    """WGAN-GP with the per-pixel gradient norm over channels (official norm_mode='pixel')."""
    alpha = torch.rand(1, generator=rng, device=rng.device).to(real.device)
    mixed = torch.lerp(fake.detach(), real.detach(), alpha).requires_grad_(True)
    (grad,) = autograd.grad(D(mixed, stage).sum(), mixed, create_graph=True)
    return (grad.norm(2, dim=1) - 1).pow(2).mean()


class SinGANRecipe(Recipe):
    """Stage-wise SinGAN training of :mod:`pegan.models.singan` (see the module docstring)."""

    Settings = SinGANSettings
    flip = False

    def __init__(self, spec, ctx: TrainContext, settings: SinGANSettings) -> None:
        super().__init__(spec, ctx, settings)
        image, self._loader_view = load_training_image(spec)
        sizes = singan.pyramid_sizes(*image.shape[-2:], max_size=int(spec.singan["max_size"]),
                                     min_size=int(spec.singan["min_size"]),
                                     scale_factor=float(spec.singan.get("scale_factor", 0.75)))
        self.reals = [r.to(ctx.device) for r in image_pyramid(image, sizes)]
        self.G_kwargs = singan.generator_kwargs(spec, sizes)
        self.D_kwargs = singan.discriminator_kwargs(spec, len(sizes))
        self.G = singan.Generator(**self.G_kwargs).to(ctx.device)
        self.D = singan.Discriminator(**self.D_kwargs).to(ctx.device)
        self.rng = torch.Generator(device=ctx.device).manual_seed(stream_seed(ctx.seed, ctx.rank))
        with torch.no_grad():       # the reconstruction noise: random at stage 0, zeros after
            fixed = self.G.fixed_noise_0
            fixed.copy_(torch.randn(fixed.shape, generator=self.rng, device=ctx.device))
        self.iters_per_scale = int(spec.singan["iters_per_scale"])
        self.stage = -1
        self.opt_G: torch.optim.Optimizer | None = None
        self.opt_D: torch.optim.Optimizer | None = None
        self._begin_stage(0, fresh=True)

    # ------------------------------------------------------------------ interface
    @property
    def num_stages(self) -> int:
        return self.G.num_stages

    def schedule(self) -> Schedule:
        total = self.num_stages * self.iters_per_scale
        return Schedule(total_iterations=total, images_per_iteration=1,
                        snapshot_iterations=(total,))

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_G, "D": self.opt_D}

    def extra_state(self) -> dict:
        return {"stage": self.stage}

    def load_extra_state(self, state: dict) -> None:
        if "rng" in state:              # a checkpoint of before per-rank generator states
            self.rng.set_state(state["rng"])

    def generators(self) -> dict[str, torch.Generator]:
        return {"rng": self.rng}

    def load_state_dict(self, state: dict) -> None:
        # The optimisers belong to a stage: rebuild that stage's before loading their state.
        self._begin_stage(int(state["extra"]["stage"]), fresh=False)
        super().load_state_dict(state)

    def eval_generator(self) -> nn.Module:
        return self.G

    def write_snapshot(self, path: Path, *, kimg: float, extra: dict | None = None) -> None:
        from pegan.snapshot import save_snapshot

        save_snapshot(path, arch="singan", experiment=self.spec.name, G_kwargs=self.G_kwargs,
                      G_ema=self.G, kimg=kimg, spec=self.spec.to_dict(),
                      extra={"seed": self.ctx.seed, "real": self.reals[-1][0].detach().cpu(),
                             "trained_stages": self.stage + 1, **(extra or {})})

    # ------------------------------------------------------------------- stages
    def _begin_stage(self, stage: int, *, fresh: bool) -> None:
        """Make `stage` the trained one: freeze the others, new optimisers; when `fresh`,
        warm-start its blocks from the previous stage and set its noise amplitude."""
        if fresh and stage > 0:
            for net in (self.G, self.D):
                _copy_if_same_shapes(net.blocks[stage - 1], net.blocks[stage])
            with torch.no_grad():
                self.G.eval()
                recon = self.G(1, mode="recon", stage=stage - 1)
                up = singan._resize(recon, self.reals[stage].shape[-2:])
                rmse = F.mse_loss(up, self.reals[stage]).sqrt()
                self.G.noise_amps[stage] = self.settings.noise_amp_init * rmse
        self.stage = stage
        for net in (self.G, self.D):
            net.requires_grad_(False)
            net.blocks[stage].requires_grad_(True)
        s = self.settings
        self.opt_G = torch.optim.Adam(self.G.blocks[stage].parameters(), lr=s.lr_g,
                                      betas=(s.beta1, s.beta2))
        self.opt_D = torch.optim.Adam(self.D.blocks[stage].parameters(), lr=s.lr_d,
                                      betas=(s.beta1, s.beta2))

    def _check_data(self, real: torch.Tensor) -> None:
        view = self._loader_view.to(real.device)
        self._loader_view = None
        if real.shape[1:] != view.shape or (real[0] - view).abs().max() > 1.5 / 127.5:
            raise PeganError(f"--data does not hold the image of dataset {self.spec.dataset} "
                             f"at {self.spec.singan['max_size']} px that {self.spec.name} trains "
                             "on; pass the zip written by `pegan prepare-data` for it")

    def _set_modes(self) -> None:
        self.G.train()
        self.D.train()
        for block in self.G.blocks[: self.stage]:
            block.eval()                      # finished stages: frozen, running BN statistics

    def _set_lr(self, iteration_in_stage: int) -> None:
        s = self.settings
        factor = s.lr_gamma if iteration_in_stage >= int(s.lr_step_at * self.iters_per_scale) else 1.0
        for opt, lr in ((self.opt_G, s.lr_g), (self.opt_D, s.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * factor

    # --------------------------------------------------------------------- step
    def step(self, real: torch.Tensor, iteration: int) -> StepOutput:
        """One SinGAN iteration of the current stage. The loop's `real` batch (a square crop
        of the --data image) is only checked, once, against the image trained on."""
        if real is not None and self._loader_view is not None:
            self._check_data(real)
        stage = min(iteration // self.iters_per_scale, self.num_stages - 1)
        if stage != self.stage:
            self._begin_stage(stage, fresh=True)
        self._set_lr(iteration - stage * self.iters_per_scale)
        self._set_modes()
        s, x = self.settings, self.reals[stage]
        for _ in range(s.d_steps):
            with torch.no_grad():
                fake = self.G(1, stage=stage, generator=self.rng)
            self.opt_D.zero_grad(set_to_none=True)
            wgan = self.D(fake, stage).mean() - self.D(x, stage).mean()
            gp = pixel_gradient_penalty(self.D, stage, x, fake, self.rng)
            d_loss = wgan + s.gp_weight * gp
            d_loss.backward()
            all_reduce_grads(self.D.blocks[stage].parameters())
            self.opt_D.step()
        for _ in range(s.g_steps):
            self.opt_G.zero_grad(set_to_none=True)
            adv = -self.D(self.G(1, stage=stage, generator=self.rng), stage).mean()
            rec = F.mse_loss(self.G(1, mode="recon", stage=stage), x)
            g_loss = adv + s.rec_weight * rec
            g_loss.backward()
            all_reduce_grads(self.G.blocks[stage].parameters())
            self.opt_G.step()
        return StepOutput({"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
                           "rec": rec.detach(), "gp": gp.detach()},
                          {"stage": float(stage), "noise_amp": float(self.G.noise_amps[stage])})


def _copy_if_same_shapes(src: nn.Module, dst: nn.Module) -> None:
    """Official warm start: copy a block's weights into the next when every shape matches."""
    a, b = src.state_dict(), dst.state_dict()
    if a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a):
        dst.load_state_dict(a)
