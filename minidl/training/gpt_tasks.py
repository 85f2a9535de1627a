"""The two tasks of minidl's GPT as token arrays (used by minidl.training.gpt).

- CharacterTask: the bundled Shakespeare slice (Hamlet) as character ids,
  split 90/10 into training and validation text. A batch is `batch_size`
  windows of block_size + 1 characters at random places; fixed validation
  windows; the bigram baseline (add-one smoothed next-character counts of the
  training text) measured on those same windows.
- PixelTask: 8x8 digits quantised to LEVELS grey levels (tokens 0..LEVELS-1),
  each sequence a class token (LEVELS + digit) then the 64 pixels row by row.
  In a training batch, a random UNKNOWN_CLASS_RATE of the sequences start with
  the "unknown class" token UNKNOWN instead, so the model also learns to draw
  (and to complete, minidl.completion) a digit without being told which.
"""
import numpy as np

from ..data import load_dataset, load_text
from ..models.gpt import PIXEL_LEVELS as LEVELS  # grey levels of pixel-gpt

UNKNOWN = LEVELS + 10      # pixel-gpt's "class not given" start token
UNKNOWN_CLASS_RATE = 0.25  # share of training sequences started by UNKNOWN
EVAL_WINDOWS = 256         # validation windows of the character task


class CharacterTask:
    name = "shakespeare"

    def __init__(self, block_size):
        text = load_text("shakespeare")
        self.vocabulary = "".join(sorted(set(text)))
        self.index = {c: i for i, c in enumerate(self.vocabulary)}
        tokens = np.array([self.index[c] for c in text], dtype=np.int64)
        cut = int(0.9 * len(tokens))
        self.train, self.validation = tokens[:cut], tokens[cut:]
        self.block_size = block_size
        rng = np.random.default_rng(1234)            # fixed validation windows
        starts = rng.integers(0, len(self.validation) - block_size - 1, EVAL_WINDOWS)
        self.eval_windows = np.stack([self.validation[s:s + block_size + 1] for s in starts])

    @property
    def vocab_size(self):
        return len(self.vocabulary)

    def batch(self, batch_size, rng):
        """(inputs, targets), each (B, T): targets are inputs shifted by one."""
        starts = rng.integers(0, len(self.train) - self.block_size - 1, batch_size)
        windows = np.stack([self.train[s:s + self.block_size + 1] for s in starts])   # (B, T+1)
        return windows[:, :-1], windows[:, 1:]

    def decode(self, tokens):
        return "".join(self.vocabulary[int(t)] for t in tokens)

    def bigram_loss(self):
        """Cross-entropy (nats/char) of add-one-smoothed bigram counts from the
        training text, on the validation windows' predictions."""
        V = self.vocab_size
        counts = np.ones((V, V))
        np.add.at(counts, (self.train[:-1], self.train[1:]), 1.0)
        log_probs = np.log(counts / counts.sum(axis=1, keepdims=True))
        inputs, targets = self.eval_windows[:, :-1], self.eval_windows[:, 1:]
        return float(-np.mean(log_probs[inputs, targets]))


class PixelTask:
    name = "digits"

    def __init__(self, data_root=None, train_images=None, test_images=None,
                 unknown_class_rate=UNKNOWN_CLASS_RATE):
        """The bundled digits' train and test splits, or the ArrayDatasets given
        (e.g. a validation split carved out of the training digits)."""
        self.train_images = (load_dataset("digits", "train", root=data_root) if train_images is None
                             else train_images)
        self.test_images = load_dataset("digits", "test", root=data_root) if test_images is None else test_images
        self.unknown_class_rate = unknown_class_rate
        self.train = self.sequences(self.train_images)           # (N, 65)
        self.eval_windows = self.sequences(self.test_images)
        self.block_size = self.train.shape[1] - 1                 # 64

    vocab_size = LEVELS + 11                 # grey levels, 10 class tokens, UNKNOWN

    @staticmethod
    def quantise(images):
        """[0, 1] pixels -> integer levels 0..LEVELS-1."""
        return np.clip(np.round(images * (LEVELS - 1)), 0, LEVELS - 1).astype(np.int64)

    def sequences(self, dataset):
        pixels = self.quantise(dataset.images).reshape(len(dataset), -1)     # (N, 64)
        classes = (LEVELS + dataset.labels)[:, None]                          # (N, 1)
        return np.concatenate([classes, pixels], axis=1)                      # (N, 65)

    def batch(self, batch_size, rng):
        rows = self.train[rng.integers(0, len(self.train), batch_size)]       # (B, 65), a copy
        rows[rng.random(batch_size) < self.unknown_class_rate, 0] = UNKNOWN        # class not given
        return rows[:, :-1], rows[:, 1:]

    def images_from(self, sequences):
        """Generated (N, 65) sequences -> images (N, 1, 8, 8) in [0, 1]."""
        pixels = np.clip(sequences[:, 1:], 0, LEVELS - 1)
        return (pixels / (LEVELS - 1)).reshape(len(sequences), 1, 8, 8).astype(np.float32)


