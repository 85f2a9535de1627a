"""The `minidl` command: train, evaluate, benchmark, check gradients, manage data.

    minidl train mlp                         # bundled digits, progress bar, run directory
    minidl train mlp --epochs 5 --out runs/first
    minidl train mlp --resume runs/first --epochs 10
    minidl train cnn --max-minutes 20        # stops cleanly at the budget; --resume continues
    minidl eval runs/first                   # same test accuracy, from the checkpoint
    minidl eval runs/first --best            # the best epoch's checkpoint (best.npz)
    minidl bench conv --quick                # side-by-side timings
    minidl gradcheck                         # every functional op against finite differences
    minidl check 01b --init                  # a tutorial's exercises to fill in; then `minidl check 01b`
    minidl data info                         # which datasets are where
    minidl train unet                        # segmentation of digit-scenes
    minidl explain runs/first                # saliency / Grad-CAM maps of a classifier run
    minidl complete runs/pixel               # pixel-gpt completes the bottom half of digits

`main(argv)` returns the exit code, so tests call it in-process.
"""
import argparse
import sys
from pathlib import Path

from . import models
from .optim.lr_scheduler import SCHEDULES

EPILOG = "Run `minidl COMMAND --help` for the options of one command."


# The settings `minidl train` has always written to config.json (TrainConfig.to_dict).
SETTINGS_A_RUN_KEEPS = ("dataset", "epochs", "batch_size", "lr", "optimizer", "seed")


def _train(args):
    from .training import TrainConfig, RunDirectory, TrainingInterrupted, default_run_dir, make_config

    entry = models.model_entry(args.model)
    for option, value in (("--resume", args.resume), ("--out", args.out)):
        if value == "":                    # e.g. an unset shell variable: not "no option"
            raise ValueError(f"{option} needs a run directory, got an empty path")
    if args.resume is not None and args.out is not None and Path(args.out).resolve() != Path(args.resume).resolve():
        raise ValueError(f"--out {args.out} and --resume {args.resume}: a resumed run continues in its own "
                         "directory; to branch off, copy the run directory and resume the copy")
    if args.label_smoothing is not None and entry.kind != "classifier":
        raise ValueError(f"--label-smoothing applies to classifiers; {args.model} is a {entry.kind}")
    if args.augment is not None and entry.kind == "generator":
        raise ValueError(f"--augment applies to classifiers and segmenters; {args.model} is a generator")
    given = dict(dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                 optimizer=args.optimizer, seed=args.seed, augment=args.augment,
                 weight_decay=args.weight_decay, data_root=args.data_root, scheduler=args.scheduler,
                 clip_grad_norm=args.clip_grad_norm, label_smoothing=args.label_smoothing)
    if args.resume is not None:
        from .data.datasets import dataset_key

        if given["dataset"] is not None:  # compared with the saved name in its one spelling
            given["dataset"] = dataset_key(given["dataset"])
        run = RunDirectory(args.resume)
        saved = run.load_config()
        if saved["model"] != args.model:
            raise SystemExit(f"minidl train: {args.resume} holds a {saved['model']!r} run, not {args.model!r}")
        # Settings every saved run has; without one the run would go on with TrainConfig's generic
        # default (10 epochs, the digits, ...) rather than its own, so refuse and say which
        # (--epochs may stand in for a lost "epochs": it may change on resume anyway)
        lacking = [k for k in SETTINGS_A_RUN_KEEPS if k not in saved and not (k == "epochs" and args.epochs)]
        if lacking and run.has_checkpoint():       # (without one, the trainer says it has nothing to resume)
            raise ValueError(f"{run.file('config.json')} has no " + ", ".join(f'"{k}"' for k in lacking)
                             + (" entries" if len(lacking) > 1 else " entry")
                             + ": is it damaged? A resumed run takes its settings from it"
                             + ("; give the total number of epochs with --epochs N" if lacking == ["epochs"]
                                else ""))
        clash = {k: v for k, v in given.items() if v is not None and k not in ("epochs", "data_root")
                 and saved.get(k) != v}
        if clash:
            raise SystemExit(f"minidl train --resume: the run was made with "
                             f"{ {k: saved.get(k) for k in clash} }; only --epochs may change "
                             f"(got {clash})")
        saved.update({k: given[k] for k in ("epochs", "data_root") if given[k] is not None})
        config, run_dir = TrainConfig.from_dict(saved), run.path
    else:
        config = make_config(args.model, **given)
        run_dir = args.out or default_run_dir(config.model, config.dataset)
    on = f" on {config.dataset}" if entry.kind == "classifier" else ""
    extras = "".join([f", {config.scheduler} schedule" if config.scheduler else "",
                      f", gradient norm clipped to {config.clip_grad_norm:g}" if config.clip_grad_norm else "",
                      ", augmented" if config.augment else ""])
    print(f"training {config.model}{on}: {config.epochs} epochs, batch {config.batch_size}, "
          f"{config.optimizer} lr {config.lr}{extras}, seed {config.seed}; run directory {run_dir}")
    try:
        entry.trainer(config, run_dir, resume=args.resume is not None, progress=not args.no_progress,
                      max_minutes=args.max_minutes)
    except TrainingInterrupted:
        return 130
    return 0


def _eval(args):
    from .training import RunDirectory, evaluate_run

    model = RunDirectory(args.run_dir).load_config()["model"]
    if models.model_entry(model).kind == "segmenter":
        from .training import segmentation

        result = segmentation.evaluate_run(args.run_dir, best=args.best)
        recorded = result["recorded_miou"]
        return 0 if recorded is None or recorded == result["miou"] else 1
    if models.model_entry(model).kind != "classifier":
        print(f"minidl eval: {args.run_dir} holds a {model!r} run, a generative model; its "
              f"metrics.json has its losses, and `minidl sample {args.run_dir}` draws from it",
              file=sys.stderr)
        return 2
    result = evaluate_run(args.run_dir, best=args.best)
    recorded = result["recorded_acc"]
    return 0 if recorded is None or recorded == result["acc"] else 1


def _sample(args):
    from .training import RunDirectory

    _positive("--num", args.num)
    if args.length < 0:
        raise ValueError(f"--length must be >= 0, got {args.length}")
    _writable_file("--out", args.out)
    config = RunDirectory(args.run_dir).load_config()
    entry = models.model_entry(config["model"])
    if entry.kind != "generator":
        print(f"minidl sample: {args.run_dir} holds a {config['model']!r} run, a {entry.kind}, "
              f"not a generative model; models that can sample: "
              f"{', '.join(models.available_models('generator')) or 'none registered yet'}",
              file=sys.stderr)
        return 2
    return entry.sampler(args.run_dir, args) or 0


def _check(args):
    from .exercises import runner

    if args.init:
        try:
            copied = runner.copy_skeleton(args.tutorial, args.file)
        except FileExistsError as error:
            print(f"minidl check --init: {error}", file=sys.stderr)
            return 1
        print(f"copied the exercises of tutorial {args.tutorial} to {copied}; fill them in, then run "
              f"`minidl check {args.tutorial}" + (f" --file {args.file}`" if args.file else "`"))
        return 0
    path = Path(args.file) if args.file else runner.default_student_path(args.tutorial)
    if not path.exists():
        print(f"minidl check: {path} does not exist; `minidl check {args.tutorial} --init` copies the "
              f"skeleton there (or give your file with --file)", file=sys.stderr)
        return 2
    return runner.report(args.tutorial, path, runner.check_file(args.tutorial, path))


def _compile(args):
    from .kernels.warmup import compile_all

    seconds = compile_all(progress=not args.no_progress)
    print("compiled (or loaded from the cache): " + ", ".join(f"{name} {t:.1f} s" for name, t in seconds.items()))
    return 0


def _positive(option, value):
    """A ValueError naming the option unless `value` is a positive integer."""
    if value < 1:
        raise ValueError(f"{option} must be a positive integer, got {value}")


def _writable_file(option, path):
    """A ValueError naming the option unless a file can be written at `path`,
    checked before any work (a probe file beside it, removed at once)."""
    from .training.run_directory import probe_write

    if path is None:
        return
    target = Path(path)
    parent = target.parent
    if target.is_dir():
        raise ValueError(f"{option} {path} is a directory; give a file name")
    if not parent.is_dir():
        raise ValueError(f"{option} {path}: the directory {parent} does not exist")
    try:
        probe_write(parent)
    except OSError as error:
        raise ValueError(f"{option} {path}: cannot write in {parent} ({error.strerror or error})") from None


def _writable_run_dir(run_dir, name):
    """A ValueError unless the existing run directory can take the report `name`
    that the command always writes there, checked before any work."""
    from .training.run_directory import probe_write

    if not Path(run_dir).is_dir():
        return                             # reading config.json says what is wrong with it
    try:
        probe_write(run_dir)
    except OSError as error:
        raise ValueError(f"{run_dir}: cannot write {name} in the run directory "
                         f"({error.strerror or error})") from None


def _explain(args):
    from .explain import explain_run

    _positive("--num", args.num)
    if not 0 < args.fraction < 1:
        raise ValueError(f"--fraction must be between 0 and 1 (the share of pixels hidden), got {args.fraction}")
    _writable_file("--out", args.out)
    _writable_run_dir(args.run_dir, "explain.json")

    explain_run(args.run_dir, num=args.num, layer=args.layer, fraction=args.fraction, out=args.out)
    return 0


def _complete(args):
    from .completion import complete_run

    _positive("--num", args.num)
    _positive("--samples", args.samples)
    if args.temperature is not None and not args.temperature > 0:
        raise ValueError(f"--temperature must be > 0, got {args.temperature}")
    _writable_file("--out", args.out)
    if args.classifier is not None:
        _writable_run_dir(args.run_dir, "completion.json")

    complete_run(args.run_dir, num=args.num, samples=args.samples, classifier_run=args.classifier,
                 temperature=args.temperature, seed=args.seed, out=args.out, start=args.start)
    return 0


def _bench(args):
    from .bench import runner
    from .training.run_directory import probe_write

    _positive("--processes", args.processes)
    try:                                   # before the suites run for minutes, not when their tables are written
        Path(args.out).mkdir(parents=True, exist_ok=True)
        probe_write(args.out)
    except OSError as error:
        raise ValueError(f"--out {args.out}: cannot write the results there ({error.strerror or error})") from None

    runner.run(args.suites, processes=args.processes, quick=args.quick, out_dir=args.out)
    return 0


def _gradcheck(args):
    from .gradcheck_table import run_gradcheck_table

    return run_gradcheck_table(args.ops)


def _data(args):
    from . import data

    if args.data_command == "download":
        if not hasattr(data, "download"):
            raise SystemExit("minidl data download: this version of minidl.data has no download()")
        data.download(args.name, root=args.root)
        return 0
    for name in ("digits", "mnist-5k", "mnist", "fashion-mnist"):
        try:
            train = data.load_dataset(name, "train", root=args.root)
            test = data.load_dataset(name, "test", root=args.root)
            print(f"{name:<14} found: train {train.images.shape}, test {test.images.shape}, "
                  f"{len(train.classes)} classes")
        except (FileNotFoundError, ValueError) as error:
            # ValueError: the files are there but damaged (read_idx says which and how)
            found = isinstance(error, ValueError)
            print(f"{name:<14} " + ("found but unreadable" + ("" if args.verbose else " (-v says why)")
                                    if found else "not found"))
            if args.verbose:
                print("  " + str(error).replace("\n", "\n  "))
    print("\nSearch order for datasets that are not bundled "
          "(an explicit --root, $MINIDL_DATA, the user data directory, system locations):")
    for directory in data.candidate_dirs("NAME", args.root):
        print(f"  {directory}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minidl", description="minidl: a small deep-learning framework you can read, "
        "step through and train with.", epilog=EPILOG)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    train = commands.add_parser(
        "train", help="train a model; writes a run directory with checkpoint, metrics and plots",
        description="Train MODEL on an image dataset. Each epoch shows a progress bar and a summary "
        "line; the run directory gets config.json, metrics.json, checkpoint.npz (written every "
        "epoch) and plots. Ctrl-C keeps the last finished epoch; --resume continues from it.")
    train.add_argument("model", metavar="MODEL", choices=models.available_models(),
                       help=f"one of: {', '.join(models.available_models())}")
    train.add_argument("--dataset", help="digits (bundled, the default), fashion-mnist, mnist or mnist-5k")
    train.add_argument("--epochs", type=int, help="number of epochs (default: per model)")
    train.add_argument("--batch-size", type=int, help="mini-batch size (default: per model)")
    train.add_argument("--lr", type=float, help="learning rate (default: per model)")
    train.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), help="default: per model")
    train.add_argument("--weight-decay", type=float, help="default: 0 (0.01 for adamw)")
    train.add_argument("--scheduler", choices=tuple(SCHEDULES),
                       help="learning-rate schedule, stepped every batch: "
                       + "; ".join(f"{k}: {v}" for k, v in SCHEDULES.items()).replace("%", "%%"))
    train.add_argument("--clip-grad-norm", type=float, metavar="X",
                       help="scale the gradients down when their total norm exceeds X")
    train.add_argument("--label-smoothing", type=float, metavar="E",
                       help="classifiers: train against (1 - E) x one-hot + E / classes (default: per model)")
    train.add_argument("--seed", type=int, help="seed of initialisation and shuffling (default 0)")
    train.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                       help="classifiers: random shifts (and flips for Fashion-MNIST) of the training images; "
                            "segmenters: training scenes composed afresh every epoch (default: per model)")
    train.add_argument("--out", metavar="DIR", help="run directory (default runs/MODEL-DATASET-TIME)")
    train.add_argument("--resume", metavar="RUN_DIR",
                       help="continue the run in RUN_DIR from its checkpoint (--epochs may raise the total)")
    train.add_argument("--max-minutes", type=float, metavar="M",
                       help="time budget: stop cleanly after M minutes, keeping the last finished "
                       "epoch (--resume continues)")
    train.add_argument("--data-root", metavar="DIR", help="look for datasets here first")
    train.add_argument("--no-progress", action="store_true", help="no progress bar (summary lines only)")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser(
        "eval", help="reload a run's checkpoint and recompute its test accuracy",
        description="Rebuild the model of RUN_DIR from config.json and checkpoint.npz, evaluate it on "
        "the test set and compare with the accuracy metrics.json recorded (exit code 1 if different).")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--best", action="store_true",
                          help="evaluate best.npz (the epoch with the best test accuracy) instead")
    evaluate.set_defaults(handler=_eval)

    sample = commands.add_parser(
        "sample", help="draw samples from a generative model's run (GPT text, GAN images)",
        description="Load RUN_DIR and sample from it; what that means depends on the model.")
    sample.add_argument("run_dir", metavar="RUN_DIR")
    sample.add_argument("--num", type=int, default=16,
                        help="how many images (image models; a text model writes one text)")
    sample.add_argument("--length", type=int, default=500, help="characters to generate (text models)")
    sample.add_argument("--prompt", default="", help="text to start from (text models)")
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", metavar="PATH", help="where to write the samples")
    sample.set_defaults(handler=_sample)

    explain = commands.add_parser(
        "explain", help="saliency, Grad-CAM and attention-rollout maps of a classifier run",
        description="Draw, for test images of a classifier run, which pixels its decision used "
        "(saliency; Grad-CAM of a Conv2d layer; attention rollout for a ViT) into RUN_DIR/explain.png, "
        "and measure each map's faithfulness on the whole test set (accuracy with the most important "
        "pixels hidden vs as many random pixels hidden) into RUN_DIR/explain.json.")
    explain.add_argument("run_dir", metavar="RUN_DIR")
    explain.add_argument("--num", type=int, default=8, help="test images in the grid (default 8)")
    explain.add_argument("--layer", help="the Conv2d layer for Grad-CAM, by name (default: the last one)")
    explain.add_argument("--fraction", type=float, default=0.1,
                         help="share of pixels hidden in the faithfulness check (default 0.1)")
    explain.add_argument("--out", metavar="PATH", help="where to write the grid (default RUN_DIR/explain.png)")
    explain.set_defaults(handler=_explain)

    complete = commands.add_parser(
        "complete", help="pixel-gpt: keep the top half of test digits and let the model draw the rest",
        description="Load a pixel-gpt run, keep the top half of test digits and sample the bottom half, "
        "without telling the model the class and with it; save a grid (original / masked / "
        "completions). With --classifier, a trained digits classifier says how often a completion "
        "is read as the original digit's class.")
    complete.add_argument("run_dir", metavar="RUN_DIR")
    complete.add_argument("--num", type=int, default=10, help="test digits to complete (default 10)")
    complete.add_argument("--samples", type=int, default=4, help="completions per digit (default 4)")
    complete.add_argument("--classifier", metavar="RUN_DIR",
                          help="a classifier run on digits (minidl train cnn) to measure the completions")
    complete.add_argument("--temperature", type=float,
                          help="sampling temperature (default: the one chosen on a validation split)")
    complete.add_argument("--start", choices=("unknown", "inferred"),
                          help="without the class, start from the 'unknown class' token or from the class "
                               "the model infers from the top half (default: the one chosen on a validation split)")
    complete.add_argument("--seed", type=int, default=0)
    complete.add_argument("--out", metavar="PATH", help="where to write the grid (default RUN_DIR/completions.png)")
    complete.set_defaults(handler=_complete)

    bench = commands.add_parser(
        "bench", help="time implementations side by side (Markdown table + bar chart per suite)",
        description="Run benchmark suites, each in several fresh processes (median taken).")
    bench.add_argument("suites", nargs="*", metavar="SUITE",
                       help="overhead, conv, pool, softmax, attention, cnn_step, gpt_step, gan_step (default: all); "
                       "jit: first-use compile times, chunks: the kernels' chunk sizes (these two only when named)")
    bench.add_argument("--processes", type=int, default=3, help="processes per suite (default 3)")
    bench.add_argument("--quick", action="store_true", help="small shapes, for a smoke test")
    bench.add_argument("--out", default="benchmarks/results", metavar="DIR")
    bench.set_defaults(handler=_bench)

    compile_ = commands.add_parser(
        "compile", help="compile every kernel now (with a progress bar), so no later run waits for it",
        description="Compile every Numba kernel of minidl, forward and backward, float32 and float64. "
        "Two worker processes compile at once; the machine code is cached on disk, so this is "
        "needed once per install.")
    compile_.add_argument("--no-progress", action="store_true", help="no progress bar")
    compile_.set_defaults(handler=_compile)

    check = commands.add_parser(
        "check", help="check your answers to a tutorial's exercises: passed / failed with a hint",
        description="Run the checks of tutorial TUTORIAL's exercises on your file (default "
        "exercises/NN_name.py in the current directory) and print, per exercise, passed or failed "
        "with what went wrong and a hint (exit code 1 if any fails). --init copies the skeleton there first.")
    check.add_argument("tutorial", metavar="TUTORIAL", help="the tutorial's number, e.g. 01 or 01b")
    check.add_argument("--file", metavar="PATH", help="your exercises file (default exercises/NN_name.py)")
    check.add_argument("--init", action="store_true", help="copy the skeleton to start from (never overwrites)")
    check.set_defaults(handler=_check)

    gradcheck = commands.add_parser(
        "gradcheck", help="check every functional op's backward against finite differences",
        description="Run mdl.gradcheck (float64, central differences) on small inputs of each "
        "op in minidl.functional and print a pass/fail table (exit code 1 on any failure).")
    gradcheck.add_argument("ops", nargs="*", metavar="OP", help="only these ops (default: all)")
    gradcheck.set_defaults(handler=_gradcheck)

    data = commands.add_parser("data", help="datasets: where they are, download MNIST/Fashion-MNIST",
                               description="Inspect and fetch datasets.")
    data_commands = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    data_commands.required = True
    download = data_commands.add_parser("download", help="download a dataset (needs internet; checksums verified)")
    download.add_argument("name", metavar="NAME", choices=("mnist", "fashion-mnist"))
    download.add_argument("--root", metavar="DIR", help="directory to write to (default: user data dir)")
    info = data_commands.add_parser("info", help="which datasets are found, and where minidl looks")
    info.add_argument("--root", metavar="DIR")
    info.add_argument("-v", "--verbose", action="store_true", help="say why a dataset was not found")
    data.set_defaults(handler=_data)
    return parser


def main(argv=None):
    """Run one command; problems a user can fix (a missing or unwritable path, a
    bad value, a diverged run) end in one line on stderr and exit code 1, and
    Ctrl-C in one line and exit code 130 (`train` also says how to resume)."""
    from .threads import training_threads
    from .training import TrainingDiverged

    args = build_parser().parse_args(argv)
    try:
        if args.command in ("train", "eval", "sample", "explain", "complete"):
            with training_threads():       # one thread pool at a time (minidl/threads.py)
                return args.handler(args)
        return args.handler(args)
    except (ValueError, TrainingDiverged) as error:
        print(f"minidl {args.command}: {error}", file=sys.stderr)
        return 1
    except OSError as error:               # missing file, permission, a directory where a file was asked
        where = f" {error.filename}" if error.filename else ""
        print(f"minidl {args.command}:{where} {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nminidl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
