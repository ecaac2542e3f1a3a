"""Which faces of an image or frame are swapped, and to which source.

The reference swaps every detected face with one source. Users of FaceFusion and Deep-Live-Cam
expect more: only the largest face, only one person (``--reference``: faces whose identity is
close to a photo of that person), or several people each to their own source (``--map``).
The rules, in order (also in :class:`~facedancer_torch.swap.options.SwapOptions`):

1. candidates: every face, or only the largest (``faces``);
2. ``--map``: a candidate within ``threshold`` of one or more mapped people takes the source of
   the nearest;
3. the ``--source`` identity (if any) goes to the remaining candidates, all of them, or only
   those within ``threshold`` of the ``--reference`` person.

A person is in a picture once: a ``--reference`` or ``--map`` person is given to one face of an
image or frame, the nearest within ``threshold`` (pairs taken nearest first, each face and
each person once; a face a nearer one beat falls through to the next rule). Small and blurred
faces embed close to each other: in a crowd a 61 px face picked as the reference was 0.52 from
another passer-by's (FaceNet's threshold 0.6), and of the shared group photos' different
people, blurred bystanders of ``df_img54.jpg`` were 0.19 apart, the two children of
``gfp_00.jpg`` 0.23, two of the Friends cast 0.38 (docs/swap.md "How faces are chosen").

Identity distance is the cosine distance ``1 - cos`` of unit embeddings from the identity
encoder the model was trained with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from ..faces import masks
from ..faces.detect import at_edge
from ..faces.mirror import mirror_disagreement
from .options import VIDEO_MIN_FACE, SwapOptions
from .source import DEFAULT_THRESHOLD, Identity


@dataclass
class SelectionPlan:
    """The resolved face selection of one job (identities already embedded).

    Attributes:
        source: the ``--source`` identity, or None (only ``mapping`` is used).
        faces: ``"all"`` or ``"largest"``.
        reference: the ``--reference`` person, or None.
        mapping: ``(person, source)`` pairs of ``--map``.
        threshold: cosine distance below which two faces are the same person.
    """

    source: Identity | None
    faces: str = "all"
    reference: Identity | None = None
    mapping: list[tuple[Identity, Identity]] = field(default_factory=list)
    threshold: float = DEFAULT_THRESHOLD

    # What the job does to the faces it chooses, recorded in every output's provenance tag
    # (a subclass that anonymizes says so).
    operation = "face swap"

    @property
    def needs_identity(self) -> bool:
        """True if target faces must be embedded to decide (``--reference`` or ``--map``)."""
        return self.reference is not None or bool(self.mapping)

    def candidates(self, areas: Sequence[float]) -> list[int]:
        """Indices of the candidate faces given their box areas."""
        if not len(areas):
            return []
        if self.faces == "largest":
            return [int(np.argmax(np.asarray(areas)))]
        return list(range(len(areas)))

    def nearest(self, units: np.ndarray | None) -> float | None:
        """The smallest identity distance from any of ``units`` (``(N, D)`` unit embeddings of
        candidate faces) to a ``--reference`` or ``--map`` person; None without either, or
        without faces. Said when nothing was swapped: how far the best match fell short."""
        people = [person.unit for person, _ in self.mapping]
        if self.reference is not None and self.source is not None:
            people.append(self.reference.unit)
        if not people or units is None or not len(units):
            return None
        return float((1.0 - np.asarray(units) @ np.stack(people).T).min())

    def choose(self, areas: Sequence[float], units: np.ndarray | None,
               track_ids: Sequence[int | None] | None = None,
               beaten: dict[int, set[int]] | None = None) -> list[tuple[int, Identity]]:
        """``(face index, source)`` for each face to swap in one image, in input order.

        ``areas`` are the faces' box areas; ``units`` their ``(N, D)`` unit embeddings (or
        None when :attr:`needs_identity` is False); ``track_ids`` the tracker's person id of
        each face in a video (None for still images). ``beaten``: a video's memory, per track
        id, of the people (``--map`` person numbers, ``REFERENCE_PERSON``) a nearer face took
        from it in a frame they shared; such a track is not that person in later frames either
        (the nearer one may have turned away: on the crowd clip the reference's look-alike was
        swapped when the picked boy turned), and this call adds to it.
        """
        candidates = self.candidates(areas)
        tracks = [None] * len(areas) if track_ids is None else list(track_ids)
        remember = beaten if beaten is not None and track_ids is not None else None
        given: dict[int, Identity] = {}
        if self.mapping:
            people = np.stack([person.unit for person, _ in self.mapping])
            taken = _one_face_each(candidates, units, people, self.threshold, tracks,
                                   range(len(self.mapping)), remember)
            given = {index: self.mapping[person][1] for index, person in taken.items()}
        rest = [index for index in candidates if index not in given]
        if self.source is not None:
            if self.reference is not None:
                rest = list(_one_face_each(rest, units, self.reference.unit[None],
                                           self.threshold, tracks, [REFERENCE_PERSON],
                                           remember))
            given.update((index, self.source) for index in rest)
        return sorted(given.items())


# The --reference person's number in a video's ``beaten`` memory (``--map`` people count from 0).
REFERENCE_PERSON: int = -1


def _one_face_each(candidates: Sequence[int], units: np.ndarray, people: np.ndarray,
                   threshold: float, tracks: Sequence[int | None], numbers: Sequence[int],
                   beaten: dict[int, set[int]] | None) -> dict[int, int]:
    """``{face index: person index}``: each of ``people`` (``(P, D)`` unit embeddings, known
    as ``numbers`` in ``beaten``) given to at most one of the ``candidates`` (indices into
    ``units``; ``tracks`` their track ids) and each face at most one person, nearest pairs
    first, only pairs within ``threshold`` (cosine distance), not to a track ``beaten``
    records as having lost that person; a track that loses a person here is recorded."""
    if not candidates:
        return {}
    distances = 1.0 - np.asarray(units)[list(candidates)] @ people.T
    taken: dict[int, int] = {}
    losers: list[tuple[int, int]] = []
    for row, person in zip(*np.unravel_index(np.argsort(distances, axis=None, kind="stable"),
                                             distances.shape)):
        if distances[row, person] > threshold:
            break
        face, track, number = candidates[row], tracks[candidates[row]], numbers[person]
        known = track is not None and track >= 0 and beaten is not None
        if known and number in beaten.get(track, ()):
            continue
        if person in taken.values():
            if known:
                losers.append((track, number))
        elif face not in taken:
            taken[face] = int(person)
    for track, number in losers:
        beaten.setdefault(track, set()).add(number)
    return taken


def min_face_pixels(shape, options: SwapOptions, video: bool) -> float:
    """The smallest face (the larger side of its box, in pixels) that is swapped in a frame of
    ``shape`` ``(H, W, ...)``: ``min_face_size`` of the shorter side (videos default to
    :data:`~facedancer_torch.swap.options.VIDEO_MIN_FACE`, images to 0)."""
    fraction = options.min_face_size
    if fraction is None:
        fraction = VIDEO_MIN_FACE if video else 0.0
    return float(fraction) * float(min(shape[0], shape[1]))


def face_extent(box) -> float:
    """The larger side of a face box in pixels."""
    box = np.asarray(box, dtype=np.float64).reshape(4)
    return float(max(box[2] - box[0], box[3] - box[1], 0.0))


def _rgb(item) -> np.ndarray:
    return item if isinstance(item, np.ndarray) else item.rgb


J = TypeVar("J")


def split_profiles(jobs: Sequence[J], options: SwapOptions) -> tuple[list[J], list[J]]:
    """``(jobs to swap, jobs left as they are)`` of face jobs (anything with ``.landmarks``,
    5 points): with ``options.profile_fade`` a face turned so far that the fade's weight is 0
    (``faces/masks.pose_weight``) would be generated and then not pasted at all; it is neither
    generated nor counted as swapped (an output whose faces are all profiles is the unchanged
    target, without the synthetic-media label), and stays protected from its neighbours' masks
    like any face that is not swapped."""
    if not options.profile_fade:
        return list(jobs), []
    kept, turned = [], []
    for job in jobs:
        (kept if masks.pose_weight(job.landmarks) > 0.0 else turned).append(job)
    return kept, turned


# A face the picture's edge cuts deeply is often found only turned (sideways or upside down:
# Face.rotation), and that reading is broken: the visible eye read as the other one, the ear as
# an eye, and the swap a smear over the eye. Measured on the 58 shared photos whose largest face
# lies well inside them, each cut so that the edge runs 0.4, 0.5 and 0.6 of the face's box into
# it (`benchmarks/edge_faces.py` cuts, left and right: 348 cuts, 240 faces found): 66 were read
# turned, 60 of them broken (landmarks over a quarter of the eye distance off or the alignment
# turned by more than 15 degrees), scoring 0.71-0.999 (median 0.89); the 6 others were 0.15-0.25
# eye distances off. On whole photos turned by 90, 180 or 270 degrees (all 82, a sideways
# photo's faces are read right at its turn) the faces at an edge read at the turn scored 0.9945
# or more, and 21 of 34 of them had a face away from the edges read at the same turn. So a face
# at an edge (faces.detect.at_edge), read turned, scoring below CUT_TURNED_SCORE, and alone at
# its turn among the picture's faces away from the edges, is left as it is.
CUT_TURNED_SCORE: float = 0.99


def trust_mirrored(detector, image: np.ndarray, faces: Sequence, options: SwapOptions
                   ) -> list:
    """``faces`` (detected on ``image``) with the score of each face the picture's edge cuts
    and the cut fade doubts raised where the mirrored picture reads it alike
    (``faces/mirror.py``, ``masks.mirror_trusted_score``): for still images, one more
    detection when such a face is there. With ``options.cut_fade`` off, as they are."""
    faces = list(faces)
    if not options.cut_fade:
        return faces
    doubted = [i for i, face in enumerate(faces)
               if masks.MIRROR_MIN_SCORE <= float(face.score) < masks.CUT_FADE[1]
               and masks.is_cut(face.landmarks, face.box, image.shape)]
    if not doubted:
        return faces
    distances = mirror_disagreement(detector, image, [faces[i] for i in doubted])
    for i, distance in zip(doubted, distances):
        faces[i] = dataclasses.replace(
            faces[i], score=masks.mirror_trusted_score(float(faces[i].score), distance))
    return faces


def split_cut(faces: Sequence, shape: tuple[int, ...], options: SwapOptions
              ) -> tuple[list, list]:
    """``(faces to consider, faces left as they are)`` of detected faces (``.box``,
    ``.landmarks``, ``.score``, ``.rotation``) in a picture of ``shape``, with
    ``options.cut_fade``: the second list holds the faces the picture's edge cuts so deeply
    that they would be generated and then not pasted at all (``faces/masks.cut_weight`` is 0:
    the detector's score fell with the reading) and those read only turned and not surely (see
    ``CUT_TURNED_SCORE``); in the shared photos, uncut, no face. Like the profiles, they are
    neither generated nor counted as swapped, and their neighbours' masks keep off them."""
    if not options.cut_fade:
        return list(faces), []
    # a picture taken sideways reads its faces away from the edges at the same turn
    inner_turns = {int(f.rotation) % 360 for f in faces if not at_edge(f, shape)}
    kept, cut = [], []
    for face in faces:
        turn = int(face.rotation) % 360
        score = float(face.score)
        doubtful = (turn != 0 and turn not in inner_turns
                    and score < CUT_TURNED_SCORE and at_edge(face, shape))
        gone = masks.cut_weight(face.landmarks, face.box, score, shape) <= 0.0
        (cut if doubtful or gone else kept).append(face)
    return kept, cut
