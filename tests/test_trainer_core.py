"""Trainer pieces against the paper and the official repository: networks, losses, pool, LR policy, data."""
from __future__ import annotations

import random

import cv2
import numpy as np
import pytest
import torch

from cgan._cli import run
from cgan.spec import GeneratorSpec
from cgan.trainer.cli import cli
from cgan.trainer.data import ResumableSampler, Transform, read_rgb
from cgan.trainer.losses import cycle_loss, gan_loss, identity_loss
from cgan.trainer.networks import build_discriminator, build_generator, count_parameters
from cgan.trainer.pool import ImagePool
from cgan.trainer.train import lr_factor
from cgan.trainer.weights import load_generator


# ---- networks vs the official model ------------------------------------------------------------------
@pytest.mark.parametrize("blocks,count,last", [(9, 11_378_179, 26), (6, 7_837_699, 23)])
def test_generator_parameters_and_official_keys(blocks, count, last):
    net = build_generator(GeneratorSpec(blocks=blocks, ngf=64), init=False)
    sd = net.state_dict()
    assert count_parameters(net) == count
    assert "model.1.weight" in sd and f"model.{last}.bias" in sd and f"model.{last + 1}.weight" not in sd
    assert tuple(sd["model.10.conv_block.5.weight"].shape) == (256, 256, 3, 3)  # 2nd conv of block 1
    assert tuple(sd[f"model.{last}.weight"].shape) == (3, 64, 7, 7)
    assert not any("running" in k for k in sd)  # instance norm without running stats


def test_patchgan_parameters_and_30x30_output():
    d = build_discriminator()
    assert count_parameters(d) == 2_764_737
    with torch.no_grad():
        assert tuple(d(torch.zeros(1, 3, 256, 256)).shape) == (1, 1, 30, 30)


def test_import_official_strict_and_outputs_match(tmp_path, capsys):
    torch.manual_seed(0)
    spec = GeneratorSpec(blocks=2, ngf=8)
    g_a, g_b = build_generator(spec), build_generator(spec)
    torch.save(g_a.state_dict(), tmp_path / "latest_net_G_A.pth")
    # DataParallel-era checkpoints carry a `module.` prefix: stripped on import
    torch.save({"module." + k: v for k, v in g_b.state_dict().items()}, tmp_path / "latest_net_G_B.pth")
    out = tmp_path / "pair"
    code = run(cli, ["import-official", str(tmp_path / "latest_net_G_A.pth"), str(tmp_path / "latest_net_G_B.pth"),
                     "--out", str(out), "--domains", "summer,winter"])
    assert code == 0, capsys.readouterr().err
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        for gen, ref in (("G", g_a), ("F", g_b)):
            torch.testing.assert_close(load_generator(out, gen)(x), ref.eval()(x), rtol=0, atol=0)
    # one file + --direction F = a lone G_B
    code = run(cli, ["import-official", str(tmp_path / "latest_net_G_B.pth"), "--direction", "F",
                     "--out", str(tmp_path / "lone")])
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "lone").glob("*.safetensors")) == ["F.safetensors"]


def test_import_official_refuses_foreign_state_dict(tmp_path, capsys):
    torch.save({"conv.weight": torch.zeros(3, 3)}, tmp_path / "x.pth")
    code = run(cli, ["import-official", str(tmp_path / "x.pth"), "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip()
    assert code == 3 and err.startswith("error:") and "\n" not in err
    assert not (tmp_path / "p" / "pair.json").exists()


def _batch_norm_state(spec: GeneratorSpec) -> dict:
    """An official generator made with --norm batch: affine norms with running stats after every conv."""
    import torch.nn as nn

    net = build_generator(spec, init=False)
    for name, module in list(net.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.InstanceNorm2d):
                setattr(module, child_name, nn.BatchNorm2d(child.num_features))
    return net.state_dict()


def test_import_official_says_what_is_wrong_and_names_the_file(tmp_path, capsys):
    """Batch-norm checkpoints said only '181075 weights, a 9-block ngf-8 generator has 180419'; a spec out of
    range (65 blocks) named no file and exited 2; two architectures were two whole GeneratorSpec reprs; an
    official checkpoints folder was 'state_dict not found'; --direction with two files was ignored; a plain
    pickle printed torch's UserWarning before the error line; NaN weights and one file given twice were imported."""
    import pickle

    spec = GeneratorSpec(blocks=2, ngf=8)
    torch.save(_batch_norm_state(spec), tmp_path / "bn.pth")
    torch.save(build_generator(GeneratorSpec(blocks=2, ngf=8, dropout=True)).state_dict(), tmp_path / "drop.pth")
    torch.save(build_generator(spec).state_dict(), tmp_path / "latest_net_G_A.pth")
    state = build_generator(GeneratorSpec(blocks=64, ngf=4)).state_dict()
    last = max(int(k.split(".")[1]) for k in state)
    state[f"model.{10 + 64}.conv_block.1.weight"] = state["model.10.conv_block.1.weight"]  # a 65th block
    state[f"model.{10 + 64}.conv_block.5.weight"] = state["model.10.conv_block.5.weight"]
    state = {(f"model.{last + 1}.{k.split('.', 2)[2]}" if k.startswith(f"model.{last}.") else k): v
             for k, v in state.items()}
    torch.save(state, tmp_path / "b65.pth")
    with open(tmp_path / "plain.pth", "wb") as f:
        pickle.dump({"x": 1}, f, protocol=4)
    torch.save({k: v.fill_(float("nan")) if v.is_floating_point() else v
                for k, v in build_generator(spec).state_dict().items()}, tmp_path / "nan.pth")
    cases = [(["bn.pth"], 3, "bn.pth is not an official ResnetGenerator checkpoint (batch norm (--norm batch)"),
             (["b65.pth"], 3, "b65.pth: invalid generator spec: blocks must be an integer 1..64, got 65"),
             (["latest_net_G_A.pth", "drop.pth"], 3, "different architectures (dropout False vs True): a pair "
                                                      "holds two generators of one architecture"),
             (["."], 2, "is an official checkpoints folder: give its generator files, e.g. "),
             (["latest_net_G_A.pth", "drop.pth", "--direction", "F"], 2, "--direction picks the generator of one "
                                                                          "file"),
             (["plain.pth"], 3, "plain.pth is not a loadable PyTorch state_dict"),
             # a diverged run's weights were imported (exit 0), and fine-tuning from them blamed --lr
             (["nan.pth"], 3, "nan.pth holds NaN or infinite weights (model.1.weight, ...): the run that saved it "
                              "diverged"),
             # the same file twice made F a copy of G, silently
             (["latest_net_G_A.pth", "latest_net_G_A.pth"], 2, "hold the same generator: give G_A (X→Y")]
    for args, code, needle in cases:
        got = run(cli, ["import-official", *(str(tmp_path / a) if not a.startswith("-") and a != "F" else a
                                             for a in args), "--out", str(tmp_path / "p")])
        err = capsys.readouterr().err.strip()
        assert got == code and err.startswith("error:") and "\n" not in err and needle in err, (args, err)
    assert not (tmp_path / "p").exists()


# ---- losses on known tensors ------------------------------------------------------------------------
def test_lsgan_loss_values():
    pred = torch.tensor([[0.0, 0.5], [1.0, 2.0]])
    assert gan_loss(pred, True).item() == pytest.approx((1 + 0.25 + 0 + 1) / 4)
    assert gan_loss(pred, False).item() == pytest.approx((0 + 0.25 + 1 + 4) / 4)
    assert gan_loss(pred.half(), True).dtype == torch.float32


def test_l1_losses_values():
    a, b = torch.tensor([1.0, -1.0, 0.5, 0.0]), torch.tensor([0.0, 0.0, 0.0, 0.0])
    assert cycle_loss(a, b).item() == pytest.approx(2.5 / 4)
    assert identity_loss(b, a).item() == pytest.approx(2.5 / 4)


def test_generator_and_discriminator_loss_arithmetic(monkeypatch):
    """Total G loss = GAN(G) + GAN(F) + λ·(cyc_X + cyc_Y) + 0.5·λ·(idt_X + idt_Y); D loss halved."""
    from cgan.trainer.config import TrainConfig
    from cgan.trainer.train import CycleGAN

    cfg = TrainConfig(name="t", blocks=1, ngf=4, ndf=4, n_layers_d=2, size=16, load_size=16)
    m = CycleGAN(cfg, torch.device("cpu"))
    x, y = torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16) * 2 - 1
    total, parts, img = m.generator_loss(x, y)
    with torch.no_grad():
        expect_cyc_x = (m.F(m.G(x)) - x).abs().mean() * 10
        expect_idt_y = (m.G(y) - y).abs().mean() * 5
        expect_g = ((m.D_Y(m.G(x)) - 1) ** 2).mean()
        expect_total = (expect_g + ((m.D_X(m.F(y)) - 1) ** 2).mean() + expect_cyc_x
                        + (m.G(m.F(y)) - y).abs().mean() * 10 + expect_idt_y + (m.F(x) - x).abs().mean() * 5)
    assert parts["cycle_X"].item() == pytest.approx(expect_cyc_x.item(), rel=1e-5)
    assert parts["idt_Y"].item() == pytest.approx(expect_idt_y.item(), rel=1e-5)
    assert parts["G"].item() == pytest.approx(expect_g.item(), rel=1e-5)
    assert total.item() == pytest.approx(expect_total.item(), rel=1e-5)
    d = m.discriminator_loss(m.D_X, x, img["fake_x"])
    with torch.no_grad():
        expect_d = 0.5 * (((m.D_X(x) - 1) ** 2).mean() + (m.D_X(img["fake_x"]) ** 2).mean())
    assert d.item() == pytest.approx(expect_d.item(), rel=1e-5)
    no_idt = CycleGAN(cfg.replace(lambda_identity=0.0), torch.device("cpu"))
    assert "idt_X" not in no_idt.generator_loss(x, y)[1]


def test_batched_generator_and_discriminator_calls_equal_separate_ones():
    """generator_loss runs G on cat(x, y) and F on cat(y, x), and D on cat(real, fake): with per-image
    (instance) norms that must give the official formulation's losses and gradients, batch > 1 included."""
    from cgan.trainer.config import TrainConfig
    from cgan.trainer.train import CycleGAN

    torch.manual_seed(0)
    cfg = TrainConfig(name="t", blocks=2, ngf=4, ndf=4, n_layers_d=2, size=24, load_size=24)
    m = CycleGAN(cfg, torch.device("cpu"))
    x, y = torch.rand(3, 3, 24, 24) * 2 - 1, torch.rand(3, 3, 24, 24) * 2 - 1
    nets = (m.G, m.F)

    def grads():
        out = [p.grad.clone() for n in nets for p in n.parameters()]
        for n in nets:
            n.zero_grad(set_to_none=True)
        return out

    total, parts, _ = m.generator_loss(x, y)
    total.backward()
    got = grads()
    # the official formulation, one call per image set (networks/cycle_gan_model.py, backward_G)
    fake_y, fake_x = m.G(x), m.F(y)
    ref = {"G": ((m.D_Y(fake_y) - 1) ** 2).mean(), "F": ((m.D_X(fake_x) - 1) ** 2).mean(),
           "cycle_X": (m.F(fake_y) - x).abs().mean() * 10, "cycle_Y": (m.G(fake_x) - y).abs().mean() * 10,
           "idt_Y": (m.G(y) - y).abs().mean() * 5, "idt_X": (m.F(x) - x).abs().mean() * 5}
    sum(ref.values()).backward()
    want = grads()
    for k, v in ref.items():
        assert parts[k].item() == pytest.approx(v.item(), rel=1e-5, abs=1e-7), k
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    d = m.discriminator_loss(m.D_Y, y, fake_y)
    expect = 0.5 * (((m.D_Y(y) - 1) ** 2).mean() + (m.D_Y(fake_y.detach()) ** 2).mean())
    assert d.item() == pytest.approx(expect.item(), rel=1e-5)


# ---- image pool (official ImagePool) ----------------------------------------------------------------
def test_pool_fills_then_swaps_half_the_time():
    pool = ImagePool(3, seed=0)
    imgs = [torch.full((1, 1, 2, 2), float(i)) for i in range(200)]
    for i in range(3):  # filling: returns the new image
        assert pool.query(imgs[i])[0, 0, 0, 0].item() == i
    assert [t[0, 0, 0, 0].item() for t in pool.images] == [0, 1, 2]
    old = 0
    for i in range(3, 200):
        out = pool.query(imgs[i])[0, 0, 0, 0].item()
        stored = {t[0, 0, 0, 0].item() for t in pool.images}
        if out != i:  # returned an older image, and the new one took its place
            old += 1
            assert out < i and i in stored and out not in stored
        assert len(pool.images) == 3
    assert 60 < old < 140  # p = 0.5 over 197 draws
    assert ImagePool(0).query(imgs[5]) is imgs[5]


def test_pool_state_roundtrip_continues_identically():
    a = ImagePool(4, seed=1)
    for i in range(6):
        a.query(torch.full((2, 1, 1, 1), float(i)))
    b = ImagePool(4, seed=99)
    b.load_state_dict(a.state_dict())
    for i in range(6, 20):
        x = torch.full((1, 1, 1, 1), float(i))
        assert torch.equal(a.query(x), b.query(x))


# ---- learning-rate policy ---------------------------------------------------------------------------
@pytest.mark.parametrize("epoch,factor", [(0, 1.0), (99, 1.0), (100, 1 - 1 / 101), (150, 1 - 51 / 101),
                                          (199, 1 / 101)])
def test_linear_lr_policy(epoch, factor):
    # the paper: the same rate for the first 100 epochs (0..99 here), then linear decay; the official rule
    # 1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1), epoch_count = 1, applied per epoch
    assert lr_factor(epoch, 100, 100) == pytest.approx(factor)


def test_scheduler_lr_through_epochs():
    """The rate per epoch; epochs with no optimizer step (a resume at an epoch's end) move it on without
    PyTorch's warning about the order of the calls."""
    import warnings

    from cgan.trainer.config import TrainConfig
    from cgan.trainer.train import CycleGAN

    m = CycleGAN(TrainConfig(name="t", blocks=1, ngf=4, ndf=4, size=24, load_size=24), torch.device("cpu"))
    seen = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch in range(200):
            seen[epoch] = (m.opt_G.param_groups[0]["lr"], m.opt_D.param_groups[0]["lr"])
            m.end_epoch()
    assert not [str(w.message) for w in caught]
    for epoch, factor in ((0, 1.0), (100, 100 / 101), (150, 50 / 101), (199, 1 / 101)):
        assert seen[epoch][0] == pytest.approx(2e-4 * factor) and seen[epoch][1] == pytest.approx(2e-4 * factor)


# ---- data --------------------------------------------------------------------------------------------
def test_read_rgb_converts_gray_rgba_and_16bit(tmp_path):
    gray = np.full((10, 12), 100, np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    bgra = np.zeros((10, 12, 4), np.uint8)
    bgra[..., 0], bgra[..., 2], bgra[..., 3] = 255, 10, 128  # blue, a little red, half transparent
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    deep = np.full((10, 12, 3), 65535, np.uint16)
    deep[..., 2] = 0  # no red
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    g, a, d = read_rgb(tmp_path / "g.png"), read_rgb(tmp_path / "a.png"), read_rgb(tmp_path / "d.png")
    for img in (g, a, d):
        assert img.dtype == np.uint8 and img.shape == (10, 12, 3)
    assert (g == 100).all()
    assert tuple(a[0, 0]) == (10, 0, 255)  # RGB order, alpha dropped
    assert tuple(d[0, 0]) == (0, 255, 255)
    assert read_rgb(tmp_path / "bad.jpg") is None


@pytest.mark.parametrize("preprocess,shape", [("resize_and_crop", (32, 32)), ("crop", (32, 32)),
                                              ("scale_width", (52, 40)), ("scale_width_and_crop", (32, 32)),
                                              ("none", (28, 20))])
def test_transform_shapes(preprocess, shape):
    img = np.random.default_rng(0).integers(0, 255, (27, 21, 3), dtype=np.uint8)
    t = Transform(preprocess, load_size=40, size=32)
    out = t(img, np.random.default_rng(1))
    assert out.shape[:2] == shape and out.dtype == np.uint8
    # writable: PIL's resize came back as a read-only view, and torch warned in ordinary runs (--preprocess none
    # or scale_width, a load size equal to the crop size) when to_tensor took it
    assert out.flags.writeable


@pytest.mark.parametrize("shape,size", [((256, 256, 3), (286, 286)), ((600, 450, 3), (286, 286)),
                                        ((27, 21, 3), (40, 52))])
def test_resizes_are_pils_bicubic_as_the_official_transform(shape, size):
    """The official get_transform resizes with PIL's BICUBIC (a = -0.5, antialiased shrinking); OpenCV's cubic
    (a = -0.75) differed by 0.8 levels on average, 14 at most, on a 256-pixel photo made 286."""
    from PIL import Image

    from cgan.trainer.data import _resize

    img = np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8)
    want = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))
    assert np.array_equal(_resize(img, *size), want)
    assert np.array_equal(_resize(img[::2, ::3], *size),  # a view (the crop of a small photo is one)
                          np.asarray(Image.fromarray(np.ascontiguousarray(img[::2, ::3])).resize(size, 3)))


def test_small_images_are_upscaled_for_crop():
    img = np.zeros((10, 20, 3), np.uint8)
    assert Transform("crop", size=32)(img, np.random.default_rng(0)).shape == (32, 32, 3)


def test_sampler_is_deterministic_and_resumable():
    s = ResumableSampler(5, 3, seed=7)
    s.set_epoch(2)
    full = list(s)
    assert len(full) == 5 and sorted(k[1] for k in full) == list(range(5))
    assert all(k[3] < 3 for k in full)
    s.set_epoch(2, start=3)
    assert list(s) == full[3:]
    s.set_epoch(3)
    assert list(s) != full
    shards = [list(iter(ResumableSampler(5, 3, 7, rank=r, world=2).order(2))) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 2 and not {k[1] for k in shards[0]} & {k[1] for k in shards[1]}
    random.seed(0)  # the sampler must not depend on global RNG state
    s.set_epoch(2)
    assert list(s) == full


def test_pool_stores_copies_not_views_of_the_batch():
    pool = ImagePool(2, seed=0)
    batch = torch.zeros(4, 3, 8, 8)
    pool.query(batch[:1])
    stored = pool.images[0]
    assert stored.untyped_storage().nbytes() == stored.numel() * stored.element_size()  # not the whole batch
    batch[0].fill_(5.0)
    assert float(stored.abs().max()) == 0.0


def test_resume_into_fp16_starts_a_fresh_grad_scaler():
    """A bf16/fp32 checkpoint has no loss-scaler state; resuming it with --precision fp16 must not fail."""
    from cgan.trainer.config import TrainConfig
    from cgan.trainer.train import CycleGAN

    def model(precision):
        return CycleGAN(TrainConfig(name="s", size=32, load_size=32, ngf=4, blocks=1, precision=precision,
                                    device="cpu"), torch.device("cpu"))

    state = model("fp32").state_dict()
    fp16 = model("fp16")
    fp16.load_state_dict(state)
    assert fp16.scaler_G.is_enabled() and fp16.scaler_G.get_scale() == torch.amp.GradScaler("cpu").get_scale()
    for scaler, scale in ((fp16.scaler_G, 2048.0), (fp16.scaler_D, 1024.0)):  # as after some overflow steps
        scaler.load_state_dict({**scaler.state_dict(), "scale": scale})
    again = model("fp16")
    again.load_state_dict(fp16.state_dict())  # an fp16 checkpoint restores its scalers
    assert (again.scaler_G.get_scale(), again.scaler_D.get_scale()) == (2048.0, 1024.0)


def test_shrinking_uses_area_resampling():
    from cgan.trainer.data import _resize

    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    small = _resize(noise, 16, 16)  # averaging 4x4 blocks divides the noise by ~4; point sampling keeps most
    assert float(small.std()) < 0.35 * float(noise.std())
