"""The CycleGAN trainer (torch): networks, data, losses, training loop, checkpoints, pair writing."""
