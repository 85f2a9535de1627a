"""Training a segmenter (U-Net, seg-ViT): the loop behind `minidl train unet|seg-vit`.

The model gives every pixel a score per class, logits (B, classes, H, W);
the loss is the per-pixel cross-entropy, averaged over all B * H * W pixels:

    logits = model(images)                       # (B, 11, H, W)
    loss = F.cross_entropy(logits, masks)        # masks (B, H, W) of class indices
    optimizer.zero_grad(); loss.backward(); optimizer.step()

The registry's defaults use the cosine learning-rate schedule (`--scheduler
cosine`, stepped by the Trainer after every step): from `lr` down to 0 over
the run, so the last epochs take small steps, BatchNorm's running statistics
settle, and the test scores stop jumping from epoch to epoch.

With `config.augment` (seg-vit's registry default; `--augment/--no-augment`)
every epoch trains on scenes composed afresh from the same training-split
digits (`SegmentationTask.scenes_for_epoch`): new positions and neighbours
each epoch, so a model cannot learn the 1000 fixed scenes by heart, and the
test digits stay unseen. (Flips are no augmentation for digits.)

After each epoch the test scenes are labelled (argmax over classes) and
scored by pixel accuracy, IoU per class and their mean, mIoU
(minidl.segmentation_metrics). SegmentationTask runs in the shared Trainer
(minidl.training.loop: run directory, progress, Ctrl-C, time budget,
divergence stop, best.npz following the test mIoU), with these plots: curves.png (loss, pixel accuracy, mIoU per epoch), predictions.png
(test scenes, true and predicted label maps), iou_per_class.png.

`intensity_baseline` is the yardstick: the best any rule can do that looks at
one pixel's grey level alone (it finds the strokes, but not which digit they
belong to).
"""
import numpy as np

import minidl as mdl
from .. import functional as F
from ..autograd.tensor import Tensor
from ..data import DataLoader, load_scenes
from ..data.digit_scenes import SCENE_CLASSES, make_scenes, plot_scenes
from ..models import build_model
from ..segmentation_metrics import confusion_counts, iou_per_class, mean_iou, pixel_accuracy
from ..threads import training_threads
from .config import TrainConfig, make_optimizer
from .loop import Task, Trainer
from .run_directory import BEST, CHECKPOINT, RunDirectory


def load_data(config):
    """(train, test) SceneDatasets of config.dataset."""
    return (load_scenes(config.dataset, "train", root=config.data_root),
            load_scenes(config.dataset, "test", root=config.data_root))


def new_model(config, train_set):
    mdl.manual_seed(config.seed)
    return build_model(config.model, train_set.images.shape[1:], len(train_set.classes))


class SegmentationTask(Task):
    """Per-pixel classification for the shared Trainer (minidl.training.loop):
    cross-entropy steps, test mIoU as the metric that best.npz follows."""

    losses = ("loss",)
    metric, maximize = "test_miou", True
    unit = "scenes"

    def __init__(self, config, plots=True, log=print):
        self.config, self.plots, self.log = config, plots, log
        self.train_set, self.test_set = load_data(config)
        self.model = new_model(config, self.train_set)
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.baseline = intensity_baseline(self.train_set, self.test_set)

    def batches(self, epoch, seed):
        return DataLoader(self.scenes_for_epoch(seed), batch_size=self.config.batch_size, shuffle=True,
                          seed=seed)

    def scenes_for_epoch(self, seed):
        """The training scenes of one epoch. With `config.augment` they are composed
        afresh from the same training-split digits (make_scenes with a seed drawn
        from the epoch's): new positions and new combinations every epoch, the
        same number of scenes, and never a test digit. Without it, the fixed
        training scenes of load_scenes."""
        if not self.config.augment:
            return self.train_set
        scene_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
        return make_scenes(self.train_set.source, len(self.train_set), self.train_set.images.shape[-1],
                           scene_seed, name=self.train_set.name)

    def train_step(self, batch):
        images, masks = batch                                      # (B, C, H, W), (B, H, W)
        logits = self.model(images)                                # (B, classes, H, W)
        loss = F.cross_entropy(logits, masks)
        self.optimizer.zero_grad()
        loss.backward()
        self.update(self.optimizer)
        correct = np.mean(np.argmax(logits.data, axis=1) == masks.data)
        return dict(loss=loss.item(), pixel_accuracy=float(correct), size=len(masks.data))

    def evaluate(self, epoch):
        test = evaluate(self.model, self.test_set, self.config.eval_batch_size)
        return dict(test_loss=test["loss"], test_pixel_accuracy=test["pixel_accuracy"],
                    test_iou=test["iou"], test_miou=test["miou"])

    def epoch_record(self, means, evaluation):
        return dict(train_loss=means["loss"], train_pixel_accuracy=means["pixel_accuracy"], **evaluation,
                    baseline_test_miou=self.baseline["miou"])

    def after_epoch(self, run, record, history):
        previous = history[-1]["training_cpu_minutes"] if history else 0.0
        record["training_cpu_minutes"] = previous + record["cpu_seconds"] / 60

    def summary(self, record):
        return epoch_line(self.config, record)

    def finish(self, run, history):
        final = evaluate(self.model, self.test_set, self.config.eval_batch_size)
        if self.plots:
            save_plots(run, history, self.test_set, final, self.baseline)
        self.log(f"{self.config.model} on {self.config.dataset}: test mIoU {final['miou']:.3f}, pixel "
                 f"accuracy {final['pixel_accuracy']:.2%} (per-pixel intensity baseline: mIoU "
                 f"{self.baseline['miou']:.3f}, pixel accuracy {self.baseline['pixel_accuracy']:.2%}); "
                 f"run directory {run.path}")
        return dict(final=final, baseline=self.baseline)


def predict(model, images, batch_size=100):
    """Label maps (N, H, W) for images (N, C, H, W), in eval mode under no_grad."""
    model.eval()
    out = []
    with mdl.no_grad(), training_threads():
        for start in range(0, len(images), batch_size):
            logits = model(Tensor(np.asarray(images[start:start + batch_size])))   # (B, classes, H, W)
            out.append(np.argmax(logits.data, axis=1))
    return np.concatenate(out)


def evaluate(model, dataset, batch_size=100):
    """Mean per-pixel loss, pixel accuracy, IoU per class, mIoU and the predictions."""
    model.eval()
    total_loss, predictions = 0.0, []
    with mdl.no_grad(), training_threads():
        for images, masks in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            logits = model(images)                                 # (B, classes, H, W)
            total_loss += float(F.cross_entropy(logits, masks).item()) * len(masks.data)
            predictions.append(np.argmax(logits.data, axis=1))
    predictions = np.concatenate(predictions)                      # (N, H, W)
    return scores(dataset.masks, predictions, len(dataset.classes), loss=total_loss / len(dataset))


def scores(true, predicted, num_classes, **extra):
    counts = confusion_counts(true, predicted, num_classes)
    iou = iou_per_class(counts)
    return dict(extra, pixel_accuracy=pixel_accuracy(counts), iou=[float(v) for v in iou],
                miou=mean_iou(counts), predictions=predicted)


def intensity_baseline(train_set, test_set, levels=17):
    """The trivial baseline: each pixel's label from its grey level alone. The
    levels are binned (digits have 17 grey levels); each bin predicts the label
    most frequent among training pixels of that bin. Returns `scores` on test."""
    def bins(images):
        return np.clip(np.round(images[:, 0] * (levels - 1)), 0, levels - 1).astype(np.int64)
    table = confusion_counts(bins(train_set.images), train_set.masks, max(levels, len(train_set.classes)))
    rule = np.argmax(table[:levels, :len(train_set.classes)], axis=1)          # bin -> label
    return scores(test_set.masks, rule[bins(test_set.images)], len(test_set.classes))


def epoch_line(config, record):
    return (f"{config.model} | {config.dataset} | epoch {record['epoch']}/{config.epochs} | "
            f"train loss {record['train_loss']:.4f} | test loss {record['test_loss']:.4f} "
            f"pixel acc {record['test_pixel_accuracy']:.2%} mIoU {record['test_miou']:.3f} | "
            f"{record['seconds']:.1f} s, {record['training_cpu_minutes']:.1f} CPU min")


def fit(config, run_dir, resume=False, progress=True, log=print, plots=True, max_minutes=None):
    """Train the segmenter of `config` in `run_dir` with the shared Trainer;
    returns its result dict (history, model, run_dir, best_epoch, stopped)
    plus `final` (the last test evaluation) and `baseline`."""
    task = SegmentationTask(config, plots=plots, log=log)
    return Trainer(task, config, run_dir, resume=resume, progress=progress, log=log,
                   max_minutes=max_minutes).run()


def load_run(run_dir, best=False):
    """(config, model with the checkpoint's weights, test set, checkpoint epoch)."""
    run = RunDirectory(run_dir)
    config = TrainConfig.from_dict(run.load_config())
    checkpoint = run.load_checkpoint(BEST if best else CHECKPOINT)
    train_set, test_set = load_data(config)
    model = new_model(config, train_set)
    model.load_state_dict(checkpoint["model"])
    return config, model, test_set, checkpoint["epoch"]


def evaluate_run(run_dir, log=print, best=False):
    """Rebuild the model of `run_dir` (checkpoint.npz, or best.npz with `best`) and
    score it on the test scenes; `recorded_miou` is what metrics.json holds for
    the checkpoint's epoch."""
    config, model, test_set, epoch = load_run(run_dir, best)
    result = evaluate(model, test_set, config.eval_batch_size)
    result.update(epoch=epoch, config=config, recorded_miou=RunDirectory(run_dir).recorded(epoch, "test_miou"))
    log(f"{config.model} on {config.dataset}, epoch {epoch}: test loss {result['loss']:.4f}, pixel "
        f"accuracy {result['pixel_accuracy']:.2%}, mIoU {result['miou']:.4f}")
    log("IoU per class: " + ", ".join(f"{name} {value:.2f}" for name, value in zip(SCENE_CLASSES, result["iou"])))
    if result["recorded_miou"] is not None:
        same = result["recorded_miou"] == result["miou"]
        log(f"metrics.json recorded mIoU {result['recorded_miou']:.4f} for this epoch: "
            + ("reproduced exactly" if same else "DIFFERENT"))
    return result


# ---- plots ------------------------------------------------------------------------------
def save_plots(run, history, test_set, final, baseline):
    paths = [plot_scenes(test_set, run.file("predictions.png"), count=8, predictions=final["predictions"],
                         title=f"test scenes: mIoU {final['miou']:.3f}")]
    paths.append(plot_iou_per_class(final["iou"], run.file("iou_per_class.png"), baseline["iou"]))
    if history:
        paths.append(plot_segmentation_curves(history, run.file("curves.png")))
    return paths


def plot_iou_per_class(iou, path, baseline_iou=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = np.arange(len(iou))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(positions - 0.2, iou, width=0.4, label=f"model (mIoU {np.nanmean(iou):.3f})")
    if baseline_iou is not None:
        ax.bar(positions + 0.2, baseline_iou, width=0.4, color="gray",
               label=f"per-pixel intensity baseline (mIoU {np.nanmean(baseline_iou):.3f})")
    ax.set_xticks(positions, SCENE_CLASSES[:len(iou)], fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU on the test scenes")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_segmentation_curves(history, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    left.plot(epochs, [r["test_loss"] for r in history], "o-", label="test")
    left.set_xlabel("epoch"); left.set_ylabel("per-pixel cross-entropy"); left.legend()
    right.plot(epochs, [r["test_miou"] for r in history], "o-", label="test mIoU")
    right.plot(epochs, [r["test_pixel_accuracy"] for r in history], "o-", label="test pixel accuracy")
    right.axhline(history[-1]["baseline_test_miou"], color="gray", ls="--", label="intensity baseline mIoU")
    right.set_xlabel("epoch"); right.set_ylim(0, 1); right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
