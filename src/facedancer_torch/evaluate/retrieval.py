"""ID retrieval (docs/reference.md §8, "ID retrieval"): nearest identity centre by cosine.

The gallery is one centre per identity: the mean of the L2-normalised embeddings of that
identity's real test images, normalised again. A swap is a top-k hit when its source identity
is among the k centres most similar (cosine) to the swap's embedding. With K identities,
chance level is k / K.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .fid import l2_normalise


def identity_centres(embeddings: np.ndarray,
                     identities: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Names (sorted) and unit-norm centres ``(K, D)`` of ``embeddings (N, D)`` grouped by name."""
    embeddings = l2_normalise(embeddings)
    identities = list(identities)
    if len(identities) != len(embeddings):
        raise ValueError(f"{len(embeddings)} embeddings but {len(identities)} identities")
    names = sorted(set(identities))
    index = {name: i for i, name in enumerate(names)}
    labels = np.array([index[name] for name in identities])
    centres = np.stack([embeddings[labels == i].mean(axis=0) for i in range(len(names))])
    return names, l2_normalise(centres)


def rank_identities(queries: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query ``(M, D)``: centre indices by decreasing cosine ``(M, K)`` and the
    cosine similarities to every centre ``(M, K)`` (in centre order)."""
    similarities = l2_normalise(queries) @ np.asarray(centres, dtype=np.float64).T
    # Stable sort: ties (only for identical centres) resolve by name order, reproducibly.
    order = np.argsort(-similarities, axis=1, kind="stable")
    return order, similarities


def rank_of(order: np.ndarray, names: Sequence[str], truth: Sequence[str]) -> np.ndarray:
    """1-based rank of each true identity in ``order`` (as from :func:`rank_identities`)."""
    index = {name: i for i, name in enumerate(names)}
    true_index = np.array([index[name] for name in truth])
    return 1 + np.argmax(order == true_index[:, None], axis=1)


def top_k_accuracy(ranks: np.ndarray, k: int) -> float:
    """Fraction of ranks ``<= k``."""
    ranks = np.asarray(ranks)
    return float(np.mean(ranks <= k)) if len(ranks) else float("nan")
