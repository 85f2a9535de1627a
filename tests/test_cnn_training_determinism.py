"""The CNN's training is repeatable bit for bit where it matters most: on 28x28
images with two Numba threads, the way `minidl train cnn --dataset
fashion-mnist` runs.

tests/test_models_cnn.py already checks a few steps on 8x8 digits in the test
process, where conftest.py pins Numba to one thread and those small
convolutions stay below the parallel threshold anyway. Here each run is a
fresh Python process with NUMBA_NUM_THREADS=2 and BLAS at its default two
threads (minidl imported first and minidl.threads.training_threads, as the
CLI runs; the run reports the BLAS thread count), training the Keras CNN on
28x28 images at batch 32, so the convolutions split the batch across threads
and sum per-thread weight gradients. The seeding follows minidl.training.fit:
the model from the run's seed, each epoch's shuffling and augmentation (random
crop and flip) from epoch_seed(seed, epoch).

Images: the bundled 8x8 digits, each pixel repeated 3x3 and padded to 28x28,
so the test needs no downloaded dataset.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import minidl
from minidl.kernels import conv_fast

RUN = r"""
import hashlib, json, sys
import minidl                            # first, as the `minidl` command does (see minidl/threads.py)
import numba
import numpy as np
import minidl as mdl
from minidl import optim
from minidl.data import ArrayDataset, DataLoader, load_dataset
from minidl.models import build_model
from minidl.threads import training_threads
from minidl.training import epoch_seed, train_one_epoch

class Recorder:                          # stands in for EpochProgress: keeps every step's loss
    def __init__(self, losses):
        self.losses = losses
    def update(self, batch_size, mean_loss, correct):
        self.losses.append(float(mean_loss).hex())

digits = load_dataset("digits", "train")
big = np.kron(digits.images[:N_IMAGES], np.ones((1, 1, 3, 3), np.float32))       # (N, 1, 24, 24)
images = np.pad(big, ((0, 0), (0, 0), (2, 2), (2, 2)))                              # (N, 1, 28, 28)
data = ArrayDataset(images, digits.labels[:N_IMAGES], digits.classes, "fashion-mnist")

def run(seed):
    mdl.manual_seed(seed)
    model = build_model("cnn", (1, 28, 28), 10)
    optimizer = optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    with training_threads():
        for epoch in (1, 2):
            e_seed = epoch_seed(seed, epoch)
            mdl.manual_seed(e_seed)
            loader = DataLoader(data, batch_size=32, shuffle=True, seed=e_seed)
            train_one_epoch(model, loader, optimizer, "fashion-mnist", augment=True,
                            progress=Recorder(losses))
    digest = hashlib.sha256()
    for name, value in model.state_dict().items():
        digest.update(name.encode()); digest.update(np.ascontiguousarray(value).tobytes())
    return dict(losses=losses, weights=digest.hexdigest())

runs = {str(seed): run(seed) for seed in SEEDS}
with training_threads():
    from threadpoolctl import threadpool_info
    blas = min(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
print(json.dumps(dict(threads=numba.get_num_threads(), blas=blas, runs=runs)))
"""


def train_in_fresh_process(seeds, n_images=128):
    package_parent = str(Path(minidl.__file__).resolve().parents[1])
    env = dict(os.environ, NUMBA_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2",
               PYTHONPATH=os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MINIDL_BLAS_THREADS", "OMP_WAIT_POLICY"):
        env.pop(name, None)
    code = RUN.replace("N_IMAGES", str(n_images)).replace("SEEDS", repr(tuple(seeds)))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_28x28_batch_32_convolutions_take_the_parallel_path():
    # conv1's forward work for a batch: out.size * (Cin * 3 * 3) multiply-adds
    work = 32 * 32 * 26 * 26 * (1 * 3 * 3)
    assert work >= conv_fast.PARALLEL_MIN_WORK


def test_same_seed_gives_the_same_loss_curve_and_weights_bit_for_bit_across_processes():
    first = train_in_fresh_process(seeds=(3, 4))
    second = train_in_fresh_process(seeds=(3,))
    assert first["threads"] == 2 and second["threads"] == 2
    assert first["blas"] == 2 and second["blas"] == 2
    a, b, other = first["runs"]["3"], second["runs"]["3"], first["runs"]["4"]
    assert len(a["losses"]) == 2 * 4                      # 2 epochs of 128 / 32 steps
    losses = [float.fromhex(v) for v in a["losses"]]
    assert all(np.isfinite(losses)) and losses[0] > 1.5   # a real run, starting near log(10)
    assert a["losses"] == b["losses"]                      # every step's loss, bit for bit
    assert a["weights"] == b["weights"]                    # and the final weights
    assert other["losses"][0] != a["losses"][0] and other["weights"] != a["weights"]
