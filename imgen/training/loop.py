"""Pieces every trainer shares: distributed setup, EMA, LR schedule, resumable checkpoints, metric logs.

A trainer stays a plain loop you can read in one sitting (nanoGPT style); these helpers keep the
book-keeping out of it. Works as a single process or under ``torchrun`` (gloo on CPU, nccl on CUDA).
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> DistInfo:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); a no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(0, 1, device)
    rank = int(os.environ["RANK"])
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    return DistInfo(rank, world, device)


def teardown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


class EMA:
    """Exponential moving average of a model's parameters and buffers."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        self.decay = decay
        self.model = copy.deepcopy(unwrap(model)).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))  # warm-up: follow the model closely at first
        src = unwrap(model).state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.lerp_(src[k].detach(), 1 - d)
            else:
                v.copy_(src[k])


def cosine_lr(step: int, total: int, base: float, warmup: int = 0, final: float = 0.01) -> float:
    """Linear warm-up then cosine decay from ``base`` to ``base * final``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * t)))


def r1_penalty(logits_real: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): the mean over the batch of ||d D(real) / d real||^2. ``real`` must require
    grad and ``logits_real`` come from it; the graph is kept so the penalty can be backpropagated."""
    (grad,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def gather_rng_states(rng: np.random.Generator, gen: torch.Generator, world_size: int) -> tuple[list, list]:
    """Every rank's (numpy, torch) sampling state, indexed by rank (a collective call under DDP)."""
    mine = (json.dumps(rng.bit_generator.state), gen.get_state())
    states = [mine]
    if world_size > 1:
        states = [None] * world_size
        dist.all_gather_object(states, mine)
    return [s[0] for s in states], [s[1] for s in states]


def restore_rng_states(ckpt: dict, rank: int, rng: np.random.Generator, gen: torch.Generator, seed: int) -> None:
    """Resume this rank's own sampling streams; a rank the checkpoint has none for (an older checkpoint,
    or more processes than before) gets fresh streams derived from (seed, rank, step), never another
    rank's stream (which would make two ranks draw the same batches)."""
    rngs = ckpt.get("rng_ranks") or [ckpt["rng"]]
    gens = ckpt.get("gen_ranks") or [ckpt["gen"]]
    if rank < len(rngs):
        rng.bit_generator.state = json.loads(rngs[rank])
        gen.set_state(gens[rank])
    else:
        ss = np.random.SeedSequence([seed, rank, ckpt["step"]])
        rng.bit_generator.state = np.random.default_rng(ss).bit_generator.state
        gen.manual_seed(int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1)))


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Atomically write a resume checkpoint (a local file; weights for users go through export)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed save leaves the previous checkpoint as it was, and no debris
        raise


def load_checkpoint(path: str | Path) -> dict | None:
    """Load a resume checkpoint written by :func:`save_checkpoint`, or None if there is none.

    ``weights_only=True``: tensors, numbers, strings and containers only, never arbitrary objects.
    """
    path = Path(path)
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


class MetricLog:
    """Appends one JSON object per line to ``<run_dir>/metrics.jsonl`` and echoes a short line."""

    def __init__(self, run_dir: str | Path, enabled: bool = True):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.enabled = enabled
        self.t0 = time.time()
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, **metrics) -> None:
        if not self.enabled:
            return
        metrics = {"time": round(time.time() - self.t0, 1), **metrics}
        with open(self.path, "a") as f:
            f.write(json.dumps(metrics) + "\n")
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()), flush=True)
