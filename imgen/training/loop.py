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


LOADER_TIMEOUT_S = 120   # a data-loader worker silent this long is stuck: fail the run (it resumes from ckpt.pt)


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


TRAINING_STATE = ("model", "disc", "opt", "opt_d", "head", "opt_h", "rng", "gen", "rng_ranks", "gen_ranks",
                  "torch_rng")


def strip_checkpoint(src: str | Path, dst: str | Path, half: bool = False) -> int:
    """Write ``dst``: the checkpoint ``src`` without what only resuming needs (the raw model, discriminator,
    optimizers, RNG streams), i.e. the EMA weights, configs and run facts every ``export`` reads; ``half``
    stores floating-point weights as fp16. For bringing a GPU run back small; returns the bytes written."""
    ckpt = load_checkpoint(src)
    if ckpt is None:
        raise FileNotFoundError(f"no checkpoint at {src}")
    out = {k: v for k, v in ckpt.items() if k not in TRAINING_STATE and not k.startswith("opt")}
    if half:
        out["ema"] = {k: v.half() if v.is_floating_point() else v for k, v in out["ema"].items()}
    save_checkpoint(dst, out)
    return Path(dst).stat().st_size


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


class Budget:
    """How far a run is through its budget: steps, wall-clock minutes, or whichever ends first.

    ``progress(step)`` in [0, 1] drives the LR schedule, so a run stopped by its time budget has finished its
    schedule (ends annealed). Wall time already spent before a resume is passed in as ``seconds_before``.
    """

    def __init__(self, steps: int | None = None, minutes: float | None = None, seconds_before: float = 0.0):
        if not steps and not minutes:
            raise ValueError("a run needs --steps or --minutes")
        self.steps, self.minutes = steps, minutes
        self.seconds_before = seconds_before
        self.t0 = time.time()

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.time() - self.t0

    def progress(self, step: int) -> float:
        parts = []
        if self.steps:
            parts.append(step / self.steps)
        if self.minutes:
            parts.append(self.seconds / (60 * self.minutes))
        return min(1.0, max(parts))

    def done(self, step: int) -> bool:
        return self.progress(step) >= 1.0


class StopFlag:
    """Set by SIGTERM / SIGINT so a loop can save a checkpoint and return instead of dying mid-step."""

    def __init__(self):
        import signal
        self.stop = False
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: signals cannot be caught here
                pass

    def _handle(self, signum, frame) -> None:
        print(f"signal {signum}: saving a checkpoint and stopping", flush=True)
        self.stop = True

    def restore(self) -> None:
        import signal
        for sig, old in self._old.items():
            signal.signal(sig, old)


def scheduled_lr(step: int, progress: float, base: float, warmup_steps: int, budget: "Budget",
                 final: float = 0.01) -> float:
    """The LR of a step: linear warm-up over ``warmup_steps``, then cosine to ``base * final``. With a step
    budget only, the cosine runs over the steps (:func:`cosine_lr`, as always); with a time budget it runs over
    ``progress`` (the budget's fraction spent) and the warm-up ramp multiplies it, so a run stopped by its clock
    ends at ``base * final`` at most, even one too short to finish its warm-up."""
    if not budget.minutes:
        return cosine_lr(step, budget.steps, base, warmup_steps, final)
    ramp = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return base * ramp * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


class RunClock:
    """When a run stops, how far its schedule is, and when its checkpoint is due, for any trainer.

    Stops at the step budget (``--steps``), the wall-clock budget (``--minutes``, counting the time spent before
    a resume: ``seconds_before``) or a SIGTERM/SIGINT, whichever comes first. A checkpoint is due every
    ``ckpt_every`` steps (0 = never by steps), every ``ckpt_minutes`` of wall time, and when the run stops.
    Under DDP (``world_size`` > 1) rank 0 decides and every rank follows, so all take the same number of steps
    and the same LR (``tick`` is then a collective call).
    """

    def __init__(self, steps: int | None, minutes: float | None, seconds_before: float = 0.0,
                 ckpt_every: int = 0, ckpt_minutes: float = 5.0, world_size: int = 1):
        self.budget = Budget(steps, minutes, seconds_before)
        self.ckpt_every, self.ckpt_minutes, self.world_size = ckpt_every, ckpt_minutes, world_size
        self._signal = StopFlag()
        self._t_ckpt = time.time()
        self.progress, self.stopping, self.ckpt_due = 0.0, False, False

    @property
    def seconds(self) -> float:
        """Wall seconds of the whole run, resumes included (store it in the checkpoint as ``seconds``)."""
        return self.budget.seconds

    def tick(self, step: int) -> None:
        """Decide, with ``step`` steps done, whether to stop and whether to write a checkpoint now."""
        stop = self.budget.done(step) or self._signal.stop
        due = stop or (self.ckpt_every > 0 and step > 0 and step % self.ckpt_every == 0) \
            or time.time() - self._t_ckpt > 60 * self.ckpt_minutes
        progress = self.budget.progress(step)
        if self.world_size > 1:
            t = torch.tensor([float(stop), float(due), progress], dtype=torch.float64)
            dist.broadcast(t, 0)
            stop, due, progress = bool(t[0]), bool(t[1]), float(t[2])
        self.stopping, self.ckpt_due, self.progress = stop, due, progress
        if due:
            self._t_ckpt = time.time()

    def lr(self, step: int, base: float, warmup_steps: int = 0, final: float = 0.01) -> float:
        return scheduled_lr(step, self.progress, base, warmup_steps, self.budget, final)

    def close(self) -> None:
        self._signal.restore()


class BudgetedRun:
    """The book-keeping of a resumable run with a step or time budget, for single-model trainers.

    Writes ``<out>/args.json``; resumes ``<out>/ckpt.pt`` (model, EMA, optimizer, sampling and torch RNG
    streams, step, wall seconds) when it exists; sets the LR each step from the budget's progress (warm-up,
    cosine to 1 %); writes the checkpoint every ``ckpt_minutes``, on SIGTERM/SIGINT and at the end.
    """

    def __init__(self, out: Path, args, model: nn.Module, ema: EMA, opt: torch.optim.Optimizer,
                 gen: torch.Generator, ckpt_minutes: float = 5.0, extra: dict | None = None):
        self.out, self.model, self.ema, self.opt, self.gen = Path(out), model, ema, opt, gen
        self.extra = extra or {}
        self.ckpt_minutes = ckpt_minutes
        self.step, seconds_before = 0, 0.0
        ckpt = load_checkpoint(self.out / "ckpt.pt")
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            ema.model.load_state_dict(ckpt["ema"])
            opt.load_state_dict(ckpt["opt"])
            gen.set_state(ckpt["gen"])
            torch.set_rng_state(ckpt["torch_rng"])
            self.step, seconds_before = ckpt["step"], ckpt["seconds"]
            print(f"resumed from step {self.step} ({seconds_before / 60:.1f} min)", flush=True)
        write_run_args(self.out, args, next(model.parameters()).device)
        self.budget = Budget(args.steps, args.minutes, seconds_before)
        self.log = MetricLog(self.out)
        self._stop = StopFlag()
        self._t_ckpt = time.time()

    @property
    def progress(self) -> float:
        return self.budget.progress(self.step)

    def running(self) -> bool:
        return not self.budget.done(self.step) and not self._stop.stop

    def set_lr(self, base: float, warmup: float) -> float:
        """The LR for the current progress (warm-up over ``warmup`` of the budget, then cosine to 1 %)."""
        lr = cosine_lr(int(self.progress * 10000), 10000, base, warmup=int(warmup * 10000))
        for g in self.opt.param_groups:
            g["lr"] = lr
        return lr

    def update(self, loss: torch.Tensor) -> int:
        """One optimizer step on ``loss``, the EMA, the step count and the periodic checkpoint; returns the step."""
        if not math.isfinite(loss.item()):
            raise SystemExit(f"loss is not finite at step {self.step + 1}")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.ema.update(self.model, self.step)
        self.step += 1
        if time.time() - self._t_ckpt > 60 * self.ckpt_minutes:
            self.checkpoint()
        return self.step

    def checkpoint(self) -> None:
        save_checkpoint(self.out / "ckpt.pt", {
            "model": self.model.state_dict(), "ema": self.ema.model.state_dict(), "opt": self.opt.state_dict(),
            "step": self.step, "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
            "seconds": self.budget.seconds, "progress": self.progress, "lr": self.opt.param_groups[0]["lr"],
            "config": json.dumps(self.model.config.to_dict()), **self.extra})
        self._t_ckpt = time.time()

    def finish(self) -> None:
        self.checkpoint()
        self._stop.restore()


def hardware_name(device: torch.device, world_size: int = 1) -> str:
    """What a run trained on, in words, for its card: e.g. "1x NVIDIA H200" or "a 2-core CPU (no GPU)"."""
    if device.type == "cuda":
        return f"{world_size}x {torch.cuda.get_device_name(device)}"
    return f"a {os.cpu_count()}-core CPU (no GPU)" + (f", {world_size} processes" if world_size > 1 else "")


def write_run_args(out: Path, args, device: torch.device, world_size: int = 1) -> None:
    """``<out>/args.json``: the run's arguments and the hardware it ran on (the export's card reads both)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    facts = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    facts["hardware"] = hardware_name(device, world_size)
    (out / "args.json").write_text(json.dumps(facts, indent=1))


def compute_line(ckpt: dict, args: dict) -> str:
    """The card's compute line: wall time (when the run recorded it), CPU-process time and the hardware."""
    wall = f"{ckpt['seconds'] / 60:.1f} wall-clock minutes, " if ckpt.get("seconds") else ""
    cpu_h = (ckpt.get("cpu_seconds") or 0.0) / 3600
    return f"{wall}{cpu_h:.2f} CPU-process hours on {args.get('hardware', 'a 2-core CPU (no GPU)')}"


def start_run(args) -> tuple[torch.device, torch.Generator]:
    """A trainer's first lines: the device (``--device``), intra-op threads, torch's seed, and the generator
    that draws the batches (seeded ``--seed`` + 1)."""
    from ..device import configure_threads, pick_device
    device = pick_device(args.device)
    configure_threads()
    torch.manual_seed(args.seed)
    return device, torch.Generator().manual_seed(args.seed + 1)


def train_or_export(main, export_cli) -> None:
    """``python -m imgen.training.train_X [export] ...``: run the trainer, or its export when asked."""
    import sys
    if len(sys.argv) > 1 and sys.argv[1] == "export":
        export_cli(sys.argv[2:])
    else:
        main()
