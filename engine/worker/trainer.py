"""The Trainer subclass behind every tunedeck SFT run: token-weighted CE plus optional KL to base.

Loss for an optimizer step over rows i with completion tokens t and weights w_i:

    sum_i w_i * sum_t (ce_it + lambda * kl_it)  /  sum_i w_i * n_i

so with all weights 1 it is exactly HF's token-mean cross-entropy, a weight-0 row drops out
exactly, and the denominator is counted over the whole accumulated batch (``get_batch_samples``)
and summed over every process, so gradient accumulation N, or N torchrun processes, equals one
batch N times larger (each process's loss is multiplied by the world size to undo DDP's gradient
mean; HF's logged loss, the mean over processes, is then the global loss). Eval loss is the plain, unweighted
token mean, so ``eval_loss`` compares across runs with different weight policies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer

from engine.worker.encoding import IGNORE_INDEX


def completion_mask(labels: torch.Tensor) -> torch.Tensor:
    """Which next-token targets count: labels shifted by one, padding and prompt excluded."""
    return labels[:, 1:] != IGNORE_INDEX


def weighted_token_count(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum_i w_i * n_i over a batch: the denominator of the weighted loss."""
    mask = completion_mask(batch["labels"]).float()
    return (batch["weights"].to(mask.device)[:, None] * mask).sum()


def token_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-token CE of next-token prediction, shape (batch, seq - 1), 0 where not a target."""
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    ce = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    return ce.view(shift_labels.shape)


def token_kl_to_reference(logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """Per-token KL(reference || model) of the next-token distributions, shape (batch, seq - 1)."""
    log_p = F.log_softmax(logits[:, :-1, :].float(), dim=-1)
    log_q = F.log_softmax(reference_logits[:, :-1, :].float(), dim=-1)
    return (log_q.exp() * (log_q - log_p)).sum(-1)


class TunedeckTrainer(Trainer):
    """HF Trainer with per-row loss weights and a KL-to-base term (adapter disabled for the reference)."""

    # compute_loss divides by the weighted token count of the whole accumulated batch.
    loss_is_scaled_for_ga = True

    def __init__(self, *args: Any, kl_lambda: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kl_lambda = kl_lambda
        # Our own count replaces HF's (which would count tokens, not weighted tokens).
        self.model_accepts_loss_kwargs = False
        # Token sums of the unweighted CE (and KL) and the token count, kept as tensors and
        # read once per log, so no device sync happens per step.
        self._logged_sums: dict[str, torch.Tensor] = {}

    def get_batch_samples(
        self, epoch_iterator: Iterator[Any], num_batches: int, device: torch.device
    ) -> tuple[list[Any], torch.Tensor | int | None]:
        batch_samples, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        if not batch_samples or "weights" not in batch_samples[0]:
            return batch_samples, None
        total = sum(weighted_token_count(batch) for batch in batch_samples)
        total = torch.as_tensor(total, dtype=torch.float32, device=device)
        if self.args.world_size > 1:
            total = self.accelerator.gather(total.reshape(1)).sum()
        return batch_samples, total

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> Any:
        labels = inputs["labels"]
        weights = inputs["weights"]
        model_inputs = {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}
        outputs = model(**model_inputs)
        ce = token_cross_entropy(outputs.logits, labels)
        mask = completion_mask(labels).float()
        if not model.training:
            loss = (ce * mask).sum() / mask.sum().clamp_min(1.0)
            return (loss, outputs) if return_outputs else loss

        token_weights = weights[:, None].to(ce.dtype) * mask
        per_token = ce
        if self.kl_lambda > 0:
            kl = token_kl_to_reference(outputs.logits, self._reference_logits(model, model_inputs))
            per_token = ce + self.kl_lambda * kl
            self._remember("kl", (kl * mask).sum())
        self._remember("ce", (ce * mask).sum())
        self._remember("tokens", mask.sum())
        if num_items_in_batch is None:
            denominator = token_weights.sum()
        else:
            denominator = torch.as_tensor(num_items_in_batch, device=ce.device, dtype=ce.dtype)
        loss = (per_token * token_weights).sum() / denominator.clamp_min(1e-12)
        if num_items_in_batch is not None and self.args.world_size > 1:
            # DDP averages gradients over processes; the denominator is already global.
            loss = loss * self.args.world_size
        return (loss, outputs) if return_outputs else loss

    def _reference_logits(self, model: torch.nn.Module, model_inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        peft_model = self.accelerator.unwrap_model(model)
        with torch.no_grad(), peft_model.disable_adapter():
            return model(**model_inputs).logits.detach()

    def _remember(self, name: str, value: torch.Tensor) -> None:
        value = value.detach()
        previous = self._logged_sums.get(name)
        self._logged_sums[name] = value if previous is None else previous + value

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Training logs gain the unweighted CE (and KL): the token mean over every completion
        # token since the last log, on every rank, so a weighted run's loss can be read against
        # an unweighted one and the value does not depend on how the batch was split (grad_accum,
        # processes). log() runs on every rank, so the sums can be all-reduced here.
        if "loss" in logs and "tokens" in self._logged_sums:
            names = sorted(self._logged_sums)
            sums = torch.stack([self._logged_sums[name].float() for name in names])
            if self.args.world_size > 1:
                sums = self.accelerator.reduce(sums, reduction="sum")
            totals = dict(zip(names, sums.tolist(), strict=True))
            tokens = max(totals.pop("tokens"), 1.0)
            for name, total in totals.items():
                logs[name] = round(total / tokens, 6)
            self._logged_sums = {}
        super().log(logs, start_time)
