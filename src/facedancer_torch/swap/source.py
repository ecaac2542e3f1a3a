"""Source identities: detect the face in each source photo, align, embed once per job.

docs/reference.md §7, step 1: the source face is detected, aligned to the identity
encoder's template and embedded once. Several photos of one person are averaged, which users
of face swappers report to give a better likeness than any single photo.

Raw versus normalised embeddings: the generator is conditioned on the encoder's **raw**
embedding (section 2: ArcFace's output is not L2-normalised, and its norm carries information
the generator was trained with). Averaging raw vectors would let one photo with a large norm
dominate, so we average the *directions* (L2-normalised embeddings), renormalise the mean to
unit length, and give it back the mean raw norm of the photos. With one photo this is exactly
that photo's raw embedding; with an encoder whose contract says its output is already
normalised the norm is 1 and nothing changes. Distances between people (``--reference``,
``--map``) always use the unit directions.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..faces.align import align_face, transform_points
from ..faces.detect import Face, largest_face
from ..io.images import read_image
from .exposure import apply_gain, face_gain

# Fallback when the identity encoder declares no verification threshold: ArcFace-like
# encoders put the same person around 0.3-0.5 and different people around 0.8-1.0.
DEFAULT_THRESHOLD: float = 0.6


def same_person_threshold(encoder) -> float:
    """Cosine distance below which two faces are one person: the encoder's own verification
    threshold, else :data:`DEFAULT_THRESHOLD` (--reference / --map decisions, and the check
    that several source photos show one person)."""
    return float(getattr(getattr(encoder, "contract", None), "verification_threshold", None)
                 or DEFAULT_THRESHOLD)


@dataclass(frozen=True)
class Identity:
    """One person as the generator and the face selector see them.

    Attributes:
        embedding: ``(D,)`` float32, raw scale (what the generator is conditioned on).
        unit: ``(D,)`` float32, L2-normalised direction (for cosine distances).
        files: names of the photos it was made from (for messages and metadata).
        notes: what the user should know about how it was made (a group photo's face
            chosen by size), one line each, naming the photo by its file name.
    """

    embedding: np.ndarray
    unit: np.ndarray
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return "+".join(Path(f).name for f in self.files) or "<array>"


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def average_embeddings(raw: np.ndarray, files: Sequence[str] = ()) -> Identity:
    """Average ``(N, D)`` raw embeddings of one person into an :class:`Identity`.

    Mean of the unit directions, renormalised, scaled by the mean raw norm (module docstring).
    """
    raw = np.asarray(raw, dtype=np.float32).reshape(-1, raw.shape[-1])
    norms = np.linalg.norm(raw, axis=1)
    direction = _unit(_unit(raw).mean(axis=0))
    embedding = (direction * float(norms.mean())).astype(np.float32)
    return Identity(embedding=embedding, unit=direction.astype(np.float32), files=tuple(files))


def encoder_crops(image: np.ndarray, landmarks: Sequence[np.ndarray], encoder) -> torch.Tensor:
    """Align faces of one RGB image to the identity encoder's contract.

    Returns ``(N, 3, S, S)`` float32 in ``[-1, 1]`` (S = the encoder's input size), the
    layout :meth:`embed` of every identity encoder takes.
    """
    size, shrink = _encoder_alignment(encoder)
    crops = []
    for lm in landmarks:
        lm = np.asarray(lm, dtype=np.float32)
        # Antialiased, as the generator's crops: a large source face sampled bilinearly at the
        # encoder's 112-160 px gives an embedding of its aliased texture.
        crop, matrix = align_face(image, lm, size, shrink_factor=shrink, antialias=True)
        # A dark face at the brightness of a lit one, as the generator sees it (exposure.py):
        # two photos at a third of their exposure gave embeddings at cosine 0.90 / 0.94 to
        # the photos' own, 0.97 / 0.98 brightened (docs/swap.md "Dark faces").
        crops.append(apply_gain(crop, face_gain(crop, transform_points(lm, matrix))))
    if not crops:
        return torch.zeros((0, 3, size, size))
    batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    return batch / 127.5 - 1.0


def _encoder_alignment(encoder) -> tuple[int, float]:
    contract = encoder.contract
    return int(contract.input_size), float(getattr(contract, "shrink_factor", 1.0))


@torch.no_grad()
def embed_faces(image: np.ndarray, landmarks: Sequence[np.ndarray], encoder) -> np.ndarray:
    """Raw identity embeddings ``(N, D)`` float32 of the faces of one image (any N >= 0)."""
    batch = encoder_crops(image, landmarks, encoder)
    if batch.shape[0] == 0:
        return np.zeros((0, int(encoder.contract.embedding_dim)), dtype=np.float32)
    _, shrink = _encoder_alignment(encoder)
    device = next((p.device for p in encoder.parameters()), torch.device("cpu")) \
        if isinstance(encoder, torch.nn.Module) else torch.device("cpu")
    z = encoder.embed(batch.to(device), crop_shrink=shrink)
    return z.float().cpu().numpy()


def steer_identity(source: np.ndarray, targets: np.ndarray, strength: float) -> np.ndarray:
    """Source identities pushed away from the faces they replace: ``(N, D)`` raw embeddings.

    ``source`` is the raw ``(D,)`` or ``(N, D)`` source embedding, ``targets`` the ``(N, D)``
    embeddings (raw or unit) of the target faces. The direction becomes
    ``u_s + strength * (u_s - u_t)`` on unit vectors, renormalised, with the source's raw norm
    given back, so the generator sees an embedding of the usual scale. ``strength`` 0 returns
    the source unchanged (the reference); FaceFusion's "face swapper weight" 1.0 is the same
    construction with 0.35. Why it helps: the generator keeps some of the target's identity
    in what it paints, and compositing keeps more of the target (its finest detail, what
    covers the face, closed eyes), so the swap lands between the two people; stepping past
    the source along the line from the target makes up for that pull (docs/swap.md).
    """
    targets = np.asarray(targets, dtype=np.float32).reshape(-1, np.shape(source)[-1])
    source = np.broadcast_to(np.asarray(source, dtype=np.float32), targets.shape)
    if strength == 0 or len(targets) == 0:
        return np.array(source, dtype=np.float32)
    u_s, u_t = _unit(source), _unit(targets)
    direction = _unit(u_s + strength * (u_s - u_t))
    return (direction * np.linalg.norm(source, axis=1, keepdims=True)).astype(np.float32)


# Another face whose box side is at least this fraction of the largest face's makes the choice
# of the largest one a guess (a group photo, two people framed alike), not a bystander beside
# the person meant: the user is told which face was taken.
RIVAL_FACE_SIDE: float = 0.7


def rival_faces(faces: Sequence[Face], chosen: Face) -> int:
    """How many faces other than ``chosen`` are nearly as large (:data:`RIVAL_FACE_SIDE`)."""
    side = float(np.sqrt(max(chosen.area, 1e-6)))
    return sum(1 for face in faces if face is not chosen
               and float(np.sqrt(max(face.area, 0.0))) >= RIVAL_FACE_SIDE * side)


def split_face_choice(photo: str | Path | np.ndarray) -> tuple[str | Path | np.ndarray,
                                                                 int | None]:
    """A photo given as ``PHOTO@N`` (``N`` >= 0, digits): ``(PHOTO, N)``, the ``N``-th face from
    the left of a group photo; anything else (an array, a name without the suffix, a file that
    exists under the whole name) is ``(photo, None)``: its largest face."""
    if isinstance(photo, np.ndarray):
        return photo, None
    text = str(photo)
    base, sep, number = text.rpartition("@")
    if not sep or not base or not number.isdigit() or Path(text).exists():
        return photo, None
    return (Path(base) if isinstance(photo, Path) else base), int(number)


def left_to_right(faces: Sequence[Face]) -> list[Face]:
    """Faces by their box centres, left to right: how a person names "the second one" (the
    ``PHOTO@N`` of :func:`split_face_choice`; the web UI's people picker shows them so)."""
    return sorted(faces, key=lambda f: float(f.box[0] + f.box[2]))


def source_face(faces: Sequence[Face], choice: int | None = None, role: str = "source",
                path: Path | None = None) -> Face:
    """The face a source photo stands for: the ``choice``-th from the left
    (:func:`split_face_choice`), or the largest when ``choice`` is None. An out-of-range
    ``choice`` raises :class:`InputError` naming ``path`` (``role`` words it). ``faces`` must
    not be empty. Whatever measures a swap against its source (benchmarks/quality.py) takes
    the same face as the swap did."""
    if choice is None:
        return largest_face(faces)
    if not 1 <= choice <= len(faces):
        raise InputError(f"@{choice} asks for face {choice} from the left, but the "
                         f"{role} image has {len(faces)} face(s)", path)
    return left_to_right(faces)[choice - 1]


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def odd_photo(units: np.ndarray) -> tuple[int, float] | None:
    """The photo farthest from the others, and its cosine distance to them: for two photos
    their distance, for more each photo's distance to the others' mean direction (one odd
    photo among several of one person stands out; the mean of the rest stays theirs)."""
    units = np.asarray(units, dtype=np.float64)
    if len(units) < 2:
        return None
    if len(units) == 2:
        return 1, 1.0 - float(units[0] @ units[1])
    total = units.sum(axis=0)
    distances = [1.0 - float(u @ _unit(total - u)) for u in units]
    index = int(np.argmax(distances))
    return index, distances[index]


def mixed_people_note(names: Sequence[str], units: np.ndarray, threshold: float,
                      role: str = "source") -> str | None:
    """A warning's words when several photos of one person (``--source``, ``--reference``)
    look like different people: their identities would be averaged into a face of neither.
    Measured with FaceNet: photos of one person are within 0.45 of each other on the 38 same
    pairs of the shared photos (LFW: 6 of the 300 same pairs of pairs.txt's first fold
    beyond 0.6), different people 0.54 or more (96 % beyond 0.6); docs/swap.md "Source photos"."""
    odd = odd_photo(units)
    if odd is None or odd[1] <= threshold:
        return None
    index, distance = odd
    names = [Path(n).name for n in names]
    if len(names) == 2:
        who = f"{names[0]} and {names[1]} look like different people"
    else:
        who = f"{names[index]} looks like another person than the other {role} photos"
    return (f"{who} (identity distance {distance:.2f}; photos of one person are within "
            f"{threshold:.2f}): their identities are averaged into one face, which may look "
            f"like neither; give {role} photos of one person")


def load_identity(photos: Sequence[str | Path | np.ndarray], detector, encoder,
                  role: str = "source") -> Identity:
    """Detect the main face of each photo, embed it and average them into one :class:`Identity`.

    The main face is the largest one (a source photo may show bystanders; the person meant
    is the one framed biggest). ``role`` only words the error: a photo without a face raises
    :class:`InputError` naming the file ("no face found in the source image"). When other
    faces in the photo are nearly as large (:func:`rival_faces`), a warning says which face
    was taken, since the largest of a group photo may not be the person meant (and the
    identity's ``notes`` keep it, for the web UI). ``PHOTO@N`` takes the ``N``-th face from
    the left instead (:func:`split_face_choice`).
    """
    if not photos:
        raise InputError(f"no {role} image given")
    raws, files, notes = [], [], []
    for photo in photos:
        photo, choice = split_face_choice(photo)
        if isinstance(photo, np.ndarray):
            image, name, path = photo, "<array>", None
        else:
            path = Path(photo)
            image, name = read_image(path), str(path)
        faces = detector.detect(image)
        if not faces:
            raise InputError(f"no face found in the {role} image", path)
        face = source_face(faces, choice, role, path)
        if choice is None:
            rivals = rival_faces(faces, face)
            if rivals:
                x0, y0, x1, y1 = (int(round(float(v))) for v in face.box)
                place = next(i for i, f in enumerate(left_to_right(faces), 1) if f is face)
                detail = (f"{len(faces)} faces in the {role} image, {rivals} of the others "
                          f"nearly as large as the largest, which is used (the {_ordinal(place)} "
                          f"from the left, box {x0},{y0} to {x1},{y1})")
                warnings.warn(f"{name}: {detail}; name another as {Path(name).name}@N, N "
                              f"counted from the left (facedancer faces {Path(name).name} "
                              "lists them)", stacklevel=2)
                # An uploaded photo cannot be renamed: the web UI's note says what works there.
                notes.append(f"{Path(name).name}: {detail}; crop the photo to the person meant "
                             "to use another")
        raws.append(embed_faces(image, [face.landmarks], encoder)[0])
        files.append(name if choice is None else f"{name}@{choice}")
    mixed = mixed_people_note(files, _unit(np.stack(raws)), same_person_threshold(encoder), role)
    if mixed:
        warnings.warn(mixed, stacklevel=2)
        notes.append(mixed)
    return replace(average_embeddings(np.stack(raws), files), notes=tuple(notes))
