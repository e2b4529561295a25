"""Measures of images that evaluation, training and tasks all use: fidelity (PSNR, SSIM) and distribution
distances (sliced Wasserstein over multi-scale patches). Plain numpy / scikit-image; no model code."""
