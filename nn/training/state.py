"""A trainer's state as a :class:`~nn.training.checkpoint.Checkpoint`, and back.

Weights go to the host (so any backend can load them) and come back in place,
since the network's layers hold references to the very parameter arrays.
"""

from __future__ import annotations

from dataclasses import replace

from nn.training.checkpoint import Checkpoint, CheckpointError

_OPT, _NET = "optimizer.", "net."


def _split_optimizer(trainer) -> tuple[dict, dict]:
    """The optimizer's state as (JSON scalars, ``{"optimizer.<slot>.<key>":
    host array}``)."""
    scalars, arrays = {}, {}
    for name, value in trainer.optimizer.state_dict().items():
        if isinstance(value, dict):
            for key, a in value.items():
                arrays[f"{_OPT}{name}.{key}"] = trainer.backend.asnumpy(a)
        else:
            scalars[name] = value
    return scalars, arrays


def _net_state(trainer) -> tuple[dict, dict]:
    """Batch Normalization's running statistics (host arrays) and the Dropout
    generators' state (JSON); empty for ``TwoLayerNet``."""
    state_dict = getattr(trainer.net, "state_dict", None)
    if state_dict is None:
        return {}, {}
    state = state_dict()
    arrays = {_NET + k: trainer.backend.asnumpy(v) for k, v in state["buffers"].items()}
    network = {"dropout": state["dropout"]} if state["dropout"] else {}
    return arrays, network


def snapshot(trainer) -> Checkpoint:
    """The run's state now, as host arrays (see :mod:`nn.training.checkpoint`)."""
    config = replace(trainer.config, iters=trainer.total, epochs=None)
    optimizer, buffers = _split_optimizer(trainer)
    net_buffers, network = _net_state(trainer)
    return Checkpoint(
        params={k: trainer.backend.asnumpy(v) for k, v in trainer.net.params.items()},
        iteration=trainer.iteration,
        config=config.to_dict(),
        optimizer=optimizer,
        buffers={**buffers, **net_buffers},
        network=network,
        rng_state=trainer.rng.bit_generator.state,
        dataset=trainer.dataset,
        backend=trainer.backend.name,
        elapsed=trainer.elapsed,
        history={k: list(v) for k, v in vars(trainer.history).items()},
    )


def restore(trainer, ckpt: Checkpoint) -> None:
    """Load ``ckpt`` into a freshly built ``trainer``: weights (in place), RNG,
    optimizer, iteration and history. :class:`CheckpointError` if it does not fit.
    """
    net = trainer.net
    ckpt.check_params({k: tuple(v.shape) for k, v in net.params.items()})
    if ckpt.iteration > trainer.total:
        raise CheckpointError(
            f"the checkpoint is at iteration {ckpt.iteration}, past the requested "
            f"{trainer.total}; ask for more iterations"
        )
    for key, value in ckpt.params.items():
        # In place: the layers hold references to these very arrays.
        net.params[key][...] = trainer.backend.asarray(value, dtype=net.dtype)
    try:
        trainer.rng.bit_generator.state = ckpt.rng_state
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise CheckpointError(f"checkpoint has an unusable RNG state: {exc}") from None
    trainer.indices.reset()  # a block drawn ahead came from the old state
    state = dict(ckpt.optimizer)
    for name, value in ckpt.buffers.items():
        if name.startswith(_OPT):
            slot, key = name[len(_OPT) :].split(".", 1)
            state.setdefault(slot, {})[key] = value
    try:
        trainer.optimizer.load_state_dict(state, params=net.params)
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(
            f"checkpoint has an unusable optimizer state: {exc}"
        ) from None
    if hasattr(net, "load_state_dict"):
        buffers = {
            k[len(_NET) :]: v for k, v in ckpt.buffers.items() if k.startswith(_NET)
        }
        try:
            net.load_state_dict(
                {"buffers": buffers, "dropout": ckpt.network.get("dropout", [])}
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(
                f"checkpoint has an unusable network state: {exc}"
            ) from None
    trainer.iteration = trainer.checkpoint_iteration = ckpt.iteration
    trainer.elapsed = ckpt.elapsed
    for name in vars(trainer.history):
        saved = ckpt.history.get(name)
        setattr(trainer.history, name, saved.tolist() if saved is not None else [])
