"""Stylize, brushwork: the patch-texture model (a set of paintings' patch statistics and the pass that moves a
picture's patches onto them), its fitting command, and the shipped style's use of it."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imgen.evaluation.stylize import edge_ssim, texture_swd
from imgen.models.patch_texture import PatchTexture, PatchTextureConfig
from imgen.pyramid import blur, collapse, coverage, laplacian_pyramid
from imgen.tasks.stylize import brushwork_amount, stylize_image
from test_stylize_texture import scene, strokes

SMALL = PatchTextureConfig(quantiles=256, table=512, sample=1024)


def tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float()[None] / 255


def array(y: torch.Tensor) -> np.ndarray:
    return np.rint(y[0].permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def fitted() -> PatchTexture:
    paintings = [tensor(strokes(96, 128, s))[0] for s in range(6)]
    return PatchTexture(SMALL).fit(paintings, per_image=256).eval()


def test_blur_and_pyramid_match_the_plain_convolution_and_invert():
    x = torch.rand(2, 3, 37, 50)
    k = torch.tensor([1., 4., 6., 4., 1.]) / 16
    plain = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), (k[:, None] * k[None]).expand(3, 1, 5, 5), groups=3)
    torch.testing.assert_close(blur(x), plain, atol=1e-6, rtol=0)
    levels = laplacian_pyramid(x, 4)
    assert len(levels) == 4 and levels[-1].shape[-2:] == (5, 7)
    torch.testing.assert_close(collapse(levels), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size,stride", [((100, 77), 3), ((64, 64), 1), ((13, 29), 2), ((60, 45), 5)])
def test_coverage_counts_what_folding_ones_gives(size, stride):
    n = ((size[0] - 7) // stride + 1) * ((size[1] - 7) // stride + 1)
    ones = F.fold(torch.ones(1, 49, n), size, 7, stride=stride)[0, 0].clamp_min(1)
    assert torch.equal(coverage(size, 7, stride, "cpu"), ones)


def test_the_pass_moves_a_picture_towards_the_paintings_and_keeps_its_outlines(fitted):
    photo = scene()
    with torch.inference_mode():
        out = array(fitted(tensor(photo)))
    targets = [strokes(96, 128, s) for s in range(6, 9)]                      # paintings it was not fitted on
    before = texture_swd([photo], targets, patches=2048, side=None)
    after = texture_swd([out], targets, patches=2048, side=None)
    assert out.shape == photo.shape
    assert after < 0.7 * before, (before, after)
    assert edge_ssim(photo, out) > 0.2
    # outlines stay put: the smoothed output's edges are strongest where the photo's are
    from imgen.evaluation.stylize import edge_map
    outline = cv2.dilate((edge_map(photo) > 0.1).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    edges = edge_map(cv2.GaussianBlur(out, (0, 0), 1.5))
    assert edges[outline].mean() > 1.5 * edges[~outline].mean()


def test_an_unfitted_model_and_tiny_pictures(fitted):
    with torch.inference_mode():
        tiny = torch.rand(1, 3, 5, 40)
        assert torch.equal(fitted(tiny), tiny)                                 # too small for a patch: unchanged
        thin = fitted(torch.rand(2, 3, 9, 300))                                # a strip and a batch of two
    assert thin.shape == (2, 3, 9, 300) and 0 <= float(thin.min()) and float(thin.max()) <= 1
    with pytest.raises(ValueError, match="too small"):
        PatchTexture(SMALL).fit([torch.rand(3, 6, 6)])


@pytest.mark.slow
def test_the_fitting_command_ships_a_model_the_store_loads(tmp_path, shared_data):
    from imgen import store as store_mod
    from imgen.cli import main as cli
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "registry.json").write_text(json.dumps({"models": {}}))
    store_mod.set_default_store(store_mod.Store(weights_dir=weights, registry_path=weights / "registry.json"))
    try:
        assert cli(["train", "stylize-texture", "--limit", "3", "--side", "128", "--per-image", "64",
                    "--name", "tiny-texture", "--weights", str(weights)]) == 0
        loaded = store_mod.load("tiny-texture", device="cpu")
    finally:
        store_mod.set_default_store(None)
    entry = json.loads((weights / "registry.json").read_text())["models"]["tiny-texture"]
    assert entry["task"] == "stylize-texture" and entry["arch"] == "patch_texture"
    assert float(loaded.quantile.abs().sum()) > 0 and float(loaded.std.min()) > 0    # fitted, not the init
    assert torch.allclose(loaded.rotation[0, 0] @ loaded.rotation[0, 0].T, torch.eye(16), atol=1e-5)
    card = (weights / "tiny-texture.md").read_text()
    assert "python -m imgen train stylize-texture" in card and "3 paintings" in card


def test_brushwork_amount_fades_in_below_half_strength():
    assert brushwork_amount(0) == 0 and brushwork_amount(0.25) == 0.5 and brushwork_amount(0.8) == 1


@pytest.mark.slow
def test_the_shipped_style_with_its_brushwork_is_closer_to_the_paintings(shared_data):
    """Smoke on four CBSD68 photos: the shipped style's brushwork pass lowers the texture SWD to the paintings
    below the network's alone, keeps the outlines (edge SSIM), and strength 0 still returns the input."""
    from imgen import store as store_mod
    from imgen.datasets.folders import list_images
    from imgen.image_io import load_image
    real = store_mod.Store()
    styles = [e.name for e in real.entries_for_task("stylize")]
    textures = {e.name for e in real.entries_for_task("stylize-texture")}
    if not styles or styles[0] + "-texture" not in textures:
        pytest.skip("no stylize model with a brushwork model registered")
    photos = [np.asarray(load_image(p, mode="RGB")) for p in list_images([shared_data / "eval/denoise/CBSD68"])[:4]]
    paint = [np.asarray(load_image(p, mode="RGB")) for p in list_images([shared_data / "paintings/titian"])[::5]]
    net = [np.asarray(stylize_image(a, styles[0], brushwork=False).image) for a in photos]
    res = [stylize_image(a, styles[0]) for a in photos]
    brush = [np.asarray(r.image) for r in res]
    assert "brushwork" in res[0].backend and "brushwork" not in stylize_image(photos[0], styles[0],
                                                                             brushwork=False).backend
    t_net = texture_swd(net, paint, patches=4096, side=512)
    t_brush = texture_swd(brush, paint, patches=4096, side=512)
    assert t_brush < 0.9 * t_net, (t_net, t_brush)
    assert np.mean([edge_ssim(a, b) for a, b in zip(photos, brush)]) > 0.55
    assert np.array_equal(np.asarray(stylize_image(photos[0], styles[0], strength=0).image), photos[0])


@pytest.mark.slow
def test_cli_no_brushwork_gives_the_network_alone(tmp_path, shared_data):
    from imgen import store as store_mod
    from imgen.cli import main as cli
    from PIL import Image
    if "stylize-titian-texture" not in {e.name for e in store_mod.Store().entries_for_task("stylize-texture")}:
        pytest.skip("no brushwork model registered")
    src = tmp_path / "scene.png"
    Image.fromarray(cv2.resize(scene(), (256, 192))).save(src)
    for flag, out in (([], "with"), (["--no-brushwork"], "without")):
        assert cli(["stylize", str(src), "-o", str(tmp_path / out), "--style", "stylize-titian", "--quiet"] + flag) == 0
    with_, without = (np.asarray(Image.open(tmp_path / d / "scene.png")) for d in ("with", "without"))
    net = np.asarray(stylize_image(tmp_path / "scene.png", "stylize-titian", brushwork=False).image)
    assert np.array_equal(without, net) and np.abs(with_.astype(int) - without).mean() > 2
