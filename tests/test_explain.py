"""minidl.explain: saliency, Grad-CAM and attention rollout against cases worked out by hand,
and a faithfulness check on a trained CNN."""
import json

import numpy as np
import pytest

import minidl as mdl
from minidl import cli, explain, nn
from minidl.data import load_dataset
from minidl.models.vit import VisionTransformer
from minidl.training import fit, make_config, prepare_batch
from training_helpers import interrupt_path_writes


def test_saliency_of_a_linear_model_is_its_weight_row():
    """score = W[c] . x + b[c], so d score / d x = W[c] whatever x is."""
    mdl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x = np.random.default_rng(0).standard_normal((2, 1, 3, 4)).astype(np.float32)
    maps = explain.saliency(model, x, target=[2, 0])
    for row, c in enumerate([2, 0]):
        expected = np.abs(model[1].weight.data[c]).reshape(3, 4)
        np.testing.assert_allclose(maps[row], expected / expected.max(), rtol=1e-6)
    assert all(p.grad is None for p in model.parameters()), "weights' gradients are not left behind"


def test_a_class_the_input_cannot_move_gets_an_all_zero_map():
    """W[c] = 0: the score of class c does not depend on x, so its map is zero
    everywhere (not NaN), while the other image's map still peaks at 1."""
    mdl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    model[1].weight.data[2] = 0.0
    x = np.random.default_rng(0).standard_normal((2, 1, 3, 4)).astype(np.float32)
    with np.errstate(all="raise"):
        maps = explain.saliency(model, x, target=[2, 0])
    np.testing.assert_array_equal(maps[0], np.zeros((3, 4), np.float32))
    assert maps[1].max() == 1.0 and maps[1].min() >= 0.0


def test_saliency_targets_the_prediction_by_default():
    mdl.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = np.random.default_rng(1).standard_normal((1, 1, 2, 2)).astype(np.float32)
    predicted = int(np.argmax(model(mdl.tensor(x)).data))
    np.testing.assert_array_equal(explain.saliency(model, x), explain.saliency(model, x, target=predicted))


class GapNet(nn.Module):
    """conv -> global average pool -> linear: the network of the original CAM paper."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 5, 3, padding=1)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        features = self.conv(x)                                        # (N, 5, H, W)
        return self.fc(features.mean(dim=(2, 3)))                     # (N, 3)


def test_grad_cam_equals_the_class_activation_map_for_a_global_average_pool_network():
    """With GAP then Linear, d score / d A_k = W[c, k] / (h w) at every pixel, so
    Grad-CAM = relu(sum_k W[c, k] A_k) up to a positive factor: the CAM of Zhou et al."""
    mdl.manual_seed(2)
    model = GapNet()
    x = np.random.default_rng(2).standard_normal((3, 1, 6, 6)).astype(np.float32)
    maps = explain.grad_cam(model, "conv", x, target=1)
    with mdl.no_grad():
        activations = model.conv(mdl.tensor(x)).data                   # (3, 5, 6, 6)
    cam = np.maximum(np.einsum("k,nkhw->nhw", model.fc.weight.data[1], activations), 0)
    np.testing.assert_allclose(maps, cam / cam.max(axis=(1, 2), keepdims=True), atol=1e-5)
    assert "forward" not in model.conv.__dict__, "the layer is left as it was"


def test_grad_cam_resizes_a_coarse_layer_to_the_image_and_names_bad_layers():
    from minidl.models.cnn import CNN

    mdl.manual_seed(3)
    model = CNN(1, 10, (8, 8))
    x = np.random.default_rng(3).standard_normal((2, 1, 8, 8)).astype(np.float32)
    maps = explain.grad_cam(model, model.conv3, x)
    assert maps.shape == (2, 8, 8) and maps.min() >= 0 and maps.max() <= 1
    assert explain.last_conv2d(model) == "conv3"
    with pytest.raises(ValueError, match=r"no layer 'conv9'.*conv1.*conv2.*conv3"):
        explain.grad_cam(model, "conv9", x)
    with pytest.raises(ValueError, match="target classes must be in"):
        explain.saliency(model, x, target=10)


def test_attention_rollout_of_one_layer_is_the_class_token_attention():
    """One layer: R = (A + I) / 2, whose row 0 over the patches is A[0, 1:] / 2."""
    mdl.manual_seed(4)
    vit = VisionTransformer(image_size=8, patch_size=2, num_classes=10, dim=16, depth=1, heads=2, mlp_dim=16)
    x = np.random.default_rng(4).standard_normal((2, 1, 8, 8)).astype(np.float32)
    attention = vit.attention_maps(mdl.tensor(x))[0]                   # (2, 17, 17)
    patches = attention[:, 0, 1:].reshape(2, 4, 4)
    expected = np.kron(patches, np.ones((1, 2, 2)))
    np.testing.assert_allclose(explain.attention_rollout(vit, x),
                               expected / expected.max(axis=(1, 2), keepdims=True), rtol=1e-5)


def test_attention_rollout_multiplies_the_layers_in_order():
    mdl.manual_seed(5)
    vit = VisionTransformer(image_size=8, patch_size=4, num_classes=10, dim=16, depth=3, heads=2, mlp_dim=16)
    x = np.random.default_rng(5).standard_normal((1, 1, 8, 8)).astype(np.float32)
    layers = vit.attention_maps(mdl.tensor(x))
    rollout = np.eye(5)
    for attention in layers:                     # each later layer on the left
        mixed = (attention[0] + np.eye(5)) / 2   # rows of A sum to 1, so (A + I) / 2 does too
        rollout = mixed @ rollout
    patches = rollout[0, 1:].reshape(2, 2)
    expected = np.kron(patches, np.ones((4, 4)))
    np.testing.assert_allclose(explain.attention_rollout(vit, x)[0], expected / expected.max(), rtol=1e-5)
    with pytest.raises(ValueError, match="VisionTransformer with a class token"):
        explain.attention_rollout(nn.Sequential(nn.Flatten()), x)


def test_top_and_random_pixels_hide_exactly_count_pixels():
    maps = np.random.default_rng(6).random((3, 4, 5))
    top = explain.top_pixels(maps, 4)
    assert top.sum(axis=(1, 2)).tolist() == [4, 4, 4]
    assert all(maps[i][top[i]].min() >= maps[i][~top[i]].max() for i in range(3))
    chosen = explain.random_pixels((3, 4, 5), 7, np.random.default_rng(0))
    assert chosen.sum(axis=(1, 2)).tolist() == [7, 7, 7]
    images = np.ones((3, 2, 4, 5), dtype=np.float32)
    hidden = explain.hide(images, top)
    assert (hidden == 0).sum() == 3 * 2 * 4 and images.min() == 1.0


@pytest.fixture(scope="module")
def trained_cnn(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cnn")
    result = fit(make_config("cnn", epochs=4), run_dir, progress=False, log=lambda *a: None, plots=False)
    return result["model"], run_dir


def test_hiding_the_most_salient_pixels_hurts_far_more_than_hiding_random_ones(trained_cnn):
    model, _ = trained_cnn
    test = load_dataset("digits", "test")
    model.eval()

    def classify(raw):
        with mdl.no_grad():
            return model(prepare_batch(raw, "digits")).data.argmax(axis=1)

    inputs = prepare_batch(test.images, "digits")
    for name, maps, margin in (("saliency", explain.saliency(model, inputs), 0.3),
                               ("Grad-CAM conv1", explain.grad_cam(model, "conv1", inputs), 0.1)):
        check = explain.deletion_check(classify, test.images, test.labels, maps, fraction=0.1)
        message = (f"{name}: test accuracy {check['original']:.1%}; with the {check['pixels_hidden']} most "
                   f"important pixels hidden {check['salient_hidden']:.1%}, with as many random pixels "
                   f"hidden {check['random_hidden']:.1%}")
        print(message)
        assert check["original"] > 0.9, message
        assert check["salient_hidden"] < check["random_hidden"] - margin, message


def test_explain_command_writes_the_grid_and_the_faithfulness_figures(trained_cnn, capsys):
    _, run_dir = trained_cnn
    assert cli.main(["explain", str(run_dir), "--num", "3", "--layer", "conv2"]) == 0
    assert (run_dir / "explain.png").stat().st_size > 5000
    report = json.loads((run_dir / "explain.json").read_text())
    assert set(report["methods"]) == {"saliency", "Grad-CAM conv2"}
    assert report["methods"]["saliency"]["pixels_hidden"] == 6
    assert "most important pixels hidden" in capsys.readouterr().out
    assert cli.main(["explain", str(run_dir), "--layer", "fc1"]) == 1      # not a conv map: clear error
    assert "grad_cam" in capsys.readouterr().err



def test_ctrl_c_while_explain_json_is_rewritten_keeps_the_old_one_whole(trained_cnn, tmp_path, monkeypatch):
    """explain.json was written in place: Ctrl-C in the middle left half a file."""
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(trained_cnn[1], run_dir)
    assert cli.main(["explain", str(run_dir), "--num", "2"]) == 0
    before = (run_dir / "explain.json").read_text()
    interrupt_path_writes(monkeypatch)                                 # half of each write, then Ctrl-C
    assert cli.main(["explain", str(run_dir), "--num", "2", "--layer", "conv2"]) == 130
    monkeypatch.undo()
    assert (run_dir / "explain.json").read_text() == before
    assert not list(run_dir.glob("*.partial"))


@pytest.mark.parametrize("mode", [True, False])
def test_saliency_and_grad_cam_leave_the_model_in_the_mode_they_found(mode):
    from minidl.models.cnn import CNN

    mdl.manual_seed(4)
    model = CNN(1, 10, (8, 8), dropout=0.5)
    x = np.random.default_rng(4).standard_normal((2, 1, 8, 8)).astype(np.float32)
    for explain_with in (lambda: explain.saliency(model, x), lambda: explain.grad_cam(model, "conv3", x)):
        model.train(mode)
        explain_with()
        assert all(m.training is mode for m in model.modules())


def test_explain_command_titles_each_image_true_then_predicted(tmp_path, monkeypatch):
    """The grid's titles read "true -> predicted" for each test image; a
    one-epoch MLP gets some wrong, so a swap would show."""
    run_dir = tmp_path / "mlp"
    result = fit(make_config("mlp", epochs=1), run_dir, progress=False, log=lambda *a: None, plots=False)
    test = load_dataset("digits", "test")
    model = result["model"].eval()
    with mdl.no_grad():
        predicted = model(prepare_batch(test.images, "digits")).data.argmax(axis=1)
    assert np.any(predicted != test.labels)
    seen = {}
    monkeypatch.setattr(explain, "plot_explanations",
                        lambda images, maps, path, titles=None: seen.update(titles=titles, n=len(images)))
    explain.explain_run(run_dir, num=len(test.labels), log=lambda *a: None)
    expected = [f"{test.classes[t]} -> {test.classes[p]}" for t, p in zip(test.labels, predicted)]
    assert seen["n"] == len(test.labels) and seen["titles"] == expected


def test_hidden_pixels_take_the_given_value_in_every_channel():
    images = np.ones((2, 3, 2, 2), dtype=np.float32)
    pixels = np.array([[[True, False], [False, False]], [[False, False], [False, True]]])
    hidden = explain.hide(images, pixels, value=-0.5)
    assert hidden[0, :, 0, 0].tolist() == [-0.5] * 3 and hidden[1, :, 1, 1].tolist() == [-0.5] * 3
    assert (hidden == 1).sum() == 2 * 3 * 3


def test_deletion_check_hides_the_given_value_and_its_random_pixels_follow_the_seed():
    """A stand-in classifier records what it is shown: the hidden pixels carry
    `value`; the same seed hides the same random pixels, another seed others."""
    images = np.ones((4, 1, 5, 5), dtype=np.float32)
    maps = np.random.default_rng(0).random((4, 5, 5))
    shown = []

    def classify(batch):
        shown.append(np.array(batch))
        return np.zeros(len(batch), dtype=np.int64)

    def random_hidden(seed):
        shown.clear()
        explain.deletion_check(classify, images, np.zeros(4), maps, fraction=0.2, seed=seed, value=-2.0)
        original, salient, randomly = shown
        assert original.min() == 1.0 and (salient == -2.0).sum() == 4 * 5 and (randomly == -2.0).sum() == 4 * 5
        return randomly == -2.0

    assert np.array_equal(random_hidden(3), random_hidden(3))
    assert not np.array_equal(random_hidden(3), random_hidden(4))
