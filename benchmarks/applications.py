"""Measured quality of the applications: segmentation, image completion, explanations.

    python benchmarks/applications.py segmentation   # trains unet and seg-vit (defaults)
    python benchmarks/applications.py completion     # trains pixel-gpt and cnn (defaults)
    python benchmarks/applications.py explain        # trains cnn (defaults), deletion check

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


def load_line():
    return "load average before the run: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def train(model, **overrides):
    from minidl.models import model_entry
    from minidl.threads import training_threads
    from minidl.training import make_config

    config = make_config(model, **overrides)
    run_dir = RUNS / model
    if (run_dir / "checkpoint.npz").exists():
        import shutil
        shutil.rmtree(run_dir)
    start = time.process_time()
    with training_threads():
        result = model_entry(model).trainer(config, run_dir, progress=False)
    return config, result, (time.process_time() - start) / 60


def segmentation():
    lines = ["# Segmentation on digit-scenes (test scenes: 300, 11 classes)", "",
             "Reproduce: `python benchmarks/applications.py segmentation` (the registry's defaults: "
             "`minidl train unet`, `minidl train seg-vit`).", "", load_line(), "",
             "| model | epochs | training CPU minutes | test pixel accuracy | test mIoU | target |",
             "|---|---|---|---|---|---|"]
    baseline = None
    for model, target in (("unet", 0.85), ("seg-vit", 0.75)):
        config, result, _ = train(model)
        last = result["history"][-1]
        baseline = result["baseline"]
        met = "met" if last["test_miou"] >= target else "NOT met"
        lines.append(f"| {model} | {last['epoch']} | {last['training_cpu_minutes']:.2f} | "
                     f"{last['test_pixel_accuracy']:.2%} | {last['test_miou']:.3f} | >= {target} ({met}) |")
        print(lines[-1], flush=True)
    lines.append(f"| per-pixel intensity baseline | - | - | {baseline['pixel_accuracy']:.2%} | "
                 f"{baseline['miou']:.3f} | - |")
    lines += ["", "Training CPU minutes: process CPU time of the training epochs and their test "
              "evaluations, as metrics.json's `training_cpu_minutes`."]
    (RESULTS / "segmentation.md").write_text("\n".join(lines) + "\n")


def completion():
    from minidl.completion import completion_report, load_classifier
    from minidl.training.gpt import load_run

    header = load_line()
    _, _, gpt_minutes = train("pixel-gpt")
    _, cnn_result, cnn_minutes = train("cnn")
    _, model, task = load_run(RUNS / "pixel-gpt")
    report = completion_report(model, task, load_classifier(RUNS / "cnn"), samples=4)
    lines = ["# Image completion with pixel-gpt (bottom half of the 450 test digits, 4 samples each)", "",
             "Reproduce: `python benchmarks/applications.py completion` (`minidl train pixel-gpt`, "
             "`minidl train cnn`, then `minidl complete runs/applications/pixel-gpt --classifier "
             "runs/applications/cnn`).", "", header, "",
             f"pixel-gpt: {gpt_minutes:.1f} CPU minutes of training; reference CNN: test accuracy "
             f"{cnn_result['final']['acc']:.2%} ({cnn_minutes:.1f} CPU minutes).", "",
             "| what the reference CNN reads | share read as the original class |", "|---|---|",
             f"| completions, class NOT given (target >= 70%) | {report['without_class']:.1%} "
             f"({'met' if report['without_class'] >= 0.7 else 'NOT met'}) |",
             f"| completions, class given | {report['with_class']:.1%} |",
             f"| the top half alone (bottom half blank) | {report['top_half_only']:.1%} |",
             f"| the original digits at the same 4 grey levels | {report['quantised_originals']:.1%} |"]
    print("\n".join(lines), flush=True)
    (RESULTS / "completion.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "completion.json").write_text(json.dumps(report, indent=2) + "\n")


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
    print("\n".join(lines), flush=True)
    (RESULTS / "explain.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    parts = dict(segmentation=segmentation, completion=completion, explain=explain)
    for part in sys.argv[1:] or parts:
        parts[part]()
