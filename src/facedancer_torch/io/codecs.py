"""Which video codec an output is written with: the ``--codec`` choice, and what ``auto`` keeps.

An editor hands over an intermediate (ProRes from Final Cut or Premiere, DNxHR from Avid or
Resolve, FFV1 from an archive) and conforms what comes back into the same timeline; a swap
that returns 8-bit 4:2:0 H.264 instead loses the intermediate's quality and its alpha channel.
``auto`` therefore keeps those families (and their profile: ProRes HQ stays HQ, 4444 stays
4444); every delivery codec (H.264, SDR HEVC, VP9, AV1...) gets the container's default,
H.264 (VP9 in WebM), which every player plays and which x264 encodes fastest on a CPU, except
a phone's 10-bit HDR clip, which stays HEVC Main 10. ``h265`` (x265) is there on request:
smaller files, slower to encode.

Pure functions, no FFmpeg calls: :func:`choose_codec` is what :class:`~.video_writer.
VideoWriter` is given (``codec=``, ``profile=``).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FacedancerError

# family -> (FFmpeg encoder, containers that hold it)
CODEC_FAMILIES: dict[str, tuple[str, frozenset[str]]] = {
    "h264": ("libx264", frozenset({"mp4", "mov", "mkv"})),
    "h265": ("libx265", frozenset({"mp4", "mov", "mkv"})),
    "prores": ("prores_ks", frozenset({"mov", "mkv"})),
    "dnxhr": ("dnxhd", frozenset({"mov", "mkv"})),
    "ffv1": ("ffv1", frozenset({"mkv"})),
    "vp9": ("libvpx-vp9", frozenset({"webm", "mkv", "mp4"})),
}
CODEC_CHOICES: tuple[str, ...] = ("auto", *CODEC_FAMILIES)
# Source decoders whose family `auto` keeps: the intermediate and archival codecs.
_KEPT_BY_AUTO = {"prores": "prores", "dnxhd": "dnxhr", "ffv1": "ffv1"}
# The container's default family (GIF, WebP and APNG have their own picture encoders).
_DEFAULT_FAMILY = {"mp4": "h264", "mov": "h264", "mkv": "h264", "webm": "vp9"}
_PICTURE_ENCODERS = {"gif": "gif", "webp": "libwebp_anim", "apng": "apng"}

# FFmpeg's profile names as a decoder reports them -> the encoder's profile option.
_PRORES_PROFILES = {"proxy": "proxy", "lt": "lt", "standard": "standard", "hq": "hq",
                    "4444": "4444", "xq": "4444xq", "4444xq": "4444xq", "4444 xq": "4444xq"}
_DNXHR_PROFILES = {"dnxhr lb": "dnxhr_lb", "dnxhr sq": "dnxhr_sq", "dnxhr hq": "dnxhr_hq",
                   "dnxhr hqx": "dnxhr_hqx", "dnxhr 444": "dnxhr_444"}
PRORES_ALPHA_PROFILES = frozenset({"4444", "4444xq"})


def choose_codec(kind: str, choice: str = "auto", source_codec: str | None = None,
                 source_profile: str | None = None, alpha: bool = False,
                 path: str | Path | None = None, hdr: bool = False) -> tuple[str, str | None]:
    """``(encoder, profile)`` for an output container ``kind`` (``io.video.container_kind``).

    ``choice`` is ``auto`` or a family of :data:`CODEC_FAMILIES`; ``source_codec`` and
    ``source_profile`` are the input's decoder and profile names (``VideoInfo.codec``,
    ``VideoInfo.profile``); with ``alpha`` (a transparent source) ProRes is written as 4444,
    whose alpha channel the writer keeps. With ``hdr`` (an HDR source of more than 8 bits,
    what phones record) ``auto`` writes HEVC at 10 bits where the container holds it: HDR in
    8 bits bands, and H.264 at 10 bits plays on almost no phone or browser. ``profile`` is
    None where the encoder takes none.

    Raises:
        FacedancerError: an unknown choice, or a codec the container cannot hold (naming
            ``path``, the output, when given).
    """
    if choice not in CODEC_CHOICES:
        raise FacedancerError(f"--codec must be one of {', '.join(CODEC_CHOICES)}, got "
                              f"'{choice}'")
    if kind in _PICTURE_ENCODERS:
        if choice != "auto":
            raise FacedancerError(f"--codec {choice} cannot be used for a .{kind} output "
                                  "(an animated picture has its own codec)", path)
        return _PICTURE_ENCODERS[kind], None
    family = choice
    if choice == "auto":
        family = _KEPT_BY_AUTO.get(source_codec or "", "") or ("h265" if hdr else "")
        if not family or kind not in CODEC_FAMILIES[family][1]:
            family = _DEFAULT_FAMILY[kind]
    encoder, containers = CODEC_FAMILIES[family]
    if kind not in containers:
        homes = ", ".join(f".{c}" for c in sorted(containers))
        raise FacedancerError(f"--codec {family} cannot be stored in a .{kind} file "
                              f"(use {homes})", path)
    profile = None
    if family == "prores":
        same = source_codec == "prores"
        profile = _PRORES_PROFILES.get((source_profile or "").lower(), "hq") if same else "hq"
        if alpha and profile not in PRORES_ALPHA_PROFILES:
            profile = "4444"
    elif family == "dnxhr":
        same = source_codec == "dnxhd"
        profile = _DNXHR_PROFILES.get((source_profile or "").lower(), "dnxhr_hq") if same \
            else "dnxhr_hq"
    return encoder, profile


def encoder_keeps_alpha(encoder: str, profile: str | None, kind: str) -> bool:
    """Whether ``encoder`` (with ``profile``, in a ``kind`` container) stores an alpha
    channel: the animated pictures, ProRes 4444, FFV1, and VP9 in WebM."""
    if kind in _PICTURE_ENCODERS:
        return True
    if encoder == "prores_ks":
        return profile in PRORES_ALPHA_PROFILES
    return encoder == "ffv1" or (encoder == "libvpx-vp9" and kind == "webm")


def encoder_keeps_depth(encoder: str, profile: str | None) -> bool:
    """Whether ``encoder`` (with ``profile``) is written with more than 8 bits per sample, so
    that a 10-bit source keeps its precision: ProRes, DNxHR HQX / 444, FFV1, HEVC. H.264
    stays 8-bit (High 10 plays on almost no phone or browser), as VP9 and the pictures."""
    if encoder == "dnxhd":
        return profile in ("dnxhr_hqx", "dnxhr_444")
    return encoder in ("prores_ks", "ffv1", "libx265")
