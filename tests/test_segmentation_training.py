"""Segmentation: the U-Net and seg-ViT shapes, `minidl train unet|seg-vit` and `minidl eval`
end to end, the intensity baseline, fresh training scenes, and (slow) both mIoU targets."""
import json

import numpy as np
import pytest

import minidl as mdl
from minidl import cli
from minidl.data import load_scenes
from minidl.models import build_model
from minidl.training import make_config, segmentation


@pytest.mark.parametrize("name", ["unet", "seg-vit"])
def test_segmenters_give_a_score_per_class_per_pixel(name):
    mdl.manual_seed(0)
    model = build_model(name, (1, 32, 32), 11)
    x = mdl.tensor(np.random.default_rng(0).random((2, 1, 32, 32)).astype(np.float32))
    out = model(x)
    assert out.shape == (2, 11, 32, 32) and out.dtype == np.float32
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match=r"expected images .*got \(2, 1, 30, 30\)"):
        model(mdl.tensor(np.zeros((2, 1, 30, 30), dtype=np.float32)))


def test_unet_skip_connections_carry_fine_detail():
    """Changing one input pixel changes the logits at that pixel through the full-resolution
    skip path, and (with receptive fields of a few pixels) leaves far pixels of the top
    encoder level alone: the first block only sees 5x5."""
    mdl.manual_seed(1)
    model = build_model("unet", (1, 32, 32), 11)
    model.eval()
    x = np.zeros((1, 1, 32, 32), dtype=np.float32)
    y = x.copy()
    y[0, 0, 16, 16] = 1.0
    with mdl.no_grad():
        a = model.encoder1(mdl.tensor(x)).data
        b = model.encoder1(mdl.tensor(y)).data
    changed = np.argwhere(np.abs(a - b).max(axis=1)[0] > 0)
    assert changed.min(axis=0).tolist() == [14, 14] and changed.max(axis=0).tolist() == [18, 18]


def test_seg_vit_token_grid_round_trip_keeps_every_patch_in_place():
    """to_tokens then to_map is the identity, token r * g + c is patch (r, c), and the
    patch embedding's token for a patch depends on that patch's pixels (not a scrambled one)."""
    mdl.manual_seed(0)
    model = build_model("seg-vit", (1, 32, 32), 11)
    grid = model.grid
    cells = np.arange(2 * 3 * grid * grid, dtype=np.float32).reshape(2, 3, grid, grid)
    tokens = model.to_tokens(mdl.tensor(cells))                        # (2, g * g, 3)
    assert tokens.shape == (2, grid * grid, 3)
    row, column = 5, 2
    assert np.array_equal(tokens.data[:, row * grid + column], cells[:, :, row, column])
    assert np.array_equal(model.to_map(tokens).data, cells)
    model.eval()
    x = np.zeros((1, 1, 32, 32), dtype=np.float32)
    y = x.copy()
    y[0, 0, 4 * row + 1, 4 * column + 1] = 1.0                        # a pixel inside patch (5, 2)
    with mdl.no_grad():
        a = model.patch_embedding(mdl.tensor(x)).data
        b = model.patch_embedding(mdl.tensor(y)).data
    moved = np.argwhere(np.abs(a - b).max(axis=1)[0] > 0)
    assert [row, column] in moved.tolist() and len(moved) <= 4          # its patch (and overlapping windows)


def test_intensity_baseline_finds_strokes_but_not_digits():
    train, test = load_scenes("digit-scenes", "train"), load_scenes("digit-scenes", "test")
    baseline = segmentation.intensity_baseline(train, test)
    assert baseline["iou"][0] > 0.9, "background is found from intensity alone"
    assert max(baseline["iou"][1:]) < 0.2, "one grey level cannot tell digits apart"
    assert baseline["miou"] < 0.2


def test_augmented_epochs_compose_new_scenes_from_training_digits_only():
    """With `augment` every epoch's training scenes are new (other positions, other
    digits together), as many as the fixed ones, and every placed digit is a
    training-split digit whose strokes carry its own label; the test scenes stay
    fixed. Without it, every epoch trains on the fixed scenes of load_scenes."""
    task = segmentation.SegmentationTask(make_config("seg-vit", epochs=1), plots=False, log=lambda *a: None)
    assert task.config.augment, "seg-vit's registry default composes fresh scenes"
    train_digits = task.train_set.source
    first, second = task.scenes_for_epoch(101), task.scenes_for_epoch(202)
    assert len(first) == len(second) == len(task.train_set)
    assert not np.array_equal(first.images, second.images)
    assert not np.array_equal(first.images, task.train_set.images)
    assert np.array_equal(task.scenes_for_epoch(101).masks, first.masks), "the seed decides the scenes"
    for scene, source, row, column in first.placements[:200]:
        digit = train_digits.images[source, 0]                                 # (8, 8)
        assert np.array_equal(first.images[scene, 0, row:row + 8, column:column + 8], digit)
        ink = digit >= 0.25
        assert np.all(first.masks[scene, row:row + 8, column:column + 8][ink] == 1 + train_digits.labels[source])
    assert first.source is train_digits and task.test_set is load_scenes("digit-scenes", "test")
    fixed = segmentation.SegmentationTask(make_config("seg-vit", epochs=1, augment=False), plots=False,
                                          log=lambda *a: None)
    assert fixed.scenes_for_epoch(101) is fixed.train_set


def test_augment_flag_turns_fresh_scenes_on_and_off():
    parser = cli.build_parser()
    assert parser.parse_args(["train", "seg-vit"]).augment is None              # the model's default
    assert parser.parse_args(["train", "seg-vit", "--no-augment"]).augment is False
    assert parser.parse_args(["train", "unet", "--augment"]).augment is True


@pytest.mark.parametrize("name", ["unet", "seg-vit"])
def test_train_and_eval_commands_write_and_reproduce_a_segmentation_run(name, tmp_path, capsys):
    run_dir = tmp_path / name
    assert cli.main(["train", name, "--epochs", "1", "--out", str(run_dir), "--no-progress"]) == 0
    record = json.loads((run_dir / "metrics.json").read_text())["epochs"][0]
    assert len(record["test_iou"]) == 11 and 0 <= record["test_miou"] <= 1
    assert record["test_pixel_accuracy"] > 0.5 and record["baseline_test_miou"] < 0.2
    for picture in ("predictions.png", "iou_per_class.png", "curves.png"):
        assert (run_dir / picture).stat().st_size > 5000
    config = json.loads((run_dir / "config.json").read_text())
    assert config["dataset"] == "digit-scenes" and config["scheduler"] == "cosine"
    assert config["augment"] == (name == "seg-vit"), "fresh scenes: seg-vit's default, not the U-Net's"
    capsys.readouterr()
    assert cli.main(["eval", str(run_dir)]) == 0
    assert "reproduced exactly" in capsys.readouterr().out


@pytest.mark.slow
def test_unet_default_training_reaches_the_miou_target(tmp_path):
    config = make_config("unet")
    result = segmentation.fit(config, tmp_path / "unet", progress=False, log=lambda *a: None, plots=False)
    last = result["history"][-1]
    message = (f"U-Net test mIoU {last['test_miou']:.3f} after {last['training_cpu_minutes']:.2f} CPU "
               f"minutes (intensity baseline {result['baseline']['miou']:.3f})")
    print(message)
    assert last["test_miou"] >= 0.85, message     # (the CPU minutes are a measurement, not asserted)


@pytest.mark.slow
def test_seg_vit_default_training_reaches_the_miou_target(tmp_path):
    """The issue's target for seg-vit: test mIoU >= 0.75 with the registry defaults
    (training scenes composed afresh every epoch; benchmarks/results/segmentation.md)."""
    result = segmentation.fit(make_config("seg-vit"), tmp_path / "seg-vit", progress=False,
                              log=lambda *a: None, plots=False)
    last = result["history"][-1]
    message = (f"seg-ViT test mIoU {last['test_miou']:.3f}, pixel accuracy {last['test_pixel_accuracy']:.2%} "
               f"after {last['training_cpu_minutes']:.2f} CPU minutes (intensity baseline "
               f"{result['baseline']['miou']:.3f})")
    print(message)
    assert last["test_miou"] >= 0.75 and last["test_pixel_accuracy"] >= 0.98, message


def test_seg_vit_forward_and_gradients_match_a_pytorch_twin():
    """The whole segmenter against the same network written in PyTorch with the same
    weights, on real scenes in training mode (BatchNorm on batch statistics): logits,
    loss and the gradient of every parameter agree."""
    torch = pytest.importorskip("torch")
    tnn, TF = torch.nn, torch.nn.functional
    mdl.manual_seed(0)
    ours = build_model("seg-vit", (1, 32, 32), 11)
    dim, width = ours.dim, ours.decoder[0].out_channels

    class Twin(tnn.Module):
        def __init__(self):
            super().__init__()
            self.input_norm = tnn.BatchNorm2d(1)
            self.patch_embedding = tnn.Conv2d(1, dim, 8, stride=4, padding=2)
            self.position = tnn.Parameter(torch.zeros(64, dim))
            self.layers = tnn.ModuleList([tnn.TransformerEncoderLayer(
                dim, 4, 128, 0.0, activation="gelu", batch_first=True, norm_first=True) for _ in range(4)])
            self.norm = tnn.LayerNorm(dim)
            self.token_head = tnn.Linear(dim, 11)
            self.detail = tnn.Conv2d(1, width, 3, padding=1)
            self.decoder0 = tnn.Conv2d(dim + width, width, 3, padding=1, bias=False)
            self.decoder1 = tnn.BatchNorm2d(width)
            self.decoder3 = tnn.Conv2d(width, 11, 1)

        def forward(self, images):
            n, x = len(images), self.input_norm(images)
            tokens = self.patch_embedding(x).flatten(2).transpose(1, 2) + self.position
            for layer in self.layers:
                tokens = layer(tokens)
            tokens = self.norm(tokens)

            def up(t):
                return TF.interpolate(t.transpose(1, 2).reshape(n, -1, 8, 8), size=(32, 32),
                                      mode="bilinear", align_corners=False)
            joined = torch.cat([up(tokens), TF.relu(self.detail(x))], 1)
            return self.decoder3(TF.relu(self.decoder1(self.decoder0(joined)))) + up(self.token_head(tokens))

    twin = Twin()
    names = {"position": "position_embedding.weight", "decoder0.weight": "decoder.0.weight",
             "decoder1.weight": "decoder.1.weight", "decoder1.bias": "decoder.1.bias",
             "decoder3.weight": "decoder.3.weight", "decoder3.bias": "decoder.3.bias",
             "detail.weight": "detail.0.weight", "detail.bias": "detail.0.bias"}
    ours_parameters = dict(ours.named_parameters())
    twin_parameters = dict(twin.named_parameters())
    assert len(ours_parameters) == len(twin_parameters)
    with torch.no_grad():
        for name, parameter in twin_parameters.items():
            parameter.copy_(torch.from_numpy(np.array(ours_parameters[names.get(name, name)].data)))
    scenes = load_scenes("digit-scenes", "train")
    images, masks = np.array(scenes.images[:4]), np.array(scenes.masks[:4])
    logits = ours(mdl.tensor(images))
    loss = mdl.functional.cross_entropy(logits, mdl.tensor(masks))
    loss.backward()
    their_logits = twin(torch.from_numpy(images))
    their_loss = TF.cross_entropy(their_logits, torch.from_numpy(masks))
    their_loss.backward()
    np.testing.assert_allclose(logits.data, their_logits.detach().numpy(), atol=2e-5)
    assert abs(loss.item() - their_loss.item()) < 1e-5
    for name, parameter in twin_parameters.items():
        expected = parameter.grad.numpy()
        np.testing.assert_allclose(ours_parameters[names.get(name, name)].grad, expected,
                                   atol=1e-5 + 1e-3 * np.abs(expected).max(), err_msg=name)
