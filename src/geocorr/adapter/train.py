"""Adapter training on pseudo-labels: AdamW + one-cycle, validation by pair, resumable.

Everything random is derived from ``(seed, step)``: the epoch's pair order,
each step's pseudo-keypoint subset and its dropout mask (drawn under
:func:`torch.random.fork_rng`, so the caller's global RNG is untouched). A
run stopped anywhere and resumed from ``last.pt`` (weights, optimizer state,
step, best validation loss, history) therefore ends with exactly the weights
of an uninterrupted run on the same device. The learning rate is a pure
function of the step (:func:`one_cycle_lr`), so the schedule has no state.

Validation uses held-out *pairs* of the pseudo-labels (never ground truth);
``best.pt`` is the checkpoint of the lowest validation loss.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from geocorr.adapter.checkpoint import (
    BEST_NAME,
    LAST_NAME,
    load_checkpoint,
    remove_stale_checkpoint_temps,
    save_checkpoint,
)
from geocorr.adapter.dataset import (
    FeatureProvider,
    LabeledPair,
    TrainingPairs,
    subsample_labels,
)
from geocorr.adapter.losses import adapter_loss
from geocorr.adapter.network import Adapter, AdapterSettings
from geocorr.adapter.settings import LOCAL_BACKBONES, TrainSettings, context_defaults
from geocorr.atomic import remove_stale_temp_files, write_json_atomic

__all__ = ["TrainSettings", "TrainResult", "one_cycle_lr", "split_pairs", "train_adapter",
           "validation_loss", "LOCAL_BACKBONES", "context_defaults", "remove_stale_run_temps",
           "HISTORY_NAME"]

HISTORY_NAME = "history.json"


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train_adapter` did.

    Attributes:
        best_path: checkpoint of the lowest validation loss.
        last_path: resumable checkpoint of the latest step.
        step: steps done so far (== ``total_steps`` when finished).
        total_steps: planned steps.
        best_val_loss: lowest validation loss (training loss if no validation pairs).
        history: per validation: ``{"step", "train_loss", "val_loss", "lr"}``.
        num_train_pairs: training pairs.
        num_val_pairs: validation pairs.
    """

    best_path: Path
    last_path: Path
    step: int
    total_steps: int
    best_val_loss: float
    history: tuple[dict, ...]
    num_train_pairs: int
    num_val_pairs: int

    @property
    def finished(self) -> bool:
        return self.step >= self.total_steps


def one_cycle_lr(step: int, total: int, max_lr: float, warmup: float,
                 div_factor: float = 25.0, final_div_factor: float = 1e4) -> float:
    """One-cycle learning rate at ``step`` (cosine up then down, as ``OneCycleLR``).

    Starts at ``max_lr / div_factor``, peaks at ``max_lr`` after ``warmup * total``
    steps, ends at ``max_lr / div_factor / final_div_factor``.
    """
    start, end = max_lr / div_factor, max_lr / div_factor / final_div_factor
    peak = max(1, int(round(warmup * total))) if warmup > 0 else 0
    if step < peak:
        t = step / peak
        return start + (max_lr - start) * (1 - math.cos(math.pi * t)) / 2
    t = (step - peak) / max(1, total - 1 - peak)
    t = min(1.0, t)
    return end + (max_lr - end) * (1 + math.cos(math.pi * t)) / 2


def split_pairs(pairs: Sequence[LabeledPair], val_fraction: float, seed: int
                ) -> tuple[list[LabeledPair], list[LabeledPair]]:
    """Seeded split by pair into (train, val); at least one training pair."""
    n = len(pairs)
    if n == 0:
        raise ValueError("no labelled pairs to train on (empty store or all pairs unlabeled)")
    n_val = min(n - 1, int(round(val_fraction * n))) if val_fraction > 0 else 0
    if val_fraction > 0 and n >= 2:
        n_val = max(1, n_val)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    val = sorted((pairs[i] for i in order[:n_val]), key=lambda p: p.pair_id)
    train = sorted((pairs[i] for i in order[n_val:]), key=lambda p: p.pair_id)
    return train, val


def _pair_loss(adapter: Adapter, data: TrainingPairs, index: int, settings: TrainSettings,
               generator: torch.Generator, device: torch.device) -> torch.Tensor:
    s = data.sample(index, settings.max_points, generator)
    src = adapter({k: v[None].to(device) for k, v in s.src.items()})[0]
    trg = adapter({k: v[None].to(device) for k, v in s.trg.items()})[0]
    return adapter_loss(src, trg, s.src_xy.to(device), s.trg_xy.to(device),
                        adapter.log_logit_scale, settings.loss).total


@torch.no_grad()
def validation_loss(adapter: Adapter, data: TrainingPairs, settings: TrainSettings,
                    device: str | torch.device = "cpu") -> float:
    """Mean loss over ``data`` in eval mode, fixed point subsets (seeded by pair index)."""
    was_training = adapter.training
    adapter.eval()
    total = 0.0
    for i in range(len(data)):
        g = torch.Generator().manual_seed(settings.seed * 7919 + i)
        total += float(_pair_loss(adapter, data, i, settings, g, torch.device(device)))
    adapter.train(was_training)
    return total / max(1, len(data))


def remove_stale_run_temps(out: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that killed checkpoint / history writes left in ``out``.

    Writers still running keep theirs (their pid is in the file name).
    """
    return sorted(remove_stale_checkpoint_temps(out)
                  + remove_stale_temp_files(out, f".{HISTORY_NAME}.", ".tmp")
                  + remove_stale_temp_files(out, ".tmp-", ".json"))  # history, before 2026-12


def train_adapter(pairs: Sequence[LabeledPair], provider: FeatureProvider, out: str | os.PathLike,
                  settings: TrainSettings | None = None, *, sources: Sequence[str] | None = None,
                  device: str | torch.device = "cpu", progress: bool = True,
                  max_steps_this_call: int | None = None) -> TrainResult:
    """Train (or resume training) an adapter into the run folder ``out``.

    Args:
        pairs: labelled pairs (split here into train / validation by pair).
        provider: image -> named FeatureMaps (frozen, normally cached).
        out: run folder; holds ``last.pt``, ``best.pt`` and ``history.json``.
            When ``last.pt`` exists, training resumes from it (the settings
            must match).
        settings: training settings.
        sources: source names in mixing order (default: the provider's keys
            on the first training image, in its order).
        device: torch device.
        progress: show a rich progress bar.
        max_steps_this_call: stop after this many steps (a time slice; a later
            call resumes). None runs to the end.

    Returns:
        :class:`TrainResult`.
    """
    s = settings or TrainSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_run_temps(out)
    device = torch.device(device)
    if s.label_budget is not None:
        pairs = subsample_labels(pairs, s.label_budget, s.seed)
    train_pairs, val_pairs = split_pairs(pairs, s.val_fraction, s.seed)
    if sources is None:
        first = train_pairs[0]
        sources = list(provider(first.src_image, first.category))
    probe = TrainingPairs(train_pairs, provider, sources)
    feats, _ = probe.image(train_pairs[0].src_image, train_pairs[0].category)
    adapter_settings = AdapterSettings(sources=tuple((n, feats[n].shape[0]) for n in sources),
                                       out_dim=s.out_dim, dropout=s.dropout,
                                       context_blocks=s.context_blocks,
                                       global_pool=s.global_pool)
    train_data = probe
    val_data = TrainingPairs(val_pairs, provider, sources)
    total = s.steps if s.steps is not None else s.epochs * len(train_pairs)
    val_every = s.val_every or len(train_pairs)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.seed)
        adapter = Adapter(adapter_settings)
    adapter.to(device).train()
    opt = torch.optim.AdamW(adapter.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    step, best, history, running = 0, math.inf, [], []
    last_path, best_path = out / LAST_NAME, out / BEST_NAME
    if last_path.is_file():
        ck = load_checkpoint(last_path)
        if ck.get("train_settings") != s.to_dict() or \
                ck["adapter_settings"] != adapter_settings.to_dict():
            raise ValueError(f"{last_path} was written with other settings; use a new --out "
                             "folder or the same settings to resume")
        adapter.load_state_dict(ck["state_dict"], strict=True)
        opt.load_state_dict(ck["optimizer"])
        step, best = int(ck["step"]), float(ck["best_val_loss"])
        history = list(ck["history"])
        running = [float(x) for x in ck["running"]]
    stop = total if max_steps_this_call is None else min(total, step + max_steps_this_call)

    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("training adapter", total=total, completed=step)
        order: list[int] = []
        order_epoch = -1
        while step < stop:
            epoch, within = divmod(step, len(train_pairs))
            if epoch != order_epoch:
                g = torch.Generator().manual_seed(s.seed * 1_000_003 + epoch)
                order = torch.randperm(len(train_pairs), generator=g).tolist()
                order_epoch = epoch
            lr = one_cycle_lr(step, total, s.lr, s.warmup)
            for group in opt.param_groups:
                group["lr"] = lr
            g_points = torch.Generator().manual_seed(s.seed * 1_000_003 + 104_729 * (step + 1))
            devices = [device.index or 0] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(s.seed * 2_000_003 + step)
                loss = _pair_loss(adapter, train_data, order[within], s, g_points, device)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            running.append(float(loss.detach()))
            step += 1
            bar.update(task, completed=step,
                       description=f"training adapter (loss {running[-1]:.3f})")
            validate = step % val_every == 0 or step == total
            if validate:
                train_loss = sum(running) / len(running)
                running = []
                val = validation_loss(adapter, val_data, s, device) if len(val_data) else \
                    train_loss
                history.append({"step": step, "train_loss": train_loss, "val_loss": val,
                                "lr": lr})
                if val < best:
                    best = val
                    save_checkpoint(best_path, adapter, step=step, val_loss=val,
                                    train_settings=s.to_dict())
                write_json_atomic(out / HISTORY_NAME, history)
            if validate or step == stop:
                save_checkpoint(last_path, adapter, train_settings=s.to_dict(), step=step,
                                optimizer=opt.state_dict(), best_val_loss=best,
                                history=history, running=running)
    return TrainResult(best_path=best_path, last_path=last_path, step=step, total_steps=total,
                       best_val_loss=best, history=tuple(history),
                       num_train_pairs=len(train_pairs), num_val_pairs=len(val_pairs))
