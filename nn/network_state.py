"""What a chapter 6 network holds besides its parameters, for checkpoints:
Batch Normalization's running statistics and the Dropout generators' state."""

from __future__ import annotations

from nn.layers import BatchNormalization, Dropout


class NetworkState:
    """``state_dict``/``load_state_dict`` over a network's ``layers`` (an
    ordered dict of the book's layers named ``BatchNorm1``, ``Dropout1``, ...);
    mixed into [`MultiLayerNet`][nn.multi_layer_net.MultiLayerNet]."""

    def state_dict(self) -> dict:
        """What is not a parameter but a checkpoint needs: ``{"buffers":
        {"running_mean1": (h1,), "running_var1": ..., ...}, "dropout":
        [[seed, counter], ...]}`` (the live arrays)."""
        buffers, dropout = {}, []
        for key, layer in self.layers.items():
            if isinstance(layer, BatchNormalization):
                idx = key[len("BatchNorm") :]
                buffers[f"running_mean{idx}"] = layer.running_mean
                buffers[f"running_var{idx}"] = layer.running_var
            elif isinstance(layer, Dropout):
                dropout.append([layer.seed, layer.counter])
        return {"buffers": buffers, "dropout": dropout}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned (arrays of any backend)."""
        mine = self.state_dict()
        drops = [la for la in self.layers.values() if isinstance(la, Dropout)]
        dropout = state.get("dropout", [])
        if set(state.get("buffers", {})) != set(mine["buffers"]) or len(dropout) != len(
            drops
        ):
            raise ValueError(
                f"the state holds {sorted(state.get('buffers', {}))} and "
                f"{len(dropout)} dropout layers; this network has "
                f"{sorted(mine['buffers'])} and {len(drops)}: it comes from "
                "another network"
            )
        self._load_buffers(state["buffers"])
        for layer, (seed, counter) in zip(drops, dropout, strict=True):
            layer.seed, layer.counter, layer.mask = int(seed), int(counter), None

    def _load_buffers(self, buffers: dict) -> None:
        for key, layer in self.layers.items():
            if isinstance(layer, BatchNormalization):
                idx = key[len("BatchNorm") :]
                for name in ("running_mean", "running_var"):
                    value = buffers[f"{name}{idx}"]
                    if tuple(value.shape) != (layer.gamma.shape[0],):
                        raise ValueError(
                            f"{name}{idx} has shape {tuple(value.shape)}, expected "
                            f"({layer.gamma.shape[0]},): another network shape"
                        )
                    getattr(layer, name)[...] = self.backend.asarray(
                        value, dtype=self.dtype
                    )
