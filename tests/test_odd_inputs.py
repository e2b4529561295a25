"""Odd and hostile inputs (issue #8), end to end through three surfaces: the task functions
(``denoise_image``, ``inpaint_image``), the CLI (``imgen.cli.main`` in-process, plus two real subprocess runs)
and the HTTP API of the running app (``/denoise``, ``/inpaint``) driven with gradio_client.

Every odd input must give either a correct result or a clear sentence for the user:
- task functions: ``ImageInputError`` / ``ValueError`` with a readable message, or a result with a note;
- CLI: exit code != 0 and one line on stderr, never a traceback;
- API: ``gradio_client.exceptions.AppError`` carrying the sentence, and the server still answers afterwards.

The decoder itself (every colour mode, EXIF, size checks) is unit-tested in test_image_io.py; here it is
the surfaces that are tested. Images are tiny; inpainting uses OpenCV Telea, denoising mostly OpenCV NLM
(the trained network on the size edge cases).
"""
from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from imgen.cli import main as cli_main
from imgen.image_io import ImageInputError, load_image
from imgen.tasks.denoise import denoise_image, denoise_with_synthetic_noise
from imgen.ui.editor import mask_from_editor
from imgen.tasks.inpaint import inpaint_image, resize_mask

NLM_LABEL = "OpenCV non-local means (classical)"
NET_LABEL = "Trained U-Net (imgen)"
TELEA_LABEL = "OpenCV Telea (classical)"
CROP = "Only the masked area at full resolution"
W, H = 40, 32                     # the "normal" photo


# =============================================================================================== inputs
def smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with a little noise (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full((h, w), 100)], axis=2)
    return np.clip(a + rng.integers(-8, 9, a.shape), 0, 255).astype(np.uint8)


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature + IHDR declaring width x height, followed by a tiny (wrong) data chunk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
            + chunk(b"IEND", b""))


def write_image(kind: str, folder: Path) -> Path:
    """Write an input file of the given kind (see IMAGE_KINDS) and return its path."""
    normal = Image.fromarray(smooth(H, W))
    if kind == "truncated-png":
        p = folder / "truncated.png"
        p.write_bytes(_encoded(normal, "PNG")[:600])
    elif kind == "truncated-jpeg":
        p = folder / "truncated.jpg"
        p.write_bytes(_encoded(normal, "JPEG", quality=95)[:500])
    elif kind == "corrupt-bytes":
        p = folder / "corrupt.png"
        data = bytearray(_encoded(normal, "PNG"))
        data[12:60] = bytes(range(200, 248))       # the IHDR chunk and what follows, overwritten
        p.write_bytes(bytes(data))
    elif kind == "zero-byte":
        p = folder / "empty.png"
        p.write_bytes(b"")
    elif kind == "text-as-png":
        p = folder / "notes.png"
        p.write_text("these are my holiday notes, not a picture\n" * 20)
    elif kind == "over-pixel-limit":              # the test sets IMGEN_MAX_PIXELS=1000 (the photo has 1280)
        p = folder / "big.png"
        normal.save(p)
    elif kind == "decompression-bomb":
        p = folder / "bomb.png"                   # ~150 bytes declaring 30000 x 30000 = 900 MP
        p.write_bytes(png_header_only(30000, 30000))
    elif kind == "1x1":
        p = folder / "dot.png"
        Image.new("RGB", (1, 1), (10, 200, 30)).save(p)
    elif kind == "20000x1":                       # thinner than 1:100: refused before decoding (issue #19)
        p = folder / "line.png"
        Image.fromarray(smooth(1, 20000)).save(p)
    elif kind == "2000x20":                       # thin, but within 1:100
        p = folder / "strip.png"
        Image.fromarray(smooth(20, 2000)).save(p)
    elif kind == "png-16bit":
        p = folder / "deep.png"
        a = (smooth(H, W)[:, :, 0].astype(np.uint16) * 257)      # full 16-bit range
        Image.fromarray(a).save(p)
        assert Image.open(p).mode == "I;16"
    elif kind == "cmyk-jpeg":
        p = folder / "print.jpg"
        normal.convert("CMYK").save(p, "JPEG", quality=95)
    elif kind == "palette-transparency":
        p = folder / "palette.png"
        im = normal.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
        im.save(p, transparency=0)
    elif kind == "animated-gif":
        p = folder / "anim.gif"
        frames = [Image.new("RGB", (W, H), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
        frames[0].save(p, save_all=True, append_images=frames[1:], duration=50, loop=0)
    elif kind == "exif-rotated":
        p = folder / "phone.jpg"                  # stored 48 x 32, red block at the stored top-left
        a = np.full((32, 48, 3), 128, np.uint8)
        a[:8, :8] = (255, 0, 0)
        exif = Image.Exif()
        exif[0x0112] = 6                          # "rotate 90° clockwise to display"
        Image.fromarray(a).save(p, "JPEG", exif=exif.tobytes(), quality=95)
    elif kind == "grayscale":
        p = folder / "gray.png"
        Image.fromarray(smooth(H, W)[:, :, 1]).save(p)
    elif kind == "rgba":
        p = folder / "rgba.png"
        alpha = np.tile(np.linspace(0, 255, W).astype(np.uint8), (H, 1))
        Image.fromarray(np.dstack([smooth(H, W), alpha]), "RGBA").save(p)
    else:
        raise KeyError(kind)
    return p


@dataclass(frozen=True)
class Expect:
    error: str | None = None            # regex the user-facing message must match; None = a result is expected
    size: tuple[int, int] | None = None
    mode: str | None = None             # the result's mode from the task functions and the CLI


IMAGE_KINDS = {
    "truncated-png": Expect(error="not a readable image; the file may be truncated or damaged"),
    "truncated-jpeg": Expect(error="not a readable image; the file may be truncated or damaged"),
    "corrupt-bytes": Expect(error="not a readable image"),
    "zero-byte": Expect(error=r"is empty \(0 bytes\)"),
    "text-as-png": Expect(error=r"not a readable image \(unknown or unsupported file format\)"),
    "over-pixel-limit": Expect(error=r"megapixels; the limit is .* Please downscale it first"),
    "decompression-bomb": Expect(error="too large to open safely"),
    "1x1": Expect(size=(1, 1), mode="RGB"),
    "20000x1": Expect(error=r"sides more than 100 times as long as the other are not accepted"),
    "2000x20": Expect(size=(2000, 20), mode="RGB"),
    "png-16bit": Expect(size=(W, H), mode="L"),
    "cmyk-jpeg": Expect(size=(W, H), mode="RGB"),
    "palette-transparency": Expect(size=(W, H), mode="RGBA"),
    "animated-gif": Expect(size=(W, H), mode="RGB"),
    "exif-rotated": Expect(size=(32, 48), mode="RGB"),      # stored 48 x 32: orientation applied
    "grayscale": Expect(size=(W, H), mode="L"),
    "rgba": Expect(size=(W, H), mode="RGBA"),
}
NETWORK_KINDS = {"1x1", "2000x20"}      # the task functions denoise these with the trained network (padding
NETWORK_KINDS_CLI_API = {"1x1"}         # edge cases), the CLI and the API only the 1 x 1 one; the rest use NLM


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("odd-inputs")
    out = {k: write_image(k, folder) for k in IMAGE_KINDS}
    Image.fromarray(smooth(H, W, seed=1)).save(folder / "photo.png")
    Image.fromarray(smooth(8, 8, seed=2)).save(folder / "tiny.png")
    out["photo"], out["tiny"] = folder / "photo.png", folder / "tiny.png"
    return out


@pytest.fixture
def limit_env(monkeypatch):
    def apply(kind: str) -> None:
        if kind == "over-pixel-limit":
            monkeypatch.setenv("IMGEN_MAX_PIXELS", "1000")
    return apply


def hole_for(size: tuple[int, int]) -> np.ndarray:
    """A rectangle in the middle of an image of (width, height); the whole image when it is 1 px."""
    w, h = size
    m = np.zeros((h, w), bool)
    m[h // 4:h // 4 + max(1, h // 2), w // 4:w // 4 + max(1, w // 2)] = True
    return m


def mask_file(hole: np.ndarray, path: Path) -> Path:
    Image.fromarray(hole.astype(np.uint8) * 255, "L").save(path)
    return path


def layer_file(hole: np.ndarray, path: Path, alpha: int = 255) -> Path:
    """An ImageMask layer as the browser sends it: transparent, painted = opaque black."""
    rgba = np.zeros(hole.shape + (4,), np.uint8)
    rgba[hole, 3] = alpha
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def reference(path: Path) -> Image.Image:
    """What imgen's decoder makes of a file (mode kept, alpha kept, EXIF applied, first frame)."""
    return load_image(path)


def arr(img) -> np.ndarray:
    return np.asarray(img if isinstance(img, Image.Image) else Image.open(img))


def check_denoised(out: Image.Image, kind: str, path: Path) -> None:
    """The denoised image is the same picture as the input, at the same size, with its alpha kept."""
    e = IMAGE_KINDS[kind]
    ref = reference(path)
    assert out.size == e.size == ref.size
    assert out.mode == e.mode
    o, r = arr(out).astype(np.float64), arr(ref).astype(np.float64)
    if out.mode in ("RGBA", "LA"):
        assert np.array_equal(o[..., -1], r[..., -1])          # alpha bit-exact
        o, r = o[..., :-1], r[..., :-1]
    if o.ndim == 3 and r.ndim == 2:
        r = r[..., None]
    assert np.abs(o - r).mean() < 15, kind                       # the same picture (mildly denoised)
    if kind == "animated-gif":                                   # the first frame (red), not a later one
        assert o[..., 0].mean() > 200 and o[..., 2].mean() < 50
    if kind == "exif-rotated":                                   # the red block went to the top-right
        assert o[2:6, 26:30, 0].mean() > 200 and o[2:6, 26:30, 1].mean() < 80
        assert abs(o[2:6, 2:6, 0].mean() - 128) < 30


def check_inpainted(out: Image.Image, ref: Image.Image, hole: np.ndarray) -> None:
    """Same size and mode as the reference; every pixel outside the hole bit-identical to it."""
    assert out.size == ref.size and out.mode == ref.mode
    o, r = arr(out), arr(ref)
    assert np.array_equal(o[~hole], r[~hole])


# ========================================================================================= task functions
@pytest.mark.parametrize("kind", list(IMAGE_KINDS))
def test_task_denoise(kind, files, limit_env):
    limit_env(kind)
    e = IMAGE_KINDS[kind]
    model = "denoise-unet" if kind in NETWORK_KINDS else "nlm"
    if e.error:
        with pytest.raises(ImageInputError, match=e.error):
            denoise_image(files[kind], sigma=5, model=model)
        return
    res = denoise_image(files[kind], sigma=5, model=model)
    check_denoised(res.image, kind, files[kind])


@pytest.mark.parametrize("kind", list(IMAGE_KINDS))
def test_task_inpaint(kind, files, limit_env):
    limit_env(kind)
    e = IMAGE_KINDS[kind]
    hole = hole_for(e.size or (W, H))
    if e.error:
        with pytest.raises(ImageInputError, match=e.error):
            inpaint_image(files[kind], hole, model="telea")
        return
    res = inpaint_image(files[kind], hole, model="telea")
    check_inpainted(res.image, reference(files[kind]), hole)
    assert res.image.mode == e.mode


def _masks(folder: Path) -> dict[str, Path]:
    """Mask files for the 40 x 32 photo (white = fill)."""
    small = np.zeros((H // 2, W // 2), bool)
    small[4:10, 5:12] = True
    gray = np.zeros((H, W), np.uint8)
    gray[:, :W // 2] = 100                 # below 50 %: kept
    gray[8:24, 24:36] = 200                # above 50 %: filled
    gray[10:12, 26:28] = 128               # just above the threshold: filled
    (folder / "corrupt-mask.png").write_bytes(_encoded(Image.new("L", (W, H), 255), "PNG")[:60])
    Image.fromarray(gray, "L").save(folder / "gray-mask.png")
    return {"empty-mask": mask_file(np.zeros((H, W), bool), folder / "empty-mask.png"),
            "full-mask": mask_file(np.ones((H, W), bool), folder / "full-mask.png"),
            "other-size-mask": mask_file(small, folder / "small-mask.png"),
            "non-binary-mask": folder / "gray-mask.png",
            "corrupt-mask": folder / "corrupt-mask.png"}


MASK_KINDS = ["empty-mask", "full-mask", "other-size-mask", "non-binary-mask", "corrupt-mask"]


def expected_hole(kind: str, path: Path) -> np.ndarray | None:
    a = np.asarray(Image.open(path)) if kind != "corrupt-mask" else None
    if kind == "other-size-mask":
        return resize_mask(a > 127, (W, H))
    if kind == "non-binary-mask":
        return a >= 128
    return None if a is None else a > 127


MASK_NOTES = {"empty-mask": "The mask is empty: there is nothing to fill, so the image is returned unchanged",
              "full-mask": "The whole image is masked",
              "other-size-mask": r"The mask is 20×16 px and the photo 40×32 px: the mask was resized \(nearest",
              "non-binary-mask": None,
              "corrupt-mask": "not a readable image"}


@pytest.fixture(scope="module")
def masks(tmp_path_factory) -> dict[str, Path]:
    return _masks(tmp_path_factory.mktemp("masks"))


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_task_masks(kind, files, masks):
    photo = files["photo"]
    if kind == "corrupt-mask":
        with pytest.raises(ImageInputError, match=MASK_NOTES[kind]):
            inpaint_image(photo, masks[kind], model="telea")
        return
    res = inpaint_image(photo, masks[kind], model="telea")
    hole = expected_hole(kind, masks[kind])
    ref = reference(photo)
    check_inpainted(res.image, ref, hole)
    assert np.array_equal(arr(res.mask_used) > 0, hole)
    if MASK_NOTES[kind]:
        assert any(re.search(MASK_NOTES[kind], n) for n in res.notes), res.notes
    if kind == "empty-mask":
        assert np.array_equal(arr(res.image), arr(ref))
    if kind == "full-mask":                          # Telea has nothing to propagate from: flat gray
        assert (arr(res.image) == 128).all()


@pytest.mark.parametrize("background", ["with-background", "layer-only"])
def test_task_editor_mask_of_another_size(background, files):
    """An ImageEditor value whose painted layer is 20 x 16 for a 40 x 32 photo: resized, and said so."""
    layer = np.zeros((H // 2, W // 2, 4), np.uint8)
    layer[4:10, 5:12, 3] = 255
    bg = np.asarray(Image.open(files["photo"]).convert("RGBA")) if background == "with-background" else None
    notes: list[str] = []
    painted = mask_from_editor({"background": bg, "layers": [layer]}, notes)   # the tab's adapter, then the task
    res = inpaint_image(files["photo"], painted, model="telea")
    assert any(re.search(r"mask is 20×16 px and the photo 40×32 px: the mask was resized \(nearest", n)
               for n in notes + res.notes), notes + res.notes
    assert np.array_equal(arr(res.mask_used) > 0, resize_mask(layer[..., 3] > 0, (W, H)))


NUMBER_CASES = {
    # id: (task, kwargs, error regex or None, note regex or None)
    "sigma-negative": ("denoise", {"sigma": -5}, None, "Noise level -5 is outside 0–75; using 0"),
    "sigma-too-large": ("denoise", {"sigma": 1000}, None, "Noise level 1000 is outside 0–75; using 75"),
    "sigma-nan": ("denoise", {"sigma": float("nan")}, "noise level must be a number between 0 and 75", None),
    "sigma-inf": ("denoise", {"sigma": float("inf")}, "noise level must be a number between 0 and 75", None),
    "sigma-string": ("denoise", {"sigma": "loud"}, "must be 'auto' or a number between 0 and 75, not 'loud'", None),
    "sigma-AUTO-string": ("denoise", {"sigma": " AUTO "}, None, "Estimated noise level"),
    "added-noise-nan": ("try-it", {"noise_sigma": float("nan")}, "added noise level must be a number", None),
    "grow-minus-1e9": ("inpaint", {"grow": -1e9}, None, "The mask is empty"),
    "grow-plus-1e9": ("inpaint", {"grow": 1e9}, None, "The whole image is masked"),
    "grow-nan": ("inpaint", {"grow": float("nan")}, "Grow must be a finite number", None),
    "grow-string": ("inpaint", {"grow": "lots"}, "Grow must be a number, not 'lots'", None),
    "grow-none": ("inpaint", {"grow": None}, "Grow must be a number, not 'None'", None),
    "feather-negative": ("inpaint", {"feather": -1}, "Feather must be 0 or more px", None),
    "feather-nan": ("inpaint", {"feather": float("nan")}, "Feather must be a finite number", None),
    "max-side-nan": ("inpaint", {"max_side": float("nan")}, r"\(max side\) must be a finite number", None),
    "max-side-inf": ("inpaint", {"max_side": float("inf")}, r"\(max side\) must be a finite number", None),
    "max-side-zero": ("inpaint", {"max_side": 0}, "must be at least 16 px", None),
}


@pytest.mark.parametrize("case", list(NUMBER_CASES))
def test_task_numbers(case, files):
    task, kwargs, error, note = NUMBER_CASES[case]
    hole = hole_for((W, H))
    if task == "denoise":
        run = lambda: denoise_image(files["photo"], model="nlm", **kwargs)  # noqa: E731
    elif task == "try-it":
        run = lambda: denoise_with_synthetic_noise(files["photo"], model="nlm", sigma=5, **kwargs)  # noqa: E731
    else:
        run = lambda: inpaint_image(files["photo"], hole, model="telea", **kwargs)  # noqa: E731
    if error:
        with pytest.raises(ValueError, match=error):
            run()
        return
    res = run()
    assert res.image.size == (W, H)
    assert any(re.search(note, n) for n in res.notes), res.notes
    if case == "grow-minus-1e9":
        assert np.array_equal(arr(res.image), arr(reference(files["photo"])))


@pytest.mark.parametrize("case", ["int", "none", "list", "editor-without-images"])
def test_task_wrong_types(case, files):
    if case == "int":
        with pytest.raises(ImageInputError, match="Cannot read an image from a int"):
            denoise_image(12345, model="nlm")
    elif case == "none":
        with pytest.raises(ImageInputError, match="Cannot read an image from a NoneType"):
            inpaint_image(None, hole_for((W, H)), model="telea")
    elif case == "list":          # a list of masks whose entries are not images
        with pytest.raises(ImageInputError, match="Cannot read an image from a int"):
            inpaint_image(files["photo"], [1, 2, 3], model="telea")
    else:
        with pytest.raises(ImageInputError, match="Upload a photo first"):
            mask_from_editor({"background": None, "layers": []})


# ==================================================================================================== CLI
def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """``python -m imgen ARGV`` in-process: (exit code, stdout, stderr) as a shell would see them."""
    try:
        rc = cli_main([str(a) for a in argv])
    except SystemExit as e:           # argparse errors, and SystemExit("message") which Python prints
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            rc = 1
        else:
            rc = e.code or 0
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc: int, err: str, pattern: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc != 0
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert re.search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("kind", list(IMAGE_KINDS))
def test_cli_denoise(kind, files, limit_env, capsys, tmp_path):
    limit_env(kind)
    e = IMAGE_KINDS[kind]
    model = [] if kind in NETWORK_KINDS_CLI_API else ["--model", "nlm"]
    rc, out, err = run_cli(capsys, "denoise", files[kind], "-o", tmp_path, "--sigma", "5", "--quiet", *model)
    if e.error:
        assert_one_line_error(rc, err, e.error)
        assert not list(tmp_path.iterdir())
        return
    assert rc == 0, err
    check_denoised(Image.open(tmp_path / (files[kind].stem + ".png")), kind, files[kind])


@pytest.mark.parametrize("kind", list(IMAGE_KINDS))
def test_cli_inpaint(kind, files, limit_env, capsys, tmp_path):
    limit_env(kind)
    e = IMAGE_KINDS[kind]
    hole = hole_for(e.size or (W, H))
    m = mask_file(hole, tmp_path / "mask.png")
    dest = tmp_path / "out.png"
    rc, out, err = run_cli(capsys, "inpaint", files[kind], m, "-o", dest, "--model", "telea")
    if e.error:
        assert_one_line_error(rc, err, e.error)
        assert not dest.exists()
        return
    assert rc == 0, err
    check_inpainted(Image.open(dest), reference(files[kind]), hole)


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_cli_masks(kind, files, masks, capsys, tmp_path):
    dest = tmp_path / "out.png"
    rc, out, err = run_cli(capsys, "inpaint", files["photo"], masks[kind], "-o", dest, "--model", "telea")
    if kind == "corrupt-mask":
        assert_one_line_error(rc, err, MASK_NOTES[kind])
        return
    assert rc == 0, err
    check_inpainted(Image.open(dest), reference(files["photo"]), expected_hole(kind, masks[kind]))
    if MASK_NOTES[kind]:
        assert re.search("note: " + MASK_NOTES[kind], out), out


CLI_NUMBER_CASES = {
    # id: (argv after the inputs, exit code, stdout regex or None, stderr regex (the one line) or None)
    "sigma-negative": (["denoise", "--sigma", "-5"], 0, "note: Noise level -5 is outside 0–75; using 0", None),
    "sigma-too-large": (["denoise", "--sigma", "1000"], 0, "note: Noise level 1000 is outside 0–75; using 75", None),
    "sigma-nan": (["denoise", "--sigma", "nan"], 1, None, "noise level must be a number between 0 and 75"),
    "sigma-string": (["denoise", "--sigma", "abc"], 1, None,
                     "^denoise: --sigma must be 'auto' or a number from 0 to 75, not 'abc'$"),
    "grow-minus-1e9": (["inpaint", "--grow", "-1000000000"], 0, "note: The mask is empty", None),
    "grow-plus-1e9": (["inpaint", "--grow", "1000000000"], 0, "note: The whole image is masked", None),
    "grow-float-syntax": (["inpaint", "--grow=-1e9"], 2, None, "argument --grow: invalid int value: '-1e9'"),
    "grow-string": (["inpaint", "--grow", "abc"], 2, None, "argument --grow: invalid int value: 'abc'"),
    "feather-nan": (["inpaint", "--feather", "nan"], 1, None, "Feather must be a finite number"),
    "feather-negative": (["inpaint", "--feather=-3"], 1, None, "Feather must be 0 or more px"),
    "max-side-zero": (["inpaint", "--max-side", "0"], 1, None, "must be at least 16 px"),
}


@pytest.mark.parametrize("case", list(CLI_NUMBER_CASES))
def test_cli_numbers(case, files, capsys, tmp_path):
    (cmd, *opts), code, out_re, err_re = CLI_NUMBER_CASES[case]
    if cmd == "denoise":
        argv = ["denoise", files["photo"], "-o", tmp_path, "--model", "nlm", "--quiet", *opts]
    else:
        m = mask_file(hole_for((W, H)), tmp_path / "mask.png")
        argv = ["inpaint", files["photo"], m, "-o", tmp_path / "out.png", "--model", "telea", *opts]
    rc, out, err = run_cli(capsys, *argv)
    assert rc == code, (out, err)
    assert "Traceback" not in err
    if out_re:
        assert re.search(out_re, out), out
    if err_re:
        if code == 2:    # argparse: its usage line, then one line with the error
            assert re.search(err_re, err.strip().splitlines()[-1]), err
        else:
            assert_one_line_error(rc, err, err_re)


@pytest.mark.parametrize("case", ["folder-as-image", "missing-file", "unknown-model", "unwritable-output",
                                  "output-is-a-file"])
def test_cli_wrong_paths_and_names(case, files, capsys, tmp_path):
    m = mask_file(hole_for((W, H)), tmp_path / "mask.png")
    if case == "folder-as-image":
        rc, _, err = run_cli(capsys, "inpaint", tmp_path, m, "-o", tmp_path / "o.png", "--model", "telea")
        assert_one_line_error(rc, err, "is a folder, not an image file")
    elif case == "missing-file":
        rc, _, err = run_cli(capsys, "denoise", tmp_path / "nope.png", "-o", tmp_path, "--model", "nlm", "--quiet")
        assert_one_line_error(rc, err, "File not found")
    elif case == "unknown-model":
        rc, _, err = run_cli(capsys, "denoise", files["photo"], "-o", tmp_path, "--model", "bogus", "--quiet")
        assert_one_line_error(rc, err, "There is no model called 'bogus'")
    elif case == "unwritable-output":
        (tmp_path / "blocker").write_text("a file where a folder is needed")
        rc, _, err = run_cli(capsys, "inpaint", files["photo"], m, "-o", tmp_path / "blocker" / "sub" / "o.png",
                             "--model", "telea")
        assert_one_line_error(rc, err, "^inpaint: .*blocker")
    else:
        rc, _, err = run_cli(capsys, "denoise", files["photo"], "-o", m, "--model", "nlm", "--quiet")
        assert_one_line_error(rc, err, "^denoise: .*File exists")


@pytest.mark.slow
def test_cli_subprocess_broken_and_good_inputs(files, tmp_path):
    """A real process: broken inputs are reported one line each, the good one is still written, exit 1."""
    r = subprocess.run([sys.executable, "-m", "imgen", "denoise", files["truncated-jpeg"], files["decompression-bomb"],
                        files["rgba"], "-o", str(tmp_path), "--model", "nlm", "--sigma", "5", "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 2, r.stderr
    assert "truncated.jpg" in lines[0] and "not a readable image" in lines[0]
    assert "bomb.png" in lines[1] and "too large to open safely" in lines[1]
    check_denoised(Image.open(tmp_path / "rgba.png"), "rgba", files["rgba"])


# ==================================================================================================== API
gradio = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402


@dataclass
class Api:
    client: Client           # returns result files as FileData dicts; fetch() downloads the ones a test checks
    http: object             # an httpx.Client for fetch() and raw requests
    url: str
    demo: object
    tiny: Path


@pytest.fixture(scope="module")
def api(files, app_server):
    demo, url = app_server
    import httpx
    c = Client(url, verbose=False, analytics_enabled=False, download_files=False)
    http = httpx.Client(timeout=30)
    yield Api(c, http, url, demo, files["tiny"])
    http.close()
    c.close()


def fetch(api: Api, file: dict) -> Image.Image:
    """Download a result file over HTTP, as a browser would."""
    r = api.http.get(file["url"])
    r.raise_for_status()
    img = Image.open(io.BytesIO(r.content))
    img.load()
    return img


def denoise_args(image, sigma=5, model=NLM_LABEL, mode="Manual", add_noise=False, noise_sigma=25, gray=False):
    return (image, mode, sigma, add_noise, noise_sigma, model, gray)


def inpaint_args(editor, mask=None, grow=0, feather=0, invert=False, processing=CROP, max_side=512,
                 model=TELEA_LABEL):
    return (editor, mask, grow, feather, invert, processing, max_side, model)


def editor_value(background: Path, *layers: Path) -> dict:
    return {"background": handle_file(str(background)), "layers": [handle_file(str(p)) for p in layers],
            "composite": None}


def assert_alive(api: Api) -> None:
    """After a hostile request the server still answers a normal one (a denoised 8 x 8 photo)."""
    *_, report = api.client.predict(*denoise_args(handle_file(str(api.tiny))), api_name="/denoise")
    assert "σ = 5" in report and "8×8 px in" in report


def api_error(api: Api, pattern: str, *args, api_name: str) -> str:
    """The request fails with a sentence matching ``pattern``. (That the server still answers afterwards is
    checked by the next request: every test here makes one, and the module ends with a normal request.)"""
    with pytest.raises(AppError) as e:
        api.client.predict(*args, api_name=api_name)
    msg = str(e.value)
    assert re.search(pattern, msg), msg
    assert "upstream Gradio app has raised an exception" not in msg and "Traceback" not in msg
    return msg


def quick(values, keep) -> list:
    """Parameters of an API test: those in ``keep`` run in the quick loop, the others in the full suite only (each
    is an HTTP round trip; the task and CLI tests above run every case in the quick loop)."""
    unknown = set(keep) - set(values)
    assert not unknown, unknown
    return [v if v in keep else pytest.param(v, marks=pytest.mark.slow) for v in values]


QUICK_KINDS = ("truncated-png", "decompression-bomb", "20000x1", "cmyk-jpeg", "rgba")


@pytest.mark.parametrize("kind", quick(list(IMAGE_KINDS), QUICK_KINDS))
def test_api_denoise(kind, api, files, limit_env):
    limit_env(kind)
    e = IMAGE_KINDS[kind]
    model = NET_LABEL if kind in NETWORK_KINDS_CLI_API else NLM_LABEL
    args = denoise_args(handle_file(str(files[kind])), model=model)
    if e.error:
        api_error(api, e.error, *args, api_name="/denoise")
        return
    (before, after), download, report = api.client.predict(*args, api_name="/denoise")
    check_denoised(fetch(api, after), kind, files[kind])
    assert download["path"] == after["path"] and f"{e.size[0]}×{e.size[1]} px" in report


@pytest.mark.parametrize("kind", quick(list(IMAGE_KINDS), QUICK_KINDS))
def test_api_inpaint(kind, api, files, limit_env, tmp_path):
    """The photo as the editor's background, the hole as a painted layer of the (upright) photo's size."""
    limit_env(kind)
    e = IMAGE_KINDS[kind]
    hole = hole_for(e.size or (W, H))
    args = inpaint_args(editor_value(files[kind], layer_file(hole, tmp_path / "layer.png")))
    if e.error:
        api_error(api, e.error, *args, api_name="/inpaint")
        return
    (before, after), download, used, report = api.client.predict(*args, api_name="/inpaint")
    ref = load_image(files[kind], mode="RGBA")          # the editor works in RGBA; opaque photos come back RGB
    if (arr(ref)[..., 3] == 255).all():
        ref = ref.convert("RGB")
    check_inpainted(fetch(api, after), ref, hole)
    assert np.array_equal(arr(fetch(api, used)) > 127, hole)
    assert "resized" not in report


@pytest.mark.parametrize("kind", quick(MASK_KINDS + ["other-size-editor-layer", "no-layer-no-mask",
                                                     "full-editor-layer", "semi-transparent-layer"],
                                     ("corrupt-mask", "other-size-editor-layer", "semi-transparent-layer")))
def test_api_masks(kind, api, files, masks, tmp_path):
    photo = files["photo"]
    if kind == "corrupt-mask":
        api_error(api, MASK_NOTES[kind], *inpaint_args(editor_value(photo), handle_file(str(masks[kind]))),
                  api_name="/inpaint")
        return
    note = MASK_NOTES.get(kind)
    if kind in MASK_KINDS:                            # the optional mask upload
        args = inpaint_args(editor_value(photo), handle_file(str(masks[kind])))
        hole = expected_hole(kind, masks[kind])
    elif kind == "other-size-editor-layer":           # a painted layer of another size than the photo
        small = np.zeros((H // 2, W // 2), bool)
        small[4:10, 5:12] = True
        args = inpaint_args(editor_value(photo, layer_file(small, tmp_path / "small-layer.png")))
        hole = resize_mask(small, (W, H))
        note = r"The painted mask is 20×16 px and the photo 40×32 px: the mask was resized \(nearest"
    elif kind == "no-layer-no-mask":                  # nothing painted, nothing uploaded
        args = inpaint_args(editor_value(photo))
        hole = np.zeros((H, W), bool)
        note = MASK_NOTES["empty-mask"]
    elif kind == "full-editor-layer":
        hole = np.ones((H, W), bool)
        args = inpaint_args(editor_value(photo, layer_file(hole, tmp_path / "full-layer.png")))
        note = MASK_NOTES["full-mask"]
    else:                                             # a soft brush: any paint (alpha > 0) marks the hole
        hole = hole_for((W, H))
        args = inpaint_args(editor_value(photo, layer_file(hole, tmp_path / "soft.png", alpha=40)))
        note = None
    (before, after), download, used, report = api.client.predict(*args, api_name="/inpaint")
    out = fetch(api, after)
    check_inpainted(out, reference(photo), hole)
    assert np.array_equal(arr(fetch(api, used)) > 127, hole)
    if note:
        assert re.search(note, report), report
    if kind in ("empty-mask", "no-layer-no-mask"):
        assert np.array_equal(arr(out), arr(photo))


API_NUMBER_CASES = {
    # id: (endpoint, argument overrides, error regex)
    "sigma-negative": ("/denoise", {"sigma": -5}, "Value -5 is less than minimum value 0"),
    "sigma-too-large": ("/denoise", {"sigma": 1000}, "Value 1000 is greater than maximum value 75"),
    "sigma-string": ("/denoise", {"sigma": "abc"},
                     r"“Noise strength \(σ, manual, 0–255 scale\)” must be a number from 0 to 75, not 'abc'"),
    "sigma-null": ("/denoise", {"sigma": None}, "must be a number from 0 to 75, not None"),
    "noise-sigma-list": ("/denoise", {"noise_sigma": [1, 2]}, r"“Strength of the added noise \(σ\)” must be a number"),
    "grow-minus-1e9": ("/inpaint", {"grow": -1e9}, "Value -1000000000.0 is less than minimum value -16"),
    "grow-plus-1e9": ("/inpaint", {"grow": 1e9}, "Value 1000000000.0 is greater than maximum value 48"),
    "grow-string": ("/inpaint", {"grow": "abc"}, "“Cover more around the painting, px” must be a number"),
    "max-side-string": ("/inpaint", {"max_side": "big"}, "“Size the model works at, px” must be a number"),
    "feather-bool": ("/inpaint", {"feather": True}, "“Soften the edge, px” must be a number from 0 to 32, not True"),
}


@pytest.mark.parametrize("case", quick(list(API_NUMBER_CASES), ("sigma-negative", "grow-plus-1e9", "max-side-string")))
def test_api_numbers(case, api, files, tmp_path):
    endpoint, override, error = API_NUMBER_CASES[case]
    if endpoint == "/denoise":
        args = denoise_args(handle_file(str(files["photo"])), **override)
    else:
        layer = layer_file(hole_for((W, H)), tmp_path / "layer.png")
        args = inpaint_args(editor_value(files["photo"], layer), **override)
    api_error(api, error, *args, api_name=endpoint)


def raw_call(api: Api, endpoint: str, body: str) -> str:
    """POST a raw JSON body (which may hold NaN, which gradio_client refuses to send) and read the result stream."""
    name = endpoint.strip("/")
    r = api.http.post(f"{api.url}gradio_api/call/{name}", content=body, headers={"Content-Type": "application/json"})
    r.raise_for_status()
    event = r.json()["event_id"]
    return api.http.get(f"{api.url}gradio_api/call/{name}/{event}").text


@pytest.mark.parametrize("case", ["denoise-sigma", "inpaint-grow", "inpaint-feather-infinity"])
def test_api_nan_numbers(case, api):
    if case == "denoise-sigma":
        body = '{"data": [null, "Manual", NaN, false, 25, "%s", false]}' % NLM_LABEL
        endpoint, what = "/denoise", "Noise strength \\(σ, manual, 0–255 scale\\)"
    elif case == "inpaint-grow":
        body = '{"data": [null, null, NaN, 0, false, "%s", 512, "%s"]}' % (CROP, TELEA_LABEL)
        endpoint, what = "/inpaint", "Cover more"
    else:
        body = '{"data": [null, null, 0, Infinity, false, "%s", 512, "%s"]}' % (CROP, TELEA_LABEL)
        endpoint, what = "/inpaint", "Soften the edge, px"
    stream = raw_call(api, endpoint, body)
    assert "event: error" in stream, stream
    data = json.loads(stream.split("event: error", 1)[1].split("data:", 1)[1].strip().splitlines()[0])
    assert re.search(f"“{what}.*” must be a number", data["error"]), data
    assert_alive(api)


def test_api_nan_is_refused_by_the_client(api, files):
    with pytest.raises(ValueError, match="not JSON compliant"):
        api.client.predict(*denoise_args(handle_file(str(files["photo"])), sigma=float("nan")), api_name="/denoise")
    assert_alive(api)


API_TYPE_CASES = {
    # id: (endpoint, argument overrides, error regex)
    "image-as-string": ("/denoise", {"image": "photo.png"}, "Expected an uploaded image file, not 'photo.png'"),
    "image-as-number": ("/denoise", {"image": 123}, "Expected an uploaded image file, not 123"),
    "image-missing": ("/denoise", {"image": None}, "Upload a photo first"),
    "image-server-path": ("/denoise", {"image": {"path": str(ROOT / "weights" / "denoise-unet-sheet.png")}},
                          "must be a file uploaded to this app; paths on the server are not accepted"),
    "image-traversal-path": ("/denoise", {"image": {"path": "/tmp/gradio/../../etc/passwd"}},
                             "paths on the server are not accepted"),
    "image-url-only": ("/denoise", {"image": {"url": "http://127.0.0.1:9/x.png"}}, "must be uploaded as a file"),
    "mode-not-a-choice": ("/denoise", {"mode": "Loud"}, "Value: 'Loud' .* is not in the list of choices"),
    "model-not-a-choice": ("/denoise", {"model": "bogus"}, "Value: bogus is not in the list of choices"),
    "editor-as-string": ("/inpaint", {"editor": "photo.png"}, "Expected an image editor value .*, not 'photo.png'"),
    "editor-background-string": ("/inpaint", {"editor": {"background": "photo.png", "layers": []}},
                                 "Expected an image editor value"),
    "editor-missing": ("/inpaint", {"editor": None}, "Upload a photo first"),
    "mask-server-path": ("/inpaint", {"mask": {"path": "/etc/passwd"}}, "paths on the server are not accepted"),
    "mask-as-number": ("/inpaint", {"mask": 7}, "Expected an uploaded image file, not 7"),
    "processing-not-a-choice": ("/inpaint", {"processing": "fast"}, "Value: 'fast' .* is not in the list of choices"),
}


@pytest.mark.parametrize("case", quick(list(API_TYPE_CASES), ("image-server-path", "image-traversal-path",
                                                             "mask-server-path", "editor-missing")))
def test_api_wrong_types(case, api, files):
    endpoint, override, error = API_TYPE_CASES[case]
    if endpoint == "/denoise":
        args = denoise_args(**{"image": handle_file(str(files["photo"])), **override})
    else:
        args = inpaint_args(**{"editor": editor_value(files["photo"]), **override})
    api_error(api, error, *args, api_name=endpoint)


# ============================================================================================== isolation
@pytest.mark.parametrize("target", ["etc-passwd", "repo-app-py", "repo-relative", "traversal", "weights"])
def test_server_refuses_files_outside_its_cache(target, api):
    path = {"etc-passwd": "/etc/passwd", "repo-app-py": str(ROOT / "app.py"), "repo-relative": "app.py",
            "traversal": "/tmp/gradio/../../etc/passwd",
            "weights": str(ROOT / "weights" / "denoise-unet.safetensors")}[target]
    r = api.http.get(f"{api.url}gradio_api/file={path}")
    assert r.status_code in (403, 404), r.status_code
    secret = {"etc-passwd": "root:", "traversal": "root:", "repo-app-py": "def build_demo",
              "repo-relative": "def build_demo", "weights": "__metadata__"}[target]
    assert secret not in r.text
    assert_alive(api)


def test_the_server_still_answers_after_every_odd_request(api):
    """Runs after the module's hostile requests (pytest keeps the file's order)."""
    assert_alive(api)


def test_demo_deletes_its_cache(api):
    freq, age = api.demo.delete_cache
    assert 0 < freq <= 86400 and 0 < age <= 86400
