"""Tests for imgen.image_io: colour modes, alpha, EXIF, size limits, broken files, padding, tensors, tiles."""
import io
import struct
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from imgen.image_io import (ImageInputError, array_to_pil, crop_to, join_alpha, load_image, open_image,
                            pad_to_multiple, pil_to_tensor, run_tiled, split_alpha, tensor_to_array, tile_grid)

RNG = np.random.default_rng(0)


def rand_u8(*shape):
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def save_reopen(img: Image.Image, fmt: str, tmp_path, **kw) -> Image.Image:
    """Save to a file and read it back through open_image (the path the app uses)."""
    path = tmp_path / f"img.{fmt.lower()}"
    img.save(path, fmt, **kw)
    return open_image(path)


def arr(img):
    return np.asarray(img)


# ------------------------------------------------------------------------------------------ colour modes
def test_mode_1(tmp_path):
    bits = RNG.random((7, 9)) > 0.5
    img = Image.fromarray(bits)
    assert img.mode == "1"
    for im in (img, save_reopen(img, "PNG", tmp_path)):
        base, alpha = split_alpha(im)
        assert base.mode == "L" and alpha is None
        np.testing.assert_array_equal(arr(base), np.where(bits, 255, 0))


def test_mode_L(tmp_path):
    a = rand_u8(13, 17)
    img = save_reopen(Image.fromarray(a, "L"), "PNG", tmp_path)
    base, alpha = split_alpha(img)
    assert base.mode == "L" and alpha is None
    np.testing.assert_array_equal(arr(base), a)
    np.testing.assert_array_equal(arr(join_alpha(base, alpha)), a)


def test_mode_LA(tmp_path):
    a = rand_u8(13, 17, 2)
    img = save_reopen(Image.fromarray(a, "LA"), "PNG", tmp_path)
    assert img.mode == "LA"
    base, alpha = split_alpha(img)
    assert base.mode == "L" and alpha.mode == "L"
    np.testing.assert_array_equal(arr(base), a[..., 0])
    np.testing.assert_array_equal(arr(alpha), a[..., 1])
    joined = join_alpha(base, alpha)
    assert joined.mode == "LA"
    np.testing.assert_array_equal(arr(joined), a)


def _palette_image(h=6, w=10, n=8):
    idx = RNG.integers(0, n, (h, w), dtype=np.uint8)
    pal = rand_u8(n, 3)
    img = Image.fromarray(idx, "P")
    img.putpalette(pal.ravel().tolist())
    return img, idx, pal


def test_mode_P_opaque(tmp_path):
    img, idx, pal = _palette_image()
    for im in (img, save_reopen(img, "PNG", tmp_path)):
        assert im.mode == "P"
        base, alpha = split_alpha(im)
        assert base.mode == "RGB" and alpha is None
        np.testing.assert_array_equal(arr(base), pal[idx])


def test_mode_P_transparency_index(tmp_path):
    img, idx, pal = _palette_image()
    img.info["transparency"] = 3
    want_alpha = np.where(idx == 3, 0, 255)
    reopened = save_reopen(img, "PNG", tmp_path)  # written as a tRNS chunk
    assert reopened.mode == "P" and reopened.info.get("transparency") is not None
    for im in (img, reopened):
        base, alpha = split_alpha(im)
        assert base.mode == "RGB" and alpha is not None
        np.testing.assert_array_equal(arr(alpha), want_alpha)
        np.testing.assert_array_equal(arr(base), pal[idx])


def test_mode_P_trns_partial_alpha(tmp_path):
    img, idx, pal = _palette_image()
    table = bytes([0, 40, 80, 120, 160, 200, 240, 255])  # one alpha per palette entry
    img.info["transparency"] = table
    reopened = save_reopen(img, "PNG", tmp_path)
    for im in (img, reopened):
        base, alpha = split_alpha(im)
        np.testing.assert_array_equal(arr(alpha), np.frombuffer(table, np.uint8)[idx])
        np.testing.assert_array_equal(arr(base), pal[idx])


def test_L_and_RGB_with_trns_colour_key(tmp_path):
    g = rand_u8(5, 6)
    g[0, 0] = 7
    img = Image.fromarray(g, "L")
    img.info["transparency"] = 7
    base, alpha = split_alpha(save_reopen(img, "PNG", tmp_path))
    assert base.mode == "L"
    np.testing.assert_array_equal(arr(alpha), np.where(g == 7, 0, 255))
    c = rand_u8(5, 6, 3)
    c[1, 1] = (1, 2, 3)
    img = Image.fromarray(c, "RGB")
    img.info["transparency"] = (1, 2, 3)
    base, alpha = split_alpha(save_reopen(img, "PNG", tmp_path))
    assert base.mode == "RGB"
    np.testing.assert_array_equal(arr(alpha), np.where((c == (1, 2, 3)).all(-1), 0, 255))
    np.testing.assert_array_equal(arr(base), c)


def test_mode_RGB(tmp_path):
    a = rand_u8(11, 9, 3)
    img = save_reopen(Image.fromarray(a, "RGB"), "PNG", tmp_path)
    base, alpha = split_alpha(img)
    assert base.mode == "RGB" and alpha is None
    np.testing.assert_array_equal(arr(base), a)


def test_mode_RGBA_bit_exact(tmp_path):
    a = rand_u8(11, 9, 4)
    a[0, 0, 3] = 0  # fully transparent pixels keep their colour
    src = Image.fromarray(a, "RGBA")
    for im in (src, save_reopen(src, "PNG", tmp_path)):
        base, alpha = split_alpha(im)
        assert base.mode == "RGB" and alpha.mode == "L"
        np.testing.assert_array_equal(arr(base), a[..., :3])
        np.testing.assert_array_equal(arr(alpha), a[..., 3])
        joined = join_alpha(base, alpha)
        assert joined.mode == "RGBA"
        np.testing.assert_array_equal(arr(joined), a)


def test_premultiplied_and_PA_and_other_colour_spaces():
    base, alpha = split_alpha(Image.new("RGBa", (2, 2), (50, 50, 50, 128)))
    assert base.mode == "RGB" and arr(alpha)[0, 0] == 128
    assert abs(int(arr(base)[0, 0, 0]) - 100) <= 1  # un-premultiplied
    base, alpha = split_alpha(Image.new("La", (2, 2), (50, 128)))
    assert base.mode == "L" and arr(alpha)[0, 0] == 128
    pa = Image.new("PA", (2, 2))
    pa.putpalette([10, 20, 30] * 256)
    base, alpha = split_alpha(pa)
    assert base.mode == "RGB" and alpha is not None
    for mode in ("YCbCr", "HSV", "LAB"):
        base, alpha = split_alpha(Image.new(mode, (3, 2)))
        assert base.mode == "RGB" and base.size == (3, 2) and alpha is None


def test_mode_CMYK_jpeg(tmp_path):
    yy, xx = np.mgrid[0:32, 0:48]
    rgb = np.stack([xx * 5, yy * 7, 255 - xx * 5], -1).astype(np.uint8)  # smooth: small JPEG error
    cmyk = Image.fromarray(rgb, "RGB").convert("CMYK")
    img = save_reopen(cmyk, "JPEG", tmp_path, quality=100)
    assert img.mode == "CMYK"
    base, alpha = split_alpha(img)
    assert base.mode == "RGB" and alpha is None and base.size == (48, 32)
    assert np.abs(arr(base).astype(int) - rgb).mean() < 2.0


def test_mode_I16_png(tmp_path):
    a = np.array([[0, 257, 32768, 65535], [1000, 128, 129, 65279]], np.uint16)
    img = save_reopen(Image.fromarray(a), "PNG", tmp_path)
    assert img.mode.startswith("I;16")
    base, alpha = split_alpha(img)
    assert base.mode == "L" and alpha is None
    np.testing.assert_array_equal(arr(base), [[0, 1, 128, 255], [4, 0, 1, 254]])
    np.testing.assert_array_equal(arr(base), np.rint(a * 255.0 / 65535.0))  # proportional


def test_mode_I32_tiff(tmp_path):
    small = np.array([[0, 7, 200, 255]], np.int32)  # 8-bit data in a 32-bit container: as is
    img = save_reopen(Image.fromarray(small), "TIFF", tmp_path)
    assert img.mode == "I"
    np.testing.assert_array_equal(arr(split_alpha(img)[0]), small)
    sixteen = np.array([[0, 257, 32768, 65535]], np.int32)  # 16-bit range
    np.testing.assert_array_equal(arr(split_alpha(Image.fromarray(sixteen))[0]), [[0, 1, 128, 255]])
    wide = np.array([[-1000, 0, 99000, 200000]], np.int32)  # anything else: its value range
    base = arr(split_alpha(save_reopen(Image.fromarray(wide), "TIFF", tmp_path))[0])
    np.testing.assert_array_equal(base, np.rint((wide + 1000) / 201000 * 255))


def test_mode_F_tiff(tmp_path):
    unit = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
    img = save_reopen(Image.fromarray(unit), "TIFF", tmp_path)
    assert img.mode == "F"
    base, alpha = split_alpha(img)
    assert base.mode == "L" and alpha is None
    np.testing.assert_array_equal(arr(base), [[0, 64, 128, 255]])
    eight = np.array([[0.0, 12.4, 200.0, 255.0]], np.float32)
    np.testing.assert_array_equal(arr(split_alpha(Image.fromarray(eight))[0]), [[0, 12, 200, 255]])
    odd = np.array([[-1.0, 0.0, np.nan, 3.0]], np.float32)
    np.testing.assert_array_equal(arr(split_alpha(Image.fromarray(odd))[0]), [[0, 64, 0, 255]])


def test_load_image_composites_alpha_on_white():
    a = np.zeros((2, 2, 4), np.uint8)
    a[0, 0] = (10, 20, 30, 255)
    img = Image.fromarray(a, "RGBA")
    rgb = arr(load_image(img, mode="RGB"))
    assert tuple(rgb[0, 0]) == (10, 20, 30) and tuple(rgb[1, 1]) == (255, 255, 255)
    assert load_image(img).mode == "RGBA"
    assert load_image(img, mode="L").mode == "L"


def test_array_to_pil():
    assert array_to_pil(rand_u8(3, 4)).mode == "L"
    assert array_to_pil(rand_u8(3, 4, 1)).mode == "L"
    assert array_to_pil(rand_u8(3, 4, 2)).mode == "LA"
    assert array_to_pil(rand_u8(3, 4, 4)).mode == "RGBA"
    assert array_to_pil(np.full((3, 4), 65535, np.uint16)).mode == "I;16"
    np.testing.assert_array_equal(arr(array_to_pil(np.full((2, 2, 3), 65535, np.uint16))), 255)
    np.testing.assert_array_equal(arr(array_to_pil(np.full((2, 2, 3), 0.5))), 128)
    for bad in (np.zeros(5), np.zeros((3, 4, 5)), np.zeros((0, 4))):
        with pytest.raises(ImageInputError):
            open_image(bad)


# ------------------------------------------------------------------------------------------------- EXIF
def test_exif_orientation_rotates(tmp_path):
    w, h = 64, 32
    a = np.full((h, w, 3), 128, np.uint8)
    a[:8, :8] = (255, 0, 0)  # red block at the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rot.jpg"
    Image.fromarray(a).save(path, "JPEG", exif=exif.tobytes(), quality=95)
    img = open_image(path)
    assert img.size == (h, w)  # transposed
    out = arr(img.convert("RGB")).astype(int)
    assert out[2, h - 3, 0] > 200 and out[2, h - 3, 1] < 60  # top-left went to the top-right
    assert abs(out[2, 2, 0] - 128) < 20  # the top-left is the gray background now
    assert img.getexif().get(0x0112, 1) == 1


# ------------------------------------------------------------------------------------------ size limits
def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a tiny (wrong) image data chunk."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")


def test_pixel_limit_env(monkeypatch, tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(rand_u8(40, 40)).save(path)
    monkeypatch.setenv("IMGEN_MAX_PIXELS", "1000")
    with pytest.raises(ImageInputError, match="megapixels"):
        open_image(path)
    with pytest.raises(ImageInputError, match="megapixels"):
        load_image(path.read_bytes(), mode="RGB")
    with Image.open(path) as lazy:
        with pytest.raises(ImageInputError, match="megapixels"):
            open_image(lazy)
        assert lazy.tile  # refused before decoding: the decoder tiles are still pending
    monkeypatch.setenv("IMGEN_MAX_PIXELS", "1600")
    assert open_image(path).size == (40, 40)
    with pytest.raises(ImageInputError, match="megapixels"):
        open_image(path, limit=1599)


@pytest.fixture
def decodes(monkeypatch) -> list:
    """Records every pixel decode (Pillow's ImageFile.load), to show a refusal came before one."""
    from PIL import ImageFile
    calls, load = [], ImageFile.ImageFile.load

    def counting_load(self, *a, **k):
        calls.append(self.size)
        return load(self, *a, **k)
    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    return calls


def test_size_checked_before_decoding(decodes):
    # 48 MP declared (over the default 40 MP limit) with garbage pixel data: the size is refused first
    with pytest.raises(ImageInputError, match="megapixels"):
        open_image(_png_header_only(8000, 6000))
    assert decodes == []


def test_decompression_bomb_refused_before_decoding(decodes):
    with pytest.raises(ImageInputError, match="too large to open safely"):
        open_image(_png_header_only(20000, 20000), limit=10**12)
    with pytest.raises(ImageInputError):
        open_image(_png_header_only(20000, 20000))
    assert decodes == []


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pillow_bomb_limit_respected(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for side in (40, 50):  # 1600 px: Pillow only warns; 2500 px: Pillow raises. Both refused.
        b = io.BytesIO()
        Image.fromarray(rand_u8(side, side)).save(b, "PNG")
        with pytest.raises(ImageInputError, match="too large to open safely"):
            open_image(b.getvalue())


# ---------------------------------------------------------------------------------------- broken inputs
def _png_bytes():
    b = io.BytesIO()
    Image.fromarray(rand_u8(48, 64, 3)).save(b, "PNG")
    return b.getvalue()


def _jpeg_bytes():
    b = io.BytesIO()
    Image.fromarray(rand_u8(48, 64, 3)).save(b, "JPEG")
    return b.getvalue()


@pytest.mark.parametrize("case", ["truncated_png", "truncated_jpeg", "zero_file", "zero_bytes", "text_as_png",
                                  "missing", "folder", "header_only_png", "not_an_image_type", "bad_name"])
def test_broken_inputs_raise_image_input_error(case, tmp_path):
    p = tmp_path / "x.png"
    if case == "truncated_png":
        p.write_bytes(_png_bytes()[:2000])
        src = p
    elif case == "truncated_jpeg":
        src = _jpeg_bytes()[:1500]
    elif case == "zero_file":
        p.write_bytes(b"")
        src = str(p)
    elif case == "zero_bytes":
        src = b""
    elif case == "text_as_png":
        p.write_text("this is not a picture\n" * 20)
        src = p
    elif case == "missing":
        src = tmp_path / "nope.png"
    elif case == "folder":
        src = tmp_path
    elif case == "header_only_png":
        src = _png_header_only(64, 64)
    elif case == "bad_name":
        src = str(tmp_path / "a\0b.png")
    else:
        src = 12345
    with pytest.raises(ImageInputError) as e:
        open_image(src)
    msg = str(e.value)
    assert msg and "<_io." not in msg and "Traceback" not in msg
    if case in ("truncated_png", "truncated_jpeg", "text_as_png", "header_only_png"):
        assert "not a readable image" in msg
    if case in ("zero_file", "zero_bytes"):
        assert "empty" in msg
    if case == "missing":
        assert "not found" in msg


def test_corrupted_bytes_never_raise_other_errors():
    rng = np.random.default_rng(1)
    for data in (_png_bytes(), _jpeg_bytes()):
        for _ in range(25):
            d = bytearray(data)
            for pos in rng.integers(0, len(d), 3):
                d[pos] = rng.integers(256)
            try:
                split_alpha(open_image(bytes(d)))
            except ImageInputError:
                pass


def test_file_object_and_bytes_sources(tmp_path):
    data = _png_bytes()
    p = tmp_path / "cut.png"
    p.write_bytes(data[:2000])
    with Image.open(p) as lazy:  # a lazily opened, truncated PIL image
        with pytest.raises(ImageInputError):
            open_image(lazy)
    assert open_image(data).size == (64, 48)
    assert open_image(bytearray(data)).size == (64, 48)
    assert open_image(io.BytesIO(data)).size == (64, 48)


# --------------------------------------------------------------------------------------- animated images
def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (20, 10), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 3
    img = open_image(path)
    assert img.size == (20, 10)
    assert getattr(img, "fp", None) is None  # loaded and detached from the file
    base, _ = split_alpha(img)
    assert tuple(arr(base)[5, 5]) == (255, 0, 0)


# --------------------------------------------------------------------------------------------- padding
@pytest.mark.parametrize("hw", [(1, 1), (1, 2000), (2000, 1), (5, 40), (40, 5), (16, 3), (20, 40), (16, 32), (17, 33)])
def test_pad_and_crop_round_trip(hw):
    x = torch.rand(1, 3, *hw)
    y, size = pad_to_multiple(x, 16)
    assert size == hw
    assert y.shape[-2] % 16 == 0 and y.shape[-1] % 16 == 0
    assert y.shape[-2] - hw[0] < 16 and y.shape[-1] - hw[1] < 16
    assert torch.isfinite(y).all() and y.min() >= x.min() and y.max() <= x.max()
    assert torch.equal(crop_to(y, size), x)
    if hw == (20, 40):  # reflect padding where it is possible
        assert torch.equal(y[..., 20, :40], x[..., 18, :])
    for mode in ("replicate", "constant"):
        z, s = pad_to_multiple(x, 16, mode)
        assert torch.equal(crop_to(z, s), x)


# --------------------------------------------------------------------------------------------- tensors
@pytest.mark.parametrize("mode,shape", [("RGB", (23, 31, 3)), ("L", (23, 31))])
def test_tensor_round_trip_exact(mode, shape):
    a = rand_u8(*shape)
    a.flat[:256] = np.arange(256)  # every 8-bit value
    t = pil_to_tensor(Image.fromarray(a, mode))
    assert t.shape == (1, 3 if mode == "RGB" else 1, 23, 31) and t.dtype == torch.float32
    assert 0 <= t.min() and t.max() <= 1
    np.testing.assert_array_equal(tensor_to_array(t), a)
    np.testing.assert_array_equal(tensor_to_array(t[0]), a)


def test_pil_to_tensor_converts_other_modes():
    img, idx, pal = _palette_image()
    t = pil_to_tensor(img)  # palette indices must not leak through as values
    assert t.shape[1] == 3
    np.testing.assert_array_equal(tensor_to_array(t), pal[idx])
    i16 = Image.fromarray(np.full((2, 3), 65535, np.uint16))
    np.testing.assert_array_equal(tensor_to_array(pil_to_tensor(i16)), 255)
    assert tensor_to_array(torch.full((1, 1, 2, 2), float("nan"))).max() == 0


# ------------------------------------------------------------------------------------------------ tiles
@pytest.mark.parametrize("h,w,tile,overlap,align", [(300, 517, 128, 16, 1), (300, 517, 128, 16, 16),
                                                    (128, 128, 128, 16, 16), (129, 1, 64, 8, 1), (1, 129, 64, 8, 8),
                                                    (1000, 257, 256, 32, 16), (50, 70, 17, 16, 1)])
def test_tile_grid_covers_every_pixel(h, w, tile, overlap, align):
    tiles = tile_grid(h, w, tile, overlap, align)
    cover = np.zeros((h, w), int)
    for t in tiles:
        assert 0 <= t.y0 < t.y1 <= h and 0 <= t.x0 < t.x1 <= w
        assert t.y0 % align == 0 and t.x0 % align == 0
        assert min(tile, h) - align < t.y1 - t.y0 <= min(tile, h)
        assert min(tile, w) - align < t.x1 - t.x0 <= min(tile, w)
        cover[t.y0:t.y1, t.x0:t.x1] += 1
    assert cover.min() >= 1
    for starts, ends in ((sorted({t.y0 for t in tiles}), sorted({t.y1 for t in tiles})),
                         (sorted({t.x0 for t in tiles}), sorted({t.x1 for t in tiles}))):
        assert all(e - s >= overlap for s, e in zip(starts[1:], ends[:-1]))  # neighbours overlap enough
    if align == 1:  # unaligned: every tile has the full size
        assert {(t.y1 - t.y0, t.x1 - t.x0) for t in tiles} == {(min(tile, h), min(tile, w))}


def test_tile_grid_rejects_bad_overlap():
    for tile, overlap, align in ((16, 16, 1), (16, 20, 1), (0, 0, 1), (16, -1, 1), (32, 20, 16), (32, 0, 0)):
        with pytest.raises(ValueError):
            tile_grid(100, 100, tile, overlap, align)


def test_run_tiled_identity_and_progress():
    x = torch.rand(1, 3, 300, 517)
    calls = []
    y = run_tiled(lambda t: t, x, tile=128, overlap=16, progress=lambda d, n: calls.append((d, n)))
    assert y.shape == x.shape
    assert (y - x).abs().max() < 1e-6
    n = len(tile_grid(300, 517, 128, 16, align=16))
    assert calls == [(i + 1, n) for i in range(n)] and n > 1
    calls.clear()
    assert torch.equal(run_tiled(lambda t: t, x[..., :100, :100], 128, 16, lambda d, n: calls.append((d, n))),
                       x[..., :100, :100])
    assert calls == [(1, 1)]


def _box_blur(radius: int):
    k = torch.ones(3, 1, 2 * radius + 1, 2 * radius + 1) / (2 * radius + 1) ** 2
    return lambda t: F.conv2d(t, k, padding=radius, groups=3)


def test_run_tiled_local_op_is_exact():
    # A local op with receptive-field radius r <= overlap // 4 (here 16 // 4 = 4): tiles get zero weight
    # within overlap // 4 px of their inner edges, so the blend equals the whole-image result everywhere
    # (including the image border, where tile and whole image see the same zero padding).
    x = torch.rand(1, 3, 300, 517)
    for radius in (1, 4):
        fn = _box_blur(radius)
        assert (run_tiled(fn, x, tile=128, overlap=16) - fn(x)).abs().max() < 1e-5
    # Beyond overlap // 4 it is only approximate (tile-edge effects get blended in).
    fn = _box_blur(6)
    err = (run_tiled(fn, x, tile=128, overlap=16) - fn(x)).abs()
    assert err.max() > 1e-4 and err.mean() < 1e-3


def _strided(k: int):
    """A network-like op that works on a k-times coarser grid (pads to a multiple of k, pools, upsamples)."""
    def fn(t):
        p, size = pad_to_multiple(t, k, "replicate")
        return crop_to(F.interpolate(F.avg_pool2d(p, k), scale_factor=k, mode="nearest"), size)
    return fn


def test_run_tiled_strided_op_needs_aligned_tiles():
    # Tile offsets on the op's grid (multiples of align, 16 by default) keep a strided op exact, including
    # the last tiles, which get the same border padding as the whole image; unaligned offsets do not.
    x = torch.rand(1, 3, 300, 517)
    fn = _strided(4)
    assert (run_tiled(fn, x, tile=128, overlap=16) - fn(x)).abs().max() < 1e-5
    assert (run_tiled(fn, x, tile=128, overlap=16, align=4) - fn(x)).abs().max() < 1e-5
    assert (run_tiled(fn, x, tile=128, overlap=16, align=1) - fn(x)).abs().max() > 1e-2


def test_run_tiled_batch_and_channels():
    x = torch.rand(2, 3, 70, 90)
    y = run_tiled(lambda t: t.mean(1, keepdim=True), x, tile=32, overlap=8)
    assert y.shape == (2, 1, 70, 90)
    assert (y - x.mean(1, keepdim=True)).abs().max() < 1e-6
