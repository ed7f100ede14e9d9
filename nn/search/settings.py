"""What a search runs: the fixed settings, and each trial's full set of values."""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field

from nn.search.space import parse_space

#: Settings that define what a trial computes: a study stores them, and a
#: command joining it must agree. Where and how fast it runs (device, data
#: folder, workers, storage) may differ from machine to machine.
DEFINING = (
    "dataset",
    "train_size",
    "validation",
    "epochs",
    "batch_size",
    "hidden_sizes",
    "optimizer",
    "lr",
    "weight_decay",
    "weight_init",
    "dropout",
    "batchnorm",
    "dtype",
    "seed",
)


@dataclass(frozen=True)
class SearchSettings:
    """Everything a worker needs (picklable; the CLI fills it from the flags).

    The defaults are the book's section 6.5: 500 training images of which 20%
    validate, six hidden layers of 100, SGD, batch 100, 50 epochs, 100 trials
    over the learning rate and the weight decay, randomly sampled.
    """

    space: str
    storage: str
    study: str = "xpnet-search"
    trials: int = 100
    dataset: str = "mnist"
    data_dir: str | None = None
    train_size: int = 500
    validation: float = 0.2
    epochs: int = 50
    batch_size: int = 100
    hidden_sizes: tuple[int, ...] = (100,) * 6
    optimizer: str = "sgd"
    lr: float | None = None
    weight_decay: float = 0.0
    weight_init: str = "he"
    dropout: float = 0.0
    batchnorm: bool = False
    dtype: str = "float32"
    seed: int = 0
    device: str = "auto"
    sampler: str = "random"
    prune: str | None = None
    heartbeat: int = 60
    out: str = "search"
    env: dict = field(default_factory=dict)

    def defining(self) -> dict:
        """The settings a study must agree on (JSON-friendly), space included."""
        d = asdict(self)
        values = {k: d[k] for k in DEFINING}
        values["hidden_sizes"] = list(values["hidden_sizes"])
        values["space"] = self.space
        return values

    def dimensions(self):
        return parse_space(self.space)


def trial_values(settings: SearchSettings, params: dict) -> dict:
    """The hyper-parameters of a trial: ``params`` (sampled) over the fixed flags.

    -> dict with hidden_sizes, optimizer, lr, weight_decay, weight_init,
    dropout, batchnorm, batch_size.
    """
    depth = int(params.get("depth", len(settings.hidden_sizes)))
    width = params.get("width")
    if width is not None or "depth" in params:
        width = int(width if width is not None else settings.hidden_sizes[0])
        hidden = (width,) * depth
    else:
        hidden = tuple(settings.hidden_sizes)
    batchnorm = params.get("batchnorm", settings.batchnorm)
    return {
        "hidden_sizes": hidden,
        "optimizer": params.get("optimizer", settings.optimizer),
        "lr": params.get("lr", settings.lr),
        "weight_decay": float(params.get("weight_decay", settings.weight_decay)),
        "weight_init": params.get("weight_init", settings.weight_init),
        "dropout": float(params.get("dropout", settings.dropout)),
        "batchnorm": batchnorm in (True, "true"),
        "batch_size": int(params.get("batch_size", settings.batch_size)),
    }


def trial_seed(settings: SearchSettings, number: int) -> int:
    """The seed of trial ``number``'s weights and batches (the split uses ``seed``)."""
    return (settings.seed + 1 + number) % 2**32


def train_command(settings: SearchSettings, values: dict, seed: int) -> str:
    """The ``xpnet-train`` command that trains with a trial's values.

    It trains on the whole training set and reports test accuracy, the step
    the book takes once the search has found its values.
    """
    args = ["xpnet-train", "--dataset", settings.dataset]
    if settings.data_dir:
        args += ["--data-dir", settings.data_dir]
    args += ["--hidden-sizes", ",".join(map(str, values["hidden_sizes"]))]
    args += ["--optimizer", values["optimizer"]]
    if values["lr"] is not None:
        args += ["--lr", f"{values['lr']:.4g}"]
    if values["weight_decay"]:
        args += ["--weight-decay", f"{values['weight_decay']:.4g}"]
    args += ["--weight-init", str(values["weight_init"])]
    if values["dropout"]:
        args += ["--dropout", f"{values['dropout']:.4g}"]
    if values["batchnorm"]:
        args.append("--batchnorm")
    args += [
        "--batch-size",
        str(values["batch_size"]),
        "--epochs",
        str(settings.epochs),
    ]
    args += ["--dtype", settings.dtype, "--seed", str(seed)]
    return shlex.join(args)
