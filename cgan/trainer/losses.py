"""The three losses of CycleGAN (Zhu et al. 2017), as the official repository computes them.

- adversarial: least-squares GAN (paper §4, "we replace the negative log likelihood objective by a
  least-squares loss"): MSE of the discriminator's patch map to 1 (real) or 0 (fake);
- cycle consistency (eq. 2): L1 between an image and its reconstruction, weighted by λ (10);
- identity (§5.2, from Taigman et al.): L1 between G(y) and y, weighted by 0.5·λ in the official code.
"""
from __future__ import annotations

import torch
import torch.nn.functional as nnf


def gan_loss(prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """LSGAN: mean((D(·) - 1)²) for real targets, mean(D(·)²) for fake ones (computed in float32)."""
    prediction = prediction.float()
    target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
    return nnf.mse_loss(prediction, target)


def cycle_loss(reconstructed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """‖F(G(x)) − x‖₁ (mean absolute error), unweighted."""
    return nnf.l1_loss(reconstructed.float(), real.float())


def identity_loss(same: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """‖G(y) − y‖₁ (mean absolute error), unweighted."""
    return nnf.l1_loss(same.float(), real.float())
