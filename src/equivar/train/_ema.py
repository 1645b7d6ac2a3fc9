"""Exponential moving average of parameters."""

from __future__ import annotations

import contextlib

import torch


class ExponentialMovingAverage:
    """Shadow copy ``s <- d s + (1 - d) p`` of ``model``'s floating parameters.

    With ``use_num_updates`` the decay warms up as ``min(decay, (1 + n) / (10 + n))``
    (as torch_ema, which MACE uses). :meth:`average_parameters` swaps the
    averages in for evaluation and restores the live weights afterwards.
    """

    def __init__(self, model: torch.nn.Module, decay: float, use_num_updates: bool = True):
        self.decay = float(decay)
        self.num_updates = 0 if use_num_updates else None
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        d = self.decay
        if self.num_updates is not None:
            self.num_updates += 1
            d = min(d, (1 + self.num_updates) / (10 + self.num_updates))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], 1.0 - d)

    @contextlib.contextmanager
    def average_parameters(self):
        """Context in which the model holds the averaged weights."""
        backup = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for s, p in zip(self.shadow, self.params):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for b, p in zip(backup, self.params):
                    p.copy_(b)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": [s.clone() for s in self.shadow]}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        self.num_updates = state["num_updates"]
        with torch.no_grad():
            for s, v in zip(self.shadow, state["shadow"]):
                s.copy_(v)
