"""Runtime backends, one small module per family (base, ort, torch_backend, tensorrt, cuda helpers).

Nothing heavy is imported here: cgan.runtime.registry maps backend names to "module:Class" strings and
imports a backend's module only when it is used or checked.
"""
