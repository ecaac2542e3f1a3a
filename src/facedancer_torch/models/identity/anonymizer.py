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
5. **Kept axes.** The embedding also carries the photo's head pose and expression (among real
   people a linear read-out of ``c`` predicts the landmark-measured pitch with R^2 0.8). Pointed
   away from the person, those coordinates ask the generator for another pose and expression.
   So the population also holds ``kept_axes``, a few orthonormal directions of the whitened
   space fitted to predict head pose and expression from the landmarks of the same photos
   (:func:`geometry_axes`); the person's coordinates along them are kept as they are, and steps
   3-4 act only in the rest of the space.
6. Back to an embedding: ``mean + V^T (scales * c')``, normalised, times the population's median
   raw norm (the generator is conditioned on raw embeddings, docs/reference.md §2; the pipeline only
   hands the plan unit embeddings).

A population file is an ``.npz`` of plain float arrays and strings (no object arrays, loaded
with ``allow_pickle=False``), tied to the encoder whose embeddings it describes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ModelError

# The shipped population of the default encoder (FaceNet), built from LFW (docs/anonymize.md).
POPULATION_DIR = Path(__file__).resolve().parents[2] / "assets" / "anonymize"
POPULATION_FORMAT = "facedancer-identity-population/1"
# Expression directions among the kept axes (geometry_axes), next to the two of head pose:
# the fewest that bring the anonymized faces' expression error to that of ordinary swaps on
# the tuning people (docs/anonymize.md).
EXPRESSION_AXES = 4
# Ridge penalty of the landmark read-outs (whitened coordinates have unit variance; a few
# thousand photos).
_RIDGE = 100.0


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
        kept_axes: ``(A, K)`` orthonormal directions of the whitened space that carry head
            pose and expression (:func:`geometry_axes`), kept from the person; ``(0, K)``
            (none) for a population built without landmarks.
    """

    encoder: str
    mean: np.ndarray
    components: np.ndarray
    scales: np.ndarray
    norm_median: float
    identities: int
    images: int
    source: str = ""
    kept_axes: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kept_axes is None:  # frozen: set the "none" default through object
            object.__setattr__(self, "kept_axes",
                               np.zeros((0, self.components.shape[0]), np.float32))

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    # -- building and storing -------------------------------------------------------------
    @classmethod
    def from_embeddings(cls, raw: np.ndarray, labels: np.ndarray, encoder: str,
                        components: int = 128, source: str = "",
                        landmarks: np.ndarray | None = None, crop_size: int = 0,
                        expression_axes: int = EXPRESSION_AXES) -> IdentityPopulation:
        """Fit the model to ``(N, D)`` raw embeddings of photos labelled by person ``(N,)``.

        Each person counts once (the mean of their photos' unit directions), so people with
        many photos do not dominate the population. ``landmarks``: the photos' ``(N, 68, 2)``
        dlib landmarks in aligned crops of ``crop_size`` pixels; with them the population also
        gets its :attr:`kept_axes` (:func:`geometry_axes`), without them none.
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
        population = cls(encoder=str(encoder), mean=mean.astype(np.float32),
                         components=axes[:k].astype(np.float32),
                         scales=scales.astype(np.float32),
                         norm_median=float(np.median(np.linalg.norm(raw, axis=1))),
                         identities=int(len(people)), images=int(len(raw)), source=str(source))
        if landmarks is None:
            return population
        kept = geometry_axes(population.whiten(units), landmarks, crop_size, expression_axes)
        return dataclasses.replace(population, kept_axes=kept.astype(np.float32))

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
                         source=np.array(self.source), kept_axes=self.kept_axes)
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
                                 source=str(data["source"]),
                                 # files written before kept axes existed have none
                                 kept_axes=data["kept_axes"] if "kept_axes" in data.files
                                 else None)
        except ModelError:
            raise
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"cannot read the identity population ({exc})", path) from exc
        k, dim = population.components.shape
        if (population.mean.shape != (dim,) or population.scales.shape != (k,)
                or population.kept_axes.ndim != 2 or population.kept_axes.shape[1] != k):
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


def _ridge(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(K, M)`` ridge coefficients of ``y (N, M)`` on ``x (N, K)``, both centred first."""
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    return np.linalg.solve(x.T @ x + _RIDGE * np.eye(x.shape[1]), x.T @ y)


def geometry_axes(coordinates: np.ndarray, landmarks: np.ndarray, crop_size: int,
                  expression_axes: int = EXPRESSION_AXES) -> np.ndarray:
    """Orthonormal directions ``(2 + expression_axes, K)`` of the whitened space along which
    photos' embeddings predict their head pose and expression.

    ``coordinates``: ``(N, K)`` whitened coordinates of N photos; ``landmarks``: their
    ``(N, 68, 2)`` dlib landmarks in aligned crops of ``crop_size`` pixels. Linear (ridge)
    read-outs of the coordinates predict each photo's yaw and pitch (``evaluate/pose.py``; roll
    is removed by the alignment) and its expression embedding (``evaluate/expression.py``).
    The two pose read-outs are two axes; the expression read-out, with the pose axes projected
    out, contributes its ``expression_axes`` strongest directions (largest singular values:
    the directions along which a step moves the predicted landmarks most). At most ``K - 1``
    axes are returned, so that some direction is always left to anonymize.
    """
    from ...evaluate.expression import expression_embedding
    from ...evaluate.pose import euler_angles_deg, head_rotation

    coordinates = np.asarray(coordinates, np.float64)
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.shape != (len(coordinates), 68, 2):
        raise ValueError(f"expected ({len(coordinates)}, 68, 2) landmarks, got "
                         f"{landmarks.shape}")
    if len(coordinates) < 2:
        raise ValueError("kept axes need landmarks of at least two photos")
    size = (int(crop_size), int(crop_size))
    pose = np.array([euler_angles_deg(head_rotation(points, size))[:2] for points in landmarks])
    pose_axes, _ = np.linalg.qr(_ridge(coordinates, pose))  # (K, 2)
    expression = np.array([expression_embedding(points) for points in landmarks])
    read_out = _ridge(coordinates, expression)
    read_out -= pose_axes @ (pose_axes.T @ read_out)
    strongest = np.linalg.svd(read_out, full_matrices=False)[0][:, :int(expression_axes)]
    axes, _ = np.linalg.qr(np.concatenate([pose_axes, strongest], axis=1))
    # at least one free direction stays, or there would be nothing left to anonymize
    return axes.T[:max(0, min(axes.shape[1], coordinates.shape[1] - 1))]


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

    def _free(self, vector: np.ndarray) -> np.ndarray:
        """``vector`` without its part along the population's kept axes."""
        kept = self.population.kept_axes.astype(np.float64)
        return vector - (vector @ kept.T) @ kept

    def coordinates(self, unit: np.ndarray) -> np.ndarray:
        """Whitened coordinates ``(K,)`` of the synthetic identity for unit embedding ``(D,)``.

        The person's coordinates along the kept axes (pose, expression) stay; the rest turns
        by :attr:`angle` towards the keyed direction.
        """
        c = self.population.whiten(unit)
        free = self._free(c)
        kept = c - free
        length = float(np.linalg.norm(free))
        if length < 1e-9:  # nothing but kept axes: any free direction is as far as any other
            free = self._free(self.rotation[:, 0])
            length = 1.0
        along = free / np.linalg.norm(free)
        rotated = self._free(self.rotation @ along)
        across = rotated - (rotated @ along) * along
        across /= max(float(np.linalg.norm(across)), 1e-12)
        theta = math.radians(self.angle)
        return kept + length * (math.cos(theta) * along + math.sin(theta) * across)

    def sample(self, unit: np.ndarray) -> np.ndarray:
        """Synthetic raw embedding ``(D,)`` float32 for a face with unit embedding ``(D,)``."""
        direction = self.population.direction(self.coordinates(unit))
        return (direction * self.population.norm_median).astype(np.float32)
