"""A run directory: everything one training run leaves behind, in plain files.

    runs/mlp-digits-20261127-081500/
        config.json         what was asked for (model, dataset, epochs, lr, seed, ...)
        metrics.json        one record per finished epoch: losses, accuracies, timings
        checkpoint.npz      weights + optimizer state + epoch + config (written each epoch)
        best.npz            the same, for the epoch with the best test metric so far
        curves.png, confusion_matrix.png, misclassified.png, [filters.png, feature_maps.png]

The checkpoint is a `.npz` written with `minidl.save` and read with
`minidl.load`: arrays only, never pickle. Its keys are

    model.<name>        each entry of model.state_dict()
    optimizer.<n>       each array inside optimizer.state_dict()
    optimizer_layout    the rest of optimizer.state_dict() as JSON text, with
                        {"__array__": "optimizer.<n>"} where the arrays were
    schedulers_layout   the learning-rate schedulers' state_dicts (a list), the same way
    epoch               the number of epochs finished (int64 scalar)
    config              config.json's text

Text is stored as its UTF-8 bytes (a uint8 array). `minidl.save` writes a
temporary file and renames it, so Ctrl-C while saving never leaves half a file.
"""
import datetime
import json
import os
from pathlib import Path

import numpy as np

CHECKPOINT, BEST, METRICS, CONFIG = "checkpoint.npz", "best.npz", "metrics.json", "config.json"


def default_run_dir(model, dataset, root="runs"):
    """runs/<model>-<dataset>-<YYYYmmdd-HHMMSS>, made unique if it already exists."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{model}-{dataset}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / f"{model}-{dataset}-{stamp}-{suffix}"
    return path


# ---- text and nested state as arrays ---------------------------------------------
def text_to_array(text):
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def array_to_text(array):
    return np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8")


def flatten_state(state, prefix):
    """Split a nested structure (dicts, lists, numbers, strings, arrays) into a
    JSON-able layout and a dict of arrays named `prefix.<n>`. Dict keys keep
    their type (PyTorch-style optimizer states are keyed by int)."""
    arrays = {}

    def encode(value):
        data = getattr(value, "data", None)
        if isinstance(value, np.ndarray) or isinstance(data, np.ndarray):
            name = f"{prefix}.{len(arrays)}"
            arrays[name] = np.array(value if isinstance(value, np.ndarray) else data)
            return {"__array__": name}
        if isinstance(value, dict):
            return {"__dict__": [[encode(k), encode(v)] for k, v in value.items()]}
        if isinstance(value, (list, tuple)):
            return {"__tuple__" if isinstance(value, tuple) else "__list__": [encode(v) for v in value]}
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"checkpoint: cannot store a {type(value).__name__} in an optimizer state")

    return encode(state), arrays


def unflatten_state(layout, arrays):
    """Inverse of `flatten_state`."""
    if isinstance(layout, dict):
        if "__array__" in layout:
            return np.array(arrays[layout["__array__"]])
        if "__dict__" in layout:
            return {unflatten_state(k, arrays): unflatten_state(v, arrays) for k, v in layout["__dict__"]}
        if "__tuple__" in layout:
            return tuple(unflatten_state(v, arrays) for v in layout["__tuple__"])
        if "__list__" in layout:
            return [unflatten_state(v, arrays) for v in layout["__list__"]]
    return layout


def _is_figure(value):
    """A value metrics.json may hold: a number or null (bool is not a number here)."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def probe_write(directory):
    """Create and remove an empty file in `directory`; OSError where nothing can
    be written there. Asking the file system itself catches a read-only place
    even for root, for whom permission bits allow everything."""
    probe = Path(directory) / f".minidl-write-test-{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


class RunDirectory:
    """Reads and writes the files of one run (see the module docstring)."""

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunDirectory({str(self.path)!r})"

    def file(self, name):
        return self.path / name

    def create(self):
        """Make the directory (and its parents) and check it can be written;
        raise ValueError in one sentence when it cannot."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} is an existing file, not a directory; choose another run directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe_write(path)
        except OSError as error:
            raise ValueError(f"cannot write the run directory {path}: "
                             f"{error.strerror or error}") from None
        return self

    def has_checkpoint(self):
        return self.file(CHECKPOINT).is_file()

    # ---- JSON files --------------------------------------------------------
    def write_json(self, name, value):
        """Write `value` as the JSON file `name` in the run directory, whole or not
        at all: it is written to `name`.partial first and then renamed, so Ctrl-C
        or a full disk leaves the previous file (if any) as it was."""
        temporary = self.file(name + ".partial")
        try:
            temporary.write_text(json.dumps(value, indent=2) + "\n")
            os.replace(temporary, self.file(name))
        except BaseException:              # Ctrl-C or a full disk: the old file stays, no .partial beside it
            temporary.unlink(missing_ok=True)
            raise

    def read_json(self, name):
        """The JSON file `name` of the run directory; a one-sentence error when it is missing or damaged."""
        path = self.file(name)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: is {self.path} a minidl run directory?")
        try:
            return json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not valid JSON ({error}); is {self.path} a minidl run directory?") from None

    def save_config(self, config):
        self.write_json(CONFIG, config)

    def load_config(self):
        config = self.read_json(CONFIG)
        if not isinstance(config, dict) or "model" not in config:
            raise ValueError(f"{self.file(CONFIG)} does not describe a minidl run (no \"model\" entry)")
        if not isinstance(config["model"], str):
            raise ValueError(f"{self.file(CONFIG)}: \"model\" must be a model's name (a string), "
                             f"got {config['model']!r}")
        return config

    def save_metrics(self, epochs):
        """`epochs`: a list with one dict per finished epoch."""
        self.write_json(METRICS, {"epochs": epochs})

    def load_metrics(self):
        if not self.file(METRICS).is_file():
            return []
        metrics = self.read_json(METRICS)
        records = metrics.get("epochs") if isinstance(metrics, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) and "epoch" in r for r in records):
            raise ValueError(f"{self.file(METRICS)} does not hold minidl metrics (an \"epochs\" list of "
                             "per-epoch records); is it damaged?")
        for record in records:            # epochs are compared and figures plotted: check their types
            epoch = record["epoch"]
            if not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1):
                raise ValueError(f"{self.file(METRICS)}: a record's \"epoch\" must be a positive integer, got "
                                 f"{epoch!r}; is it damaged?")
            for key, value in record.items():
                if not all(_is_figure(v) for v in (value if isinstance(value, list) else [value])):
                    raise ValueError(f"{self.file(METRICS)}: epoch {epoch}'s {key!r} must be a number (or a list "
                                     f"of numbers), got {value!r}; is it damaged?")
        return records

    def recorded(self, epoch, key):
        """The figure `key` that metrics.json holds for `epoch`; None when it has no
        record of that epoch, a ValueError when the record lacks the figure."""
        records = [r for r in self.load_metrics() if r["epoch"] == epoch]
        if not records:
            return None
        if records[-1].get(key) is None:
            raise ValueError(f"{self.file(METRICS)}: the record of epoch {epoch} has no {key!r}; is it damaged?")
        return records[-1][key]

    # ---- checkpoint --------------------------------------------------------
    def save_checkpoint(self, model, optimizer, epoch, config, schedulers=(), name=CHECKPOINT):
        """Write weights, optimizer state, `epoch`, `config` and the schedulers'
        states to checkpoint.npz (or `name`)."""
        import minidl

        entries = {f"model.{k}": np.asarray(v) for k, v in model.state_dict().items()}
        layout, arrays = flatten_state(optimizer.state_dict() if optimizer is not None else None, "optimizer")
        entries.update(arrays)
        entries["optimizer_layout"] = text_to_array(json.dumps(layout))
        if schedulers:
            layout, arrays = flatten_state([s.state_dict() for s in schedulers], "schedulers")
            entries.update(arrays)
            entries["schedulers_layout"] = text_to_array(json.dumps(layout))
        entries["epoch"] = np.array(epoch, dtype=np.int64)
        entries["config"] = text_to_array(json.dumps(config))
        minidl.save(entries, self.file(name))       # writes a temporary file, then renames

    def load_checkpoint(self, name=CHECKPOINT):
        """Return a dict with `model` (a state dict), `optimizer` (a state dict or
        None), `schedulers` (a list of state dicts, maybe empty), `epoch` (int)
        and `config` (dict), read from checkpoint.npz (or `name`, e.g. best.npz)."""
        import minidl

        path = self.file(name)
        if not path.is_file():
            if name == BEST:
                raise FileNotFoundError(f"{path} not found: the run in {self.path} has no best "
                                        "checkpoint (written for tasks with a test metric)")
            raise FileNotFoundError(
                f"{path} not found: the run in {self.path} has not finished an epoch yet "
                "(a checkpoint is written at the end of every epoch)")
        entries = minidl.load(path)
        entries = {k: np.asarray(getattr(v, "data", v)) for k, v in entries.items()}
        for key in ("optimizer_layout", "epoch", "config"):
            if key not in entries:
                raise ValueError(f"{path}: not a minidl training checkpoint (no {key!r} entry)")
        model_state = {k[len("model."):]: v for k, v in entries.items() if k.startswith("model.")}
        for key, value in model_state.items():
            if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
                raise ValueError(f"{path}: 'model.{key}' holds NaN or infinite values; minidl never "
                                 "writes such a checkpoint, so this file was damaged or edited")
        epoch = entries["epoch"]
        if epoch.shape != () or epoch.dtype.kind not in "iu" or epoch < 0:
            raise ValueError(f"{path}: 'epoch' must be a non-negative integer scalar, got an array "
                             f"of dtype {epoch.dtype} and shape {epoch.shape}")
        try:
            layout = json.loads(array_to_text(entries["optimizer_layout"]))
            schedulers = []
            if "schedulers_layout" in entries:
                schedulers = unflatten_state(json.loads(array_to_text(entries["schedulers_layout"])), entries)
            optimizer = unflatten_state(layout, entries)
            config = json.loads(array_to_text(entries["config"]))
            if not isinstance(config, dict):
                raise ValueError(f"'config' holds {config!r}, not config.json's object")
            if not (isinstance(schedulers, list) and all(isinstance(state, dict) for state in schedulers)):
                raise ValueError(f"'schedulers_layout' holds {schedulers!r}, not a list of schedulers' states")
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: the optimizer, scheduler or config entries are damaged "
                             f"({type(error).__name__}: {error})") from None
        # config.json says which model to build for these weights: it must be the one they came from
        named = self.load_config()["model"] if self.file(CONFIG).is_file() else None
        if named is not None and config.get("model") != named:
            raise ValueError(f"{self.file(CONFIG)} names the model {named!r}, but {path} holds the weights of "
                             f"a {config.get('model')!r} run: was config.json edited or copied from another run?")
        return dict(model=model_state, optimizer=optimizer, schedulers=schedulers,
                    epoch=int(epoch), config=config)

    def resume(self, model, optimizer, schedulers=()):
        """Load the checkpoint into `model`, `optimizer` and `schedulers` (in
        place); return (epochs finished, the metrics records of those epochs)."""
        checkpoint = self.load_checkpoint()
        # the run continues as it was made: only its length and where its data lives may change
        saved = self.load_config() if self.file(CONFIG).is_file() else {}
        made = checkpoint["config"]
        changed = sorted(k for k in saved.keys() & made.keys() if k not in ("epochs", "data_root")
                         and saved[k] != made[k])
        if changed:
            raise ValueError(f"{self.file(CONFIG)} says " + ", ".join(f"{k} {saved[k]!r}" for k in changed)
                             + f", but {self.file(CHECKPOINT)} was trained with "
                             + ", ".join(f"{k} {made[k]!r}" for k in changed)
                             + "; a resumed run keeps its settings (only --epochs may change)")
        if len(checkpoint["schedulers"]) != len(schedulers):
            raise ValueError(f"{self.file(CHECKPOINT)} holds {len(checkpoint['schedulers'])} learning-rate "
                             f"schedulers, this run has {len(schedulers)}")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        for scheduler, state in zip(schedulers, checkpoint["schedulers"]):
            scheduler.load_state_dict(state)
        done = checkpoint["epoch"]
        return done, [r for r in self.load_metrics() if r["epoch"] <= done]
