"""Distribution distances between swaps and real faces (docs/reference.md §8, "FID").

The standard FID (Heusel et al. 2017) is the Fréchet distance between Gaussians fitted to the
2048-d pool features of a specific TensorFlow Inception-v3 graph. Those weights cannot ship
with this project and a look-alike network would give numbers that are silently not FID, so
:func:`standard_fid` refuses (a clear error) instead of approximating it.

What the evaluation reports instead, labelled **non-standard** everywhere it appears:

- ``FD``: the same Fréchet distance formula on the L2-normalised embeddings of the default
  identity encoder (``||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``);
- ``KID``: the kernel distance of Bińkowski et al. 2018 (unbiased MMD^2, cubic polynomial
  kernel, averaged over random subsets) on the same features. On unit vectors the standard
  kernel ``(x.y / d + 1)^3`` is applied to ``sqrt(d) x``, i.e. ``k = (cos + 1)^3``.

Both depend on the feature extractor and, for FD, strongly on the number of samples (FD is
biased upwards for small sets); compare numbers only for the same encoder and set sizes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import FacedancerError


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    from scipy import linalg  # here: scipy is the optional [eval] extra

    with warnings.catch_warnings():
        # Singular products (fewer samples than dimensions) are handled by the caller.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = linalg.sqrtm(matrix)
    return result[0] if isinstance(result, tuple) else result


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N, D)`` and ``(M, D)``.

    Covariances use the unbiased estimate (``N - 1``), as in the reference FID code. When the
    product of covariances is near singular (fewer samples than dimensions), a small multiple
    of the identity is added before the matrix square root, as pytorch-fid does.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, D) and (M, D), got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least two samples per set")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    sigma_a = np.atleast_2d(np.cov(a, rowvar=False))
    sigma_b = np.atleast_2d(np.cov(b, rowvar=False))
    covmean = _sqrtm(sigma_a @ sigma_b)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma_a.shape[0]) * 1e-6
        covmean = _sqrtm((sigma_a + offset) @ (sigma_b + offset))
    if np.iscomplexobj(covmean):
        # Round-off gives tiny imaginary parts; a large one means the estimate is meaningless.
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"imaginary component {np.max(np.abs(covmean.imag)):.3g} in the "
                             "covariance square root")
        covmean = covmean.real
    diff = mu_a - mu_b
    value = diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def _unbiased_mmd2(x: np.ndarray, y: np.ndarray, kernel) -> float:
    n, m = len(x), len(y)
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    sum_xx = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
    sum_yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(sum_xx + sum_yy - 2.0 * k_xy.mean())


def kernel_distance(features_a: np.ndarray, features_b: np.ndarray, subsets: int = 100,
                    subset_size: int = 1000, seed: int = 0,
                    normalised: bool = True) -> tuple[float, float]:
    """KID: mean and standard deviation over ``subsets`` of the unbiased MMD^2.

    Each subset draws ``min(subset_size, N, M)`` samples without replacement from each set
    (seeded, so the value is reproducible). The kernel is ``(x.y / d + 1)^3``; with
    ``normalised`` the rows are first L2-normalised and scaled by ``sqrt(d)`` (kernel
    ``(cos + 1)^3``).
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, D) and (M, D), got {a.shape} and {b.shape}")
    dim = a.shape[1]
    if normalised:
        a = a / np.linalg.norm(a, axis=1, keepdims=True) * np.sqrt(dim)
        b = b / np.linalg.norm(b, axis=1, keepdims=True) * np.sqrt(dim)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError("the kernel distance needs at least two samples per set")

    def kernel(x, y):
        return (x @ y.T / dim + 1.0) ** 3

    rng = np.random.default_rng(seed)
    values = [_unbiased_mmd2(a[rng.choice(len(a), size, replace=False)],
                             b[rng.choice(len(b), size, replace=False)], kernel)
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def l2_normalise(features: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm."""
    features = np.asarray(features, dtype=np.float64)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def standard_fid(inception_weights: str | Path, *_args, **_kwargs) -> float:
    """Standard Inception FID: not supported; always raises a :class:`FacedancerError`.

    Reproducing FID needs the exact TF-Inception graph (pytorch-fid's ``FIDInceptionA/C/E``
    port and its weight file) and a check against reference values; this project ships
    neither, and an unverified network would report numbers that are not FID.
    """
    raise FacedancerError(
        f"standard Inception FID is not supported by this version ('{inception_weights}' was "
        "not used): the report gives the non-standard FD/KID on identity-encoder features "
        "instead; compute FID with pytorch-fid on the swaps folder the report writes")
