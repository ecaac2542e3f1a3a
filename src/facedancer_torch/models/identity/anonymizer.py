"""Synthetic identities for anonymization: a population model of identity embeddings and a
keyed sampler that moves a person's embedding to someone who does not exist.

The generator is conditioned on an identity encoder's embedding (docs/reference.md §2), so a face is
anonymized by swapping it to an embedding that belongs to nobody. Design (docs/anonymize.md):

1. **Population model.** Identity *directions* (L2-normalised embeddings, one mean direction
   per person) of a face dataset are modelled as a Gaussian: mean ``mean`` and principal axes
   ``components`` with standard deviations ``scales``. Only these aggregate statistics ship,
   never an embedding of an individual (those are biometric templates of real people).
2. **Whitening.** A face's unit embedding ``u`` becomes coordinates ``c = V (u - mean) / scales``
   in which the population is isotropic: every direction of ``c`` is equally typical.
3. **Keyed draw.** A random orthogonal matrix ``R`` made from the seed turns ``c`` into ``R c``:
   same length (so just as typical a face as the person's), nearly orthogonal to ``c`` (as far
   from the person as a random stranger is), a deterministic and continuous function of the
   person (two photos of one person map to two nearby synthetic identities; two people map to
   two different ones).
4. **Strength.** The synthetic coordinates rotate from ``c`` by the angle
   ``strength * max_angle`` in the plane of ``c`` and ``R c``; past 90 degrees they also point
   *away* from the person (towards the "anti-face"), which is what pushes a weak generator's
   output furthest from the original.
5. Back to an embedding: ``mean + V^T (scales * c')``, normalised, times the population's median
   raw norm (the generator is conditioned on raw embeddings, docs/reference.md §2; the pipeline only
   hands the plan unit embeddings).

A population file is an ``.npz`` of plain float arrays and strings (no object arrays, loaded
with ``allow_pickle=False``), tied to the encoder whose embeddings it describes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ModelError

# The shipped population of the default encoder (FaceNet), built from LFW (docs/anonymize.md).
POPULATION_DIR = Path(__file__).resolve().parents[2] / "assets" / "anonymize"
POPULATION_FORMAT = "facedancer-identity-population/1"


def default_population_path(encoder_name: str) -> Path:
    """Where the shipped population of an encoder (by contract name) lives."""
    return POPULATION_DIR / f"{encoder_name.lower()}_population.npz"


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class IdentityPopulation:
    """Gaussian model of identity directions of one encoder.

    Attributes:
        encoder: contract name of the encoder the embeddings come from (e.g. ``facenet``).
        mean: ``(D,)`` mean of the per-person unit directions.
        components: ``(K, D)`` orthonormal principal axes, largest variance first.
        scales: ``(K,)`` standard deviation of the population along each axis.
        norm_median: median raw embedding norm (the generator's conditioning scale).
        identities, images: how many people and photos the statistics come from.
        source: one line saying what data and command built it.
    """

    encoder: str
    mean: np.ndarray
    components: np.ndarray
    scales: np.ndarray
    norm_median: float
    identities: int
    images: int
    source: str = ""

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    # -- building and storing -------------------------------------------------------------
    @classmethod
    def from_embeddings(cls, raw: np.ndarray, labels: np.ndarray, encoder: str,
                        components: int = 128, source: str = "") -> IdentityPopulation:
        """Fit the model to ``(N, D)`` raw embeddings of photos labelled by person ``(N,)``.

        Each person counts once (the mean of their photos' unit directions), so people with
        many photos do not dominate the population.
        """
        raw = np.asarray(raw, dtype=np.float64)
        labels = np.asarray(labels)
        if raw.ndim != 2 or len(raw) != len(labels):
            raise ValueError(f"expected (N, D) embeddings and N labels, got {raw.shape} and "
                             f"{labels.shape}")
        people, inverse = np.unique(labels, return_inverse=True)
        if len(people) < 2:
            raise ValueError("a population needs at least two people")
        units = _unit(raw)
        sums = np.zeros((len(people), raw.shape[1]))
        np.add.at(sums, inverse, units)
        persons = _unit(sums)
        mean = persons.mean(axis=0)
        centred = persons - mean
        _, singular, axes = np.linalg.svd(centred, full_matrices=False)
        k = int(min(components, axes.shape[0], len(people) - 1))
        scales = singular[:k] / math.sqrt(len(people) - 1)
        return cls(encoder=str(encoder), mean=mean.astype(np.float32),
                   components=axes[:k].astype(np.float32), scales=scales.astype(np.float32),
                   norm_median=float(np.median(np.linalg.norm(raw, axis=1))),
                   identities=int(len(people)), images=int(len(raw)), source=str(source))

    def save(self, path: str | Path) -> Path:
        """Write the ``.npz`` atomically (plain arrays only; see module docstring)."""
        from ...io.atomic import atomic_path

        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:  # np.savez on a path would append ".npz"
                np.savez(handle, format=np.array(POPULATION_FORMAT),
                         encoder=np.array(self.encoder), mean=self.mean,
                         components=self.components, scales=self.scales,
                         norm_median=np.float32(self.norm_median),
                         identities=np.int64(self.identities), images=np.int64(self.images),
                         source=np.array(self.source))
        return path

    @classmethod
    def load(cls, path: str | Path) -> IdentityPopulation:
        """Read a population file; :class:`ModelError` naming it if it is not one."""
        path = Path(path)
        if not path.is_file():
            raise ModelError("identity population file does not exist", path)
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != POPULATION_FORMAT:
                    raise ModelError(f"not an identity population file (format "
                                     f"'{data['format']}')", path)
                population = cls(encoder=str(data["encoder"]), mean=data["mean"],
                                 components=data["components"], scales=data["scales"],
                                 norm_median=float(data["norm_median"]),
                                 identities=int(data["identities"]), images=int(data["images"]),
                                 source=str(data["source"]))
        except ModelError:
            raise
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot read the identity population ({exc})", path) from exc
        k, dim = population.components.shape
        if population.mean.shape != (dim,) or population.scales.shape != (k,):
            raise ModelError("identity population arrays do not fit together", path)
        return population

    # -- coordinates ------------------------------------------------------------------------
    def whiten(self, unit: np.ndarray) -> np.ndarray:
        """``(..., D)`` unit directions -> ``(..., K)`` whitened population coordinates."""
        return ((np.asarray(unit, np.float64) - self.mean) @ self.components.T.astype(np.float64)
                ) / self.scales

    def direction(self, coordinates: np.ndarray) -> np.ndarray:
        """``(..., K)`` whitened coordinates -> ``(..., D)`` unit direction."""
        centred = (np.asarray(coordinates, np.float64) * self.scales) @ self.components
        return _unit(self.mean + centred)


def keyed_rotation(dim: int, seed: int) -> np.ndarray:
    """A ``(dim, dim)`` orthogonal matrix drawn uniformly (Haar) from ``seed``.

    QR of a Gaussian matrix with the signs of R's diagonal moved into Q (Mezzadri 2007), so
    that the draw is uniform over rotations and reflections rather than biased.
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xA40])
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


class SyntheticIdentitySampler:
    """Maps a person's unit embedding to a synthetic raw embedding (module docstring).

    Args:
        population: the encoder's :class:`IdentityPopulation`.
        strength: 0 keeps the person, 1 moves them ``max_angle`` degrees away in the
            whitened population space.
        seed: key of the rotation; the same seed maps the same person to the same synthetic
            identity, another seed to another one.
        max_angle: the angle (degrees) reached at strength 1.
    """

    def __init__(self, population: IdentityPopulation, strength: float, seed: int,
                 max_angle: float) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        self.population = population
        self.strength = float(strength)
        self.seed = int(seed)
        self.max_angle = float(max_angle)
        self.rotation = keyed_rotation(population.components.shape[0], seed)

    @property
    def angle(self) -> float:
        """Degrees between the person and the synthetic identity in whitened space."""
        return self.strength * self.max_angle

    def coordinates(self, unit: np.ndarray) -> np.ndarray:
        """Whitened coordinates ``(K,)`` of the synthetic identity for unit embedding ``(D,)``."""
        c = self.population.whiten(unit)
        length = float(np.linalg.norm(c))
        if length < 1e-9:  # the population mean itself: any direction is as far as any other
            c = self.rotation[:, 0]
            length = 1.0
        along = c / length
        rotated = self.rotation @ along
        across = rotated - (rotated @ along) * along
        across /= max(float(np.linalg.norm(across)), 1e-12)
        theta = math.radians(self.angle)
        return length * (math.cos(theta) * along + math.sin(theta) * across)

    def sample(self, unit: np.ndarray) -> np.ndarray:
        """Synthetic raw embedding ``(D,)`` float32 for a face with unit embedding ``(D,)``."""
        direction = self.population.direction(self.coordinates(unit))
        return (direction * self.population.norm_median).astype(np.float32)
