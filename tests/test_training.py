"""Tests for the training scaffold: a 2-process DDP run of train_denoise, exact resume, and loop.py helpers."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from imgen.training import loop, train_denoise
from imgen.training.loop import EMA, MetricLog, cosine_lr, load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = '{"widths": [8, 16], "blocks": 1}'


def _smooth_rgb(rng, size):
    """A random but image-like (smooth + a little texture) uint8 RGB array."""
    coarse = rng.integers(0, 256, (size // 16, size // 16, 3)).astype(np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BILINEAR), np.int16)
    return np.clip(img + rng.integers(-10, 11, img.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory) -> Path:
    """The folder layout train_denoise expects: photos/{cbsd432, urban80, gray400}."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for sub, n in (("cbsd432", 10), ("urban80", 2)):
        d = root / "photos" / sub
        d.mkdir(parents=True)
        for i in range(n):
            Image.fromarray(_smooth_rgb(rng, 128)).save(d / f"{i:03d}.jpg", quality=90)
    d = root / "photos" / "gray400"
    d.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(_smooth_rgb(rng, 128)).convert("L").save(d / f"{i:03d}.png")
    return root


def trainer_args(data: Path, out: Path, steps: int) -> list[str]:
    return ["--data", str(data), "--out", str(out), "--steps", str(steps), "--batch", "4", "--patch", "32",
            "--config", TINY, "--val-every", "3", "--ckpt-every", "3", "--log-every", "2", "--device", "cpu"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes(fake_data, tmp_path):
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", IMGEN_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "imgen.training.train_denoise", *trainer_args(fake_data, out, 6)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"

    ckpt = load_checkpoint(out / "ckpt.pt")
    assert ckpt["step"] == 6
    assert json.loads(ckpt["config"])["widths"] == [8, 16]
    # each rank's own sampling streams are saved (so that a resume does not give both ranks the same data)
    assert len(ckpt["rng_ranks"]) == 2 and ckpt["rng_ranks"][0] != ckpt["rng_ranks"][1]
    assert len(ckpt["gen_ranks"]) == 2 and not torch.equal(*ckpt["gen_ranks"])
    assert not list(out.glob("*.tmp"))

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if any(k.startswith("val_psnr") for k in r)]
    assert [r["step"] for r in val] == [3, 6]  # rank 0 only: no duplicated lines
    assert all(np.isfinite(r[k]) and r[k] > 5 for r in val for k in r if k.startswith("val_psnr"))
    assert [r["step"] for r in rows if "loss" in r] == [2, 4, 6]

    sheet = out / "samples" / "step000006.png"
    assert sheet.exists() and (out / "samples" / "step000003.png").exists()
    with Image.open(sheet) as im:  # 2 rows (crops) x 3 columns (noisy | denoised | clean) of 128 px crops
        assert im.size == (3 * 128, 2 * 128)


@pytest.fixture
def in_process(one_process):
    """train_denoise.main, run in this process with one thread and no DDP environment."""
    return train_denoise.main


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--colour-aug", "0.5"]], ids=["plain", "colour-aug"])
def test_resume_is_exact(fake_data, tmp_path, in_process, capsys, extra):
    interrupted, straight = tmp_path / "interrupted", tmp_path / "straight"
    in_process(trainer_args(fake_data, interrupted, 4) + extra)
    assert load_checkpoint(interrupted / "ckpt.pt")["step"] == 4
    capsys.readouterr()
    in_process(trainer_args(fake_data, interrupted, 6) + extra)
    assert "resumed from step 4" in capsys.readouterr().out
    in_process(trainer_args(fake_data, straight, 6) + extra)

    a, b = load_checkpoint(interrupted / "ckpt.pt"), load_checkpoint(straight / "ckpt.pt")
    assert a["step"] == b["step"] == 6
    # The default warm-up (500 steps) covers all 6 steps, so the LR schedule does not depend on --steps.
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        for k in a[key]:
            torch.testing.assert_close(a[key][k], b[key][k], msg=f"{key}.{k}")
    for i, st in a["opt"]["state"].items():
        for k, v in st.items():
            torch.testing.assert_close(v, b["opt"]["state"][i][k])
    assert a["rng"] == b["rng"] and torch.equal(a["gen"], b["gen"])


def test_restore_rng_states():
    def streams(seed):
        return np.random.default_rng(seed), torch.Generator().manual_seed(seed)

    r0, g0 = streams(1)
    r1, g1 = streams(2)
    (r0.random(), r1.random(), torch.rand(1, generator=g0), torch.rand(1, generator=g1))
    rngs, gens = zip(*[loop.gather_rng_states(r, g, 1) for r, g in ((r0, g0), (r1, g1))])
    ckpt = {"step": 7, "rng": rngs[0][0], "gen": gens[0][0], "rng_ranks": [rngs[0][0], rngs[1][0]],
            "gen_ranks": [gens[0][0], gens[1][0]]}
    want = [(r.random(), torch.rand(1, generator=g).item()) for r, g in ((r0, g0), (r1, g1))]
    for rank in (0, 1):
        r, g = streams(99)
        loop.restore_rng_states(ckpt, rank, r, g, seed=0)
        assert (r.random(), torch.rand(1, generator=g).item()) == want[rank]
    # an old single-stream checkpoint, resumed by 2 processes: rank 1 must not replay rank 0's stream
    old = {k: ckpt[k] for k in ("step", "rng", "gen")}
    got = []
    for rank in (0, 1, 1):
        r, g = streams(99)
        loop.restore_rng_states(old, rank, r, g, seed=0)
        got.append((r.random(), torch.rand(1, generator=g).item()))
    assert got[0] == want[0] and got[1] != want[0] and got[1] == got[2]


def test_validation_set_fits_small_images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(128, 128), (100, 140), (300, 400)]):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    v = train_denoise.validation_set(paths, multiple=16)
    assert v.shape == (3, 3, 96, 96)  # min side 100, down to a multiple of 16
    assert train_denoise.validation_set(paths[2:]).shape == (1, 3, 256, 256)
    big = np.asarray(Image.open(paths[2]), np.float32) / 255
    torch.testing.assert_close(train_denoise.validation_set(paths[2:])[0].permute(1, 2, 0),
                               torch.from_numpy(big[22:278, 72:328]))  # the centre crop


# ----------------------------------------------------------------------------------------------- loop.py
def test_cosine_lr():
    assert cosine_lr(0, 100, 1.0, warmup=10) == pytest.approx(0.1)
    assert cosine_lr(4, 100, 1.0, warmup=10) == pytest.approx(0.5)
    assert cosine_lr(9, 100, 1.0, warmup=10) == pytest.approx(1.0)
    assert cosine_lr(10, 100, 1.0, warmup=10) == pytest.approx(1.0)
    assert cosine_lr(55, 100, 1.0, warmup=10) == pytest.approx(0.505)  # half-way: (1 + final) / 2
    assert cosine_lr(100, 100, 1.0, warmup=10) == pytest.approx(0.01)
    assert cosine_lr(500, 100, 2e-3, warmup=10, final=0.1) == pytest.approx(2e-4)  # stays at the end value
    assert cosine_lr(0, 100, 3e-4) == pytest.approx(3e-4)
    lrs = [cosine_lr(s, 100, 1.0, warmup=10) for s in range(101)]
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:10])) and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_ema_update_moves_towards_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    ema = EMA(model, decay=0.9)
    assert not any(p.requires_grad for p in ema.model.parameters()) and not ema.model.training
    start = {k: v.clone() for k, v in ema.model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model[1].num_batches_tracked += 5
    target = model.state_dict()
    assert torch.equal(ema.model[0].weight, start["0.weight"])  # a copy, not the same tensors

    ema.update(model, step=1000)  # past the warm-up: decay 0.9
    for k, v in ema.model.state_dict().items():
        if v.dtype.is_floating_point:
            torch.testing.assert_close(v, 0.9 * start[k] + 0.1 * target[k])
        else:
            assert torch.equal(v, target[k])  # integer buffers are copied
    d1 = (ema.model[0].weight - model[0].weight).abs().max().item()
    ema.update(model, step=0)  # warm-up: decay min(0.9, 1/10) = 0.1, follows the model closely
    d2 = (ema.model[0].weight - model[0].weight).abs().max().item()
    assert d2 < d1 and d2 == pytest.approx(0.1 * d1, rel=1e-4)


def test_checkpoint_round_trip_is_atomic(tmp_path):
    path = tmp_path / "deep" / "ckpt.pt"
    assert load_checkpoint(path) is None
    state = {"model": {"w": torch.randn(3, 3)}, "step": 12, "rng": json.dumps({"a": 2 ** 70}),
             "gen": torch.Generator().get_state(), "cpu_seconds": 1.5, "ranks": ["x", "y"]}
    save_checkpoint(path, state)
    back = load_checkpoint(path)
    assert back["step"] == 12 and back["rng"] == state["rng"] and back["ranks"] == ["x", "y"]
    assert torch.equal(back["model"]["w"], state["model"]["w"]) and torch.equal(back["gen"], state["gen"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pt"]  # no .tmp left

    save_checkpoint(path, {**state, "step": 13})  # overwrite
    assert load_checkpoint(path)["step"] == 13
    with pytest.raises(Exception):
        save_checkpoint(path, {**state, "step": 14, "bad": lambda: 0})  # cannot be pickled
    assert load_checkpoint(path)["step"] == 13  # the previous checkpoint is intact
    assert sorted(p.name for p in path.parent.iterdir()) == ["ckpt.pt"]


def test_metric_log(tmp_path, capsys):
    log = MetricLog(tmp_path / "run")
    log.log(step=1, loss=0.5)
    log.log(step=2, val_psnr25=30.25)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and rows[1]["val_psnr25"] == 30.25 and "time" in rows[0]
    assert "loss=0.5" in capsys.readouterr().out
    MetricLog(tmp_path / "off", enabled=False).log(step=1)
    assert not (tmp_path / "off").exists()


def test_colour_jitter_changes_colours_within_range_and_only_when_asked():
    from imgen.training.data import colour_change, jitter_colours
    rng = np.random.default_rng(0)
    batch = torch.rand(6, 3, 16, 16) * 0.8 + 0.1
    assert torch.equal(jitter_colours(batch, rng, 0.0), batch)
    out = jitter_colours(batch, rng, 1.0)
    assert out.shape == batch.shape and out.dtype == batch.dtype and 0 <= float(out.min()) <= float(out.max()) <= 1
    assert all(float((o - b).abs().mean()) > 0.005 for o, b in zip(out, batch))     # every image changed
    u8 = (batch[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    assert colour_change(u8, np.random.default_rng(1)).dtype == np.uint8



def test_sigma_ends_puts_more_noise_levels_near_both_ends():
    gen = torch.Generator().manual_seed(0)
    plain = train_denoise.draw_sigmas(20000, 75.0, gen)
    ends = train_denoise.draw_sigmas(20000, 75.0, gen, ends=0.5)
    for s in (plain, ends):
        assert 0 <= float(s.min()) and float(s.max()) <= 75.0
    low, high = lambda s: float((s < 15).float().mean()), lambda s: float((s > 60).float().mean())
    assert abs(low(plain) - 0.2) < 0.02 and abs(high(plain) - 0.2) < 0.02        # uniform: a fifth each
    assert abs(low(ends) - 0.35) < 0.02 and abs(high(ends) - 0.35) < 0.02        # 0.5 x 0.2 + 0.5 x 0.5 x 1
    assert torch.equal(train_denoise.draw_sigmas(5, 75.0, torch.Generator().manual_seed(3)),
                       train_denoise.draw_sigmas(5, 75.0, torch.Generator().manual_seed(3), ends=0.0))


@pytest.fixture
def start_model(tmp_path):
    """A store (tmp_path/w, the default store meanwhile) holding "start": a tiny denoiser with a card."""
    from imgen.models import build_model
    from imgen.store import Store, export_safetensors, set_default_store
    config = {"widths": [8, 16, 32], "blocks": 1}               # not the trainer's default config
    torch.manual_seed(5)
    start = build_model("denoise_unet", config)
    store = Store(weights_dir=tmp_path / "w", registry_path=tmp_path / "w" / "registry.json")
    sha = export_safetensors(start, "denoise_unet", tmp_path / "w" / "start.safetensors")
    store.update_entry("start", task="denoise", arch="denoise_unet", file="start.safetensors", sha256=sha,
                       config=start.config.to_dict(), card="start.md")
    (tmp_path / "w" / "start.md").write_text("# start\n\n## Training\n\n- steps: 777 (the first run)\n\n## Metrics\n\nx\n")
    set_default_store(store)
    try:
        yield start
    finally:
        set_default_store(None)


def fine_tune_args(data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    args = trainer_args(data, out, steps)
    del args[args.index("--config"):args.index("--config") + 2]       # the config comes from --init
    return args + ["--init", "start", "--sigma-ends", "0.5", *extra]


@pytest.mark.slow
def test_init_fine_tunes_a_store_model_and_resumes_without_it(fake_data, tmp_path, in_process, capsys, start_model):
    from imgen.store import set_default_store
    start = start_model
    out = tmp_path / "ft"

    def fine_tune(steps, *extra):
        in_process(fine_tune_args(fake_data, out, steps, *extra))

    fine_tune(3, "--lr", "0")
    assert "starting from start" in capsys.readouterr().out
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert json.loads(ckpt["config"])["widths"] == [8, 16, 32]
    for k, v in start.state_dict().items():          # lr 0: the weights are the started-from model's
        torch.testing.assert_close(ckpt["model"][k], v, msg=k)
    train_denoise.export(out, tmp_path / "w", "start")    # the fine-tune replaces the model it started from
    card = (tmp_path / "w" / "start.md").read_text()
    assert "--init start --steps 3 --batch 4 --patch 32 --lr 0 --sigma-ends 0.5" in card
    assert "25% of them from its low or high fifth" not in card and "50% of them from its low or high fifth" in card
    assert "started from `start`" in card and "  - steps: 777 (the first run)" in card   # the first run's lines kept
    assert "## Metrics" in card and "\nx\n" not in card                                  # not its other sections
    train_denoise.export(out, tmp_path / "w", "start")    # exported again: the same card, not one nested deeper
    assert (tmp_path / "w" / "start.md").read_text() == card
    set_default_store(None)                          # a resume reads the run, not the store
    fine_tune(5)
    assert "resumed from step 3" in capsys.readouterr().out
    assert load_checkpoint(out / "ckpt.pt")["step"] == 5


@pytest.mark.slow
def test_init_can_grow_the_model_and_the_card_says_how(fake_data, tmp_path, in_process, capsys, start_model):
    out = tmp_path / "grown"
    in_process(fine_tune_args(fake_data, out, 3, "--lr", "0", "--config", '{"bottom_blocks": 2}'))
    assert "2 new blocks start as identity" in capsys.readouterr().out
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert json.loads(ckpt["config"]) == {**start_model.config.to_dict(), "bottom_blocks": 2}
    for k, v in start_model.state_dict().items():
        torch.testing.assert_close(ckpt["model"][k], v, msg=k)
    assert not ckpt["model"]["bottom.1.conv2.weight"].any() and ckpt["model"]["bottom.1.conv1.weight"].any()
    train_denoise.export(out, tmp_path / "w", "start")
    card = (tmp_path / "w" / "start.md").read_text()
    assert """--init start --config '{"bottom_blocks": 2}' --steps 3""" in card
    assert 'grown by `{"bottom_blocks": 2}` with its new residual blocks starting as the identity;' in card


def test_grown_model_computes_what_it_started_from_and_other_changes_are_refused():
    from imgen.models import build_model
    torch.manual_seed(0)
    small = build_model("denoise_unet", {"widths": [8, 16], "blocks": 1})
    grown = build_model("denoise_unet", {"widths": [8, 16], "blocks": 1, "bottom_blocks": 2})
    assert train_denoise.load_grown(grown, small.state_dict()) == ["bottom.0", "bottom.1"]
    x, s = torch.rand(2, 3, 16, 16), torch.tensor([10.0, 50.0])
    torch.testing.assert_close(grown(x, s), small(x, s))
    grown(x, s).square().sum().backward()          # the new blocks learn: their last conv has a gradient
    assert grown.bottom[0].conv2.weight.grad.abs().sum() > 0
    with pytest.raises(SystemExit, match="unexpected"):      # fewer blocks than the started-from model
        train_denoise.load_grown(small, grown.state_dict())
    with pytest.raises(SystemExit, match="size"):            # another width
        train_denoise.load_grown(build_model("denoise_unet", {"widths": [8, 32], "blocks": 1}), small.state_dict())
