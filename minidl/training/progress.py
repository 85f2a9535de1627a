"""Running statistics of one epoch, shown as a tqdm progress bar.

    with EpochProgress(len(loader), "epoch 3/10") as progress:
        for images, labels in loader:
            ...
            progress.update(len(labels), loss.item(), correct)
    progress.loss, progress.accuracy, progress.samples_per_second

The bar shows the running mean loss, the running accuracy and the throughput
in samples per second; the same figures are what the epoch's metrics record.
"""
import time

from tqdm.auto import tqdm


class EpochProgress:
    """Accumulates loss, accuracy and throughput over an epoch's batches."""

    def __init__(self, total_batches, description, enabled=True):
        self.total_loss = 0.0            # sum over samples of the loss (float64)
        self.correct = 0
        self.seen = 0
        self.start = time.perf_counter()
        self.bar = tqdm(total=total_batches, desc=description, unit="batch",
                        disable=not enabled, leave=True, dynamic_ncols=True)

    def update(self, batch_size, mean_loss, correct):
        """Record one batch: its size, its mean loss and how many it got right."""
        self.total_loss += float(mean_loss) * batch_size
        self.correct += int(correct)
        self.seen += int(batch_size)
        self.bar.set_postfix(loss=f"{self.loss:.4f}", acc=f"{self.accuracy:.2%}",
                             samples_per_s=f"{self.samples_per_second:,.0f}", refresh=False)
        self.bar.update(1)

    @property
    def seconds(self):
        return time.perf_counter() - self.start

    @property
    def loss(self):
        return self.total_loss / max(self.seen, 1)

    @property
    def accuracy(self):
        return self.correct / max(self.seen, 1)

    @property
    def samples_per_second(self):
        return self.seen / max(self.seconds, 1e-9)

    def close(self):
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False
