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

    def assign(self, unit: np.ndarray | None) -> Identity | None:
        """The source for one candidate face with unit embedding ``unit`` (None: untouched).

        ``unit`` may be None only when :attr:`needs_identity` is False.
        """
        if self.mapping:
            people = np.stack([person.unit for person, _ in self.mapping])
            distances = 1.0 - people @ unit
            best = int(np.argmin(distances))
            if distances[best] <= self.threshold:
                return self.mapping[best][1]
        if self.source is None:
            return None
        if self.reference is not None:
            return self.source if 1.0 - float(self.reference.unit @ unit) <= self.threshold \
                else None
        return self.source

    def choose(self, areas: Sequence[float], units: np.ndarray | None,
               track_ids: Sequence[int | None] | None = None) -> list[tuple[int, Identity]]:
        """``(face index, source)`` for each face to swap in one image, in input order.

        ``areas`` are the faces' box areas; ``units`` their ``(N, D)`` unit embeddings (or
        None when :attr:`needs_identity` is False); ``track_ids`` the tracker's person id of
        each face in a video (None for still images). The rules here do not need the ids;
        subclasses that must stay consistent per person across frames do.
        """
        chosen = []
        for index in self.candidates(areas):
            identity = self.assign(None if units is None else units[index])
            if identity is not None:
                chosen.append((index, identity))
        return chosen


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
