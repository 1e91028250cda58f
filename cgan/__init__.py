"""cgan: CycleGAN from training to real-time video.

Subpackages follow the pipeline: `cgan.spec` (what a generator is, no torch) ← `cgan.trainer` ← `cgan.export`;
`cgan.spec` ← `cgan.runtime` ← `cgan.benchmarks`. Importing `cgan` or `cgan.runtime` never imports torch.
"""
__version__ = "0.1.0"
