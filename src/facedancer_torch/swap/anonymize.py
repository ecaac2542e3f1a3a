"""Anonymize: every face swapped to a synthetic identity, no source photo needed.

The face selection of a swap job is a :class:`~facedancer_torch.swap.select.SelectionPlan`;
anonymizing is one more plan, :class:`AnonymizePlan`, whose "source" for each face is made from
that face itself by :class:`~facedancer_torch.models.identity.anonymizer.SyntheticIdentitySampler`
(see that module and docs/anonymize.md for the design). Everything else is the swap pipeline's:
detection, tracking, masks, batching, audio, watermark and the provenance tag (which records
``operation = "anonymize"``).

Consistency: in a video the pipeline passes each face's tracker id; the first synthetic
identity made for a track is kept for the whole clip, even though the track's own identity
estimate still moves over its first views. In still images the sampler is a continuous function
of the face's embedding, so one person photographed twice gets nearly the same synthetic
identity within one job, and different people get different ones.

    swapper = Swapper()
    plan = anonymize_plan(swapper, strength=0.8, seed=7)
    swapper.swap_path("clip.mp4", "anonymized.mp4", plan, SwapOptions())
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FacedancerError, InputError, ModelError
from ..models.identity.anonymizer import (IdentityPopulation, SyntheticIdentitySampler,
                                          default_population_path)
from .options import SwapOptions
from .select import SelectionPlan
from .source import Identity, embed_faces, same_person_threshold

# Default --strength: the smallest on a 0.05 grid at which the shipped demo model turns >= 95 %
# of held-out LFW faces into someone dlib does not verify as them and leaves them no more
# similar to the original for FaceNet than two different people are, chosen on a tuning set of
# people disjoint from the benchmark's test set (benchmarks/anonymize.py, docs/anonymize.md).
DEFAULT_STRENGTH: float = 0.9
# Angle (degrees, whitened population space) reached at strength 1: beyond 90 degrees the
# synthetic identity also points away from the person (docs/anonymize.md explains the choice).
MAX_ANGLE: float = 150.0
# Aligned crops in which a population's photos get the 68 landmarks that its kept axes (head
# pose, expression) are fitted to: the evaluation's crops (docs/evaluation.md).
LANDMARK_CROP, LANDMARK_SHRINK = 256, 0.5


@dataclass
class AnonymizePlan(SelectionPlan):
    """A selection plan that gives every candidate face a synthetic identity.

    ``sampler`` maps a face's unit embedding to a synthetic raw embedding. ``choose`` keeps
    the identity made for a tracker id (videos), so a person keeps one synthetic identity for
    the whole clip. ``faces`` (``all``/``largest``) still picks the candidates.

    One plan serves a whole folder job, and every video starts its own tracker whose ids may
    repeat those of the previous video; so a kept identity is reused only while the track's
    face still matches the face it was made from (cosine distance within ``threshold``, the
    encoder's same-person threshold). Otherwise that id now belongs to someone else and gets a
    new identity.
    """

    source: Identity | None = None
    sampler: SyntheticIdentitySampler | None = None
    _tracks: dict[int, tuple[np.ndarray, Identity]] = field(default_factory=dict, repr=False)

    # Read by Swapper.provenance(): the output's tag says the file was anonymized.
    operation = "anonymize"

    def __post_init__(self) -> None:
        if self.sampler is None:
            raise ValueError("AnonymizePlan needs a sampler")

    @property
    def needs_identity(self) -> bool:
        """Always: the synthetic identity is made from the face's own embedding."""
        return True

    def synthetic(self, unit: np.ndarray) -> Identity:
        """The synthetic :class:`Identity` for one face's ``(D,)`` unit embedding."""
        raw = self.sampler.sample(unit)
        return Identity(embedding=raw, unit=(raw / np.linalg.norm(raw)).astype(np.float32),
                        files=())

    def track_identity(self, track: int, unit: np.ndarray) -> Identity:
        """The synthetic identity of tracker id ``track`` whose face is now ``unit``."""
        kept = self._tracks.get(track)
        if kept is not None and 1.0 - float(kept[0] @ unit) <= self.threshold:
            return kept[1]
        identity = self.synthetic(unit)
        self._tracks[track] = (np.array(unit, dtype=np.float32), identity)
        return identity

    def choose(self, areas: Sequence[float], units: np.ndarray | None,
               track_ids: Sequence[int | None] | None = None,
               beaten: dict[int, set[int]] | None = None) -> list[tuple[int, Identity]]:
        """``(face index, synthetic identity)`` for each candidate face, in input order.

        ``units``: the faces' ``(N, D)`` unit embeddings (required); ``track_ids``: the
        tracker's id per face in a video, None for still images. ``beaten`` is not used:
        every face gets an identity of its own.
        """
        if units is None:
            raise ValueError("AnonymizePlan.choose needs the faces' identity embeddings")
        chosen = []
        for index in self.candidates(areas):
            unit = np.asarray(units[index], dtype=np.float32)
            track = None if track_ids is None else track_ids[index]
            chosen.append((index, self.synthetic(unit) if track is None
                           else self.track_identity(int(track), unit)))
        return chosen


def anonymize_options(**changes) -> SwapOptions:
    """The swap options of an anonymize job: the swap defaults, except where they would give
    back some of the original face (measured in docs/anonymize.md):

    - ``mask="box+hull"``: no ``occlusion`` part, because the occlusion segmenter also counts
      parts of the face (an open mouth, teeth, eyes behind glasses) as occluders and keeps
      the original's pixels there;
    - ``detail=0``: the original's fine detail is not restored on top of the new face;
    - ``profile_fade=False``, ``cut_fade=False`` and ``min_face_size=0``: a swap fades profile
      faces and faces the picture's edge cuts deeply back to the original and leaves small
      faces of videos alone, because a poor swap looks worse than none; when anonymizing, the
      original face is the worst outcome;
    - ``identity_strength=0``: the synthetic identity is drawn at its own distance from the
      original (``--strength``, calibrated in docs/anonymize.md); the model's recommended
      push away from the target face (docs/swap.md) would move that calibration.

    ``changes`` override any of them (``mask="box+hull+occlusion"`` keeps hands and
    microphones in front of the face, at the price above).
    """
    return SwapOptions(**{"mask": "box+hull", "detail": 0.0, "profile_fade": False,
                          "cut_fade": False, "min_face_size": 0.0, "identity_strength": 0.0,
                          **changes})


def load_population(encoder, population: str | Path | None = None) -> IdentityPopulation:
    """The identity population for ``encoder`` (its shipped one, or a file built with
    ``facedancer anonymize-population``); :class:`ModelError` when none fits the encoder."""
    contract = encoder.contract
    name = str(contract.name)
    path = Path(population) if population is not None else default_population_path(name)
    if population is None and not path.is_file():
        raise ModelError(f"no identity population ships for the identity encoder '{name}'; "
                         "build one with 'facedancer anonymize-population --images FACES "
                         "--output FILE.npz' and pass --population FILE.npz")
    loaded = IdentityPopulation.load(path)
    if loaded.encoder != name or loaded.dim != int(contract.embedding_dim):
        raise ModelError(f"the identity population describes '{loaded.encoder}' "
                         f"({loaded.dim}-d) embeddings, but the model uses '{name}' "
                         f"({contract.embedding_dim}-d)", path)
    return loaded


def anonymize_plan(swapper, strength: float = DEFAULT_STRENGTH, seed: int | None = None,
                   faces: str = "all", population: str | Path | None = None) -> AnonymizePlan:
    """An :class:`AnonymizePlan` for ``swapper``'s identity encoder.

    ``seed`` None draws a fresh random seed, so that two runs give the same person two
    unrelated synthetic identities (outputs of separate runs cannot be linked through them);
    pass a seed for reproducible, linkable results.
    """
    if not 0.0 <= float(strength) <= 1.0:
        raise FacedancerError(f"--strength must be in [0, 1], got {strength}")
    if faces not in ("all", "largest"):
        raise FacedancerError(f"--faces must be 'all' or 'largest', not '{faces}'")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2 ** 32))
    sampler = SyntheticIdentitySampler(load_population(swapper.encoder, population),
                                       strength=float(strength), seed=int(seed),
                                       max_angle=MAX_ANGLE)
    threshold = same_person_threshold(swapper.encoder)
    return AnonymizePlan(source=None, faces=faces, sampler=sampler, threshold=threshold)


# -- building a population -------------------------------------------------------------------
def identity_folders(images_dir: str | Path) -> dict[str, list[Path]]:
    """``{person: [image files]}`` of a folder laid out ``<person>/<image>`` (LFW's layout)."""
    from ..io.images import is_image_path

    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise InputError("identity folder does not exist", images_dir)
    people = {}
    for folder in sorted(p for p in images_dir.iterdir() if p.is_dir()
                         and not p.name.startswith(".")):
        files = sorted(f for f in folder.iterdir() if f.is_file() and is_image_path(f))
        if files:
            people[folder.name] = files
    if not people:
        raise InputError("no <person>/<image> folders found", images_dir)
    return people


def embed_people(people: dict[str, list[Path]], detector, encoder, progress: bool = True
                 ) -> tuple[np.ndarray, list[str], list[str], np.ndarray]:
    """Raw embeddings ``(N, D)`` of the photos of ``people`` with their person and file, and
    the faces' ``(N, 68, 2)`` dlib landmarks in aligned crops of :data:`LANDMARK_CROP` pixels.

    Each photo goes through the swap pipeline's own path (detector, 5-point alignment to the
    encoder's template, :func:`embed_faces`), so the statistics describe exactly the embeddings
    the anonymizer will see. The subject is the face nearest the image centre (identity
    datasets such as LFW centre their subject; bystanders sit at the edges). Photos without a
    face are skipped. The landmarks are read as the evaluation reads them (the whole head in a
    256 px crop at shrink 0.5, docs/evaluation.md), for the population's kept axes.
    """
    from tqdm.auto import tqdm

    from ..faces.align import align_face
    from ..faces.landmarks68 import get_landmarks68
    from ..io.images import read_image

    predictor = get_landmarks68()
    items = [(person, path) for person, files in people.items() for path in files]
    raws, labels, names, landmarks = [], [], [], []
    for person, path in tqdm(items, desc="embed", unit="photo", disable=not progress,
                             leave=False):
        image = read_image(path)
        faces = detector.detect(image)
        if not faces:
            continue
        centre = np.array([image.shape[1], image.shape[0]], np.float64) / 2.0
        face = min(faces, key=lambda f: float(np.linalg.norm(
            (np.asarray(f.box[:2], np.float64) + np.asarray(f.box[2:], np.float64)) / 2
            - centre)))
        raws.append(embed_faces(image, [face.landmarks], encoder)[0])
        labels.append(person)
        names.append(str(path))
        crop, _ = align_face(image, np.asarray(face.landmarks, np.float32), LANDMARK_CROP,
                             shrink_factor=LANDMARK_SHRINK)
        landmarks.append(predictor.on_crop(crop, LANDMARK_SHRINK))
    if not raws:
        raise InputError("no face was detected in any photo")
    return (np.stack(raws).astype(np.float32), labels, names,
            np.stack(landmarks).astype(np.float32))


def build_population(images_dir: str | Path, model: str | Path | None = None,
                     identity_encoder: str | Path | None = None, components: int = 128,
                     hold_out: float = 0.0, seed: int = 0, max_per_identity: int | None = None,
                     device: str = "auto", progress: bool = True) -> IdentityPopulation:
    """Embed a ``<person>/<image>`` folder with ``model``'s identity encoder and fit an
    :class:`IdentityPopulation` to it (``facedancer anonymize-population``).

    ``hold_out`` leaves out the same people as ``facedancer train``/``shard`` with that
    fraction and ``seed`` (``data.shard.split_identities``), so that a benchmark on them
    measures people the population has never seen.
    """
    from ..data.shard import split_identities
    from .pipeline import Swapper

    images_dir = Path(images_dir)
    people = identity_folders(images_dir)
    held = split_identities(list(people), hold_out, seed)
    people = {name: files[:max_per_identity] if max_per_identity else files
              for name, files in people.items() if name not in held}
    # Only the detector and the identity encoder run here: the eager backend loads the
    # generator without preparing it for inference (`auto` would export it to ONNX first,
    # about 10 s on a model's first use, for nothing).
    swapper = Swapper(model, identity_encoder=identity_encoder, device=device, backend="eager")
    raw, labels, _, landmarks = embed_people(people, swapper.detector, swapper.encoder,
                                             progress=progress)
    if len(set(labels)) < 2:
        raise InputError("a population needs photos of at least two people", images_dir)
    source = (f"{images_dir.name}: {len(set(labels))} people, {len(raw)} photos"
              + (f", {len(held)} people held out (fraction {hold_out:g}, seed {seed})"
                 if held else ""))
    return IdentityPopulation.from_embeddings(raw, np.array(labels),
                                              str(swapper.encoder.contract.name),
                                              components=components, source=source,
                                              landmarks=landmarks, crop_size=LANDMARK_CROP)
