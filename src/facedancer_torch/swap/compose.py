"""Compositing: put swapped faces back into the frame so that only the face changes.

The reference pastes the generator's crop back through a blurred box (docs/reference.md §7).
That box also replaces whatever else lies inside it (background beside the cheeks, a hand or a
microphone in front of the mouth, the edge of a neighbour's face), and a 128 px crop pasted onto
a 400 px face is visibly softer than the photo around it. Per face, this module:

1. works at the face's own resolution: a **work crop** ``W = k * S`` pixels wide, ``k`` the
   whole factor by which the face in the frame is larger than the generator's ``S`` crop (1..8),
   so nothing is resampled twice;
2. builds the **mask** from parts multiplied together (``SwapOptions.mask``, ``+``-joined):
   ``box`` (the reference's soft box), ``hull`` (the face outline from dlib's 68 landmarks of the
   target, ``faces/masks.py``), ``occlusion`` (1 - what the face segmenter calls an occluder:
   hands, microphones, masks stay; and the target's own dark lenses, which the segmenter
   misses, found from its pixels, ``faces/lenses.py``), ``segment`` (the segmenter's own face
   region); then takes
   out the faces of nearer people (depth order, see :func:`composite`) and fades a face that is
   turned to a profile back towards the target (``faces/masks.pose_weight``);
3. corrects **colour** (``SwapOptions.color_match``): ``global`` Lab mean/std transfer, or
   ``local`` (global, then the chroma moved to the target's pixel by pixel over a small
   neighbourhood, from target pixels of about the swap pixel's lightness where the generator
   changed it: no teal brows or purple eye rims; the darkness a brow, or an eye that lost its
   dark core, should have comes back as lightness, and so does the iris of an eye painted
   over, the light of an eye painted dull, a hard shadow the target lies in, and the depth of
   brows painted pale; see
   ``faces/color.py``);
4. restores **detail** above the generator's resolution from the target (a Laplacian split:
   the swap gives the band the generator can produce and, on faces twice its size or more, the
   band just above it, which carries the target's identity; the target the finest band: skin
   texture, hair, sharp edges), gated to where swap and target agree in structure at the
   coarse scale so that no edge of the target's own features (a brow, an eye) ghosts through;
   with ``SwapOptions.detail_follow`` the frame's face is first moved onto the swap's eyes,
   brows and mouth (``swap/follow.py``), so that lid creases and lashes a few pixels off, which
   that gate lets through, do not draw a second outline; the photo's grain comes back where the
   swap's bands replaced the photo's (``swap/grain.py``), and on faces twice the generator's size
   or more the brows the model paints, its soft upsampled band, are sharpened to the photo's
   focus (``swap/brow_focus.py``);
5. pastes the result back through the mask with the inverse transform; pixels outside every
   mask are the input's, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import cv2
import numpy as np

from ..errors import FacedancerError
from ..faces import lenses, masks
from ..faces.align import invert_affine, paste_back, transform_points
from ..faces.color import (brow_depth, brow_shelves, cast_shadows, eye_darkness, eye_irises,
                           eye_shadow_weight, eye_whites, fit_colour, forehead_darkness,
                           identity_transfer, lip_darkness, nostril_darkness, shading_chroma,
                           to_lab, under_eye_lightness)
from . import brow_focus, follow, grain
from .exposure import apply_gain, inverse_gain, is_unit
from .monochrome import keep_monochrome
from .options import SwapOptions, mask_parts

# Largest work crop: a 1080p close-up stays sharp, a 4K one is resampled once to this size.
MAX_WORK_SIZE: int = 1024
# The colour correction is fitted on crops of at most this side (0: the generator's own S).
# Its statistics and fields are smooth, and the band above 128 px of a 256 px model's swap is
# the target's (the detail band) wherever detail is kept: fitting a 256 px model's face at
# 128 px makes its compositing 1.4-1.6x faster for the same picture (docs/swap.md, "With a
# 256 px model"); a 128 px model's is unchanged.
COLOR_FIT_SIZE: int = 128
# Local colour correction neighbourhood, as a fraction of the crop (2.5 px on a 128 crop): small
# enough to reach a brow or an eye rim, large enough not to copy the target's features.
LOCAL_COLOR_SIGMA: float = 0.02
# ... and where the generator changed a feature's lightness, the chroma of target pixels of
# about the swap pixel's lightness (within LOCAL_COLOR_LIGHTNESS_RANGE L units) within
# LOCAL_COLOR_SIMILAR_SIGMA of the crop (6 px of 128; 0 = off: the target's chroma at the
# same place). The target's dark, mauve eye make-up under a lighter swapped lid had come out
# as a lavender lid, its dark brows under the generator's lighter ones as grey-blue brows
# (faces/color.py). Inside the eyes' outlines the plain field stays (an iris has the skin's
# lightness and would take its colour). Measured: docs/swap.md "Colour by lightness".
LOCAL_COLOR_SIMILAR_SIGMA: float = 0.05
LOCAL_COLOR_LIGHTNESS_RANGE: float = 12.0
# ... nor inside the lips' outline (68-point landmarks 48-59, softly; 0 = off): lips are a
# narrow band whose chroma differs from the skin around them at the same lightness, and the
# filter, computed on a half-size copy where the lips mix with skin, took 3.5-8 of their
# chroma (a*, the red) away: lipstick came out a dull mauve, bare lips grey. The mouth is
# the target's expression, so the swap's lips lie on the target's and the plain field fits.
LOCAL_COLOR_KEEP_LIPS: float = 1.0
# ... nor on the target's eye shadow (faces/color.py, eye_shadow_weight: the lids within
# EYE_SHADOW_GROW eye widths of each eye, wherever the target's a*b* lie EYE_SHADOW_CHROMA from
# its skin's median (in part from [0], fully from [1]), are at least EYE_SHADOW_SATURATION of
# the skin's chroma and no more than EYE_SHADOW_DARK L* darker than the skin; times
# EYE_SHADOW, 0 = off, before session 49): the demo model paints bare lids, and by lightness
# a lid took the chroma of the skin or lashes of its lightness nearby, so lilac, green or
# coral eye shadow came out a grey or beige lid. In place the lid keeps the shadow's colour;
# grey and dark make-up (eyeliner, smoky shadow), whose chroma on a lighter lid read as
# lavender, stays by lightness. Measured: docs/swap.md "Eye shadow kept".
EYE_SHADOW: float = 1.0
EYE_SHADOW_GROW: float = 0.45
EYE_SHADOW_CHROMA: tuple[float, float] = (10.0, 16.0)
EYE_SHADOW_SATURATION: float = 0.6
EYE_SHADOW_DARK: float = 35.0
# ... and the lips (their outline grown by LOCAL_COLOR_APART_GROW of the mouth's width) and
# the nostrils give their chroma to no other pixel by lightness (the weight taken from them,
# softly; 0 = off): a moustache or beard shadow the generator paints on a target's bare upper
# lip has about the lightness of her lips and nostrils, and took their red, a lipstick smear
# above the mouth (docs/swap.md "Nothing takes the lips' red").
LOCAL_COLOR_APART: float = 1.0
LOCAL_COLOR_APART_GROW: float = 0.1
# The colour by lightness acts around the eyes and brows only (each eye's outline grown by
# LOCAL_COLOR_SIMILAR_ZONE eye widths, each brow's line drawn LOCAL_COLOR_SIMILAR_BROWS of its
# brow-to-eye distance thick, softly; 0 = everywhere, as before), where the generator moves
# and relights features the target has dark or made up, and wherever the swap is darker than
# the target by more than LOCAL_COLOR_SIMILAR_DARKER L* (fully 8 more; a moustache, a beard
# shadow: narrower than the plain field's reach, which left them olive). Elsewhere the swap's
# shading differs from the target's by a few L* all over, and skin took its chroma from
# wherever the target had that lightness: the grey of her brows and lashes on a shaded cheek
# (docs/swap.md "Colour by lightness where features are").
LOCAL_COLOR_SIMILAR_ZONE: float = 0.5
LOCAL_COLOR_SIMILAR_BROWS: float = 1.2
LOCAL_COLOR_SIMILAR_DARKER: float = 4.0
# ... and wherever the swap is lighter than the target by more than LOCAL_COLOR_SIMILAR_LIGHTER
# L* (fully 8 more; 0 = off, before session 47): a dark shadow the generator paints lighter
# keeps the shadow's own chroma in the plain field, and a nostril's near-black (L* 6-10, a* 20,
# b* 10) lifted to L* 35 reads as a mauve patch beside the nose, a target's dark moustache
# under a lighter upper lip as a lavender-grey band. By lightness they take the chroma of the
# skin of their lightness nearby (the lips and nostrils give none, LOCAL_COLOR_APART).
# Measured: docs/swap.md "Lightened shadows".
LOCAL_COLOR_SIMILAR_LIGHTER: float = 4.0
# ... and in the brows, the chroma contrast that correction takes away comes back as darkness
# (this amount of it, contrast measured against LOCAL_COLOR_CARRY_SIGMA of the crop; 0 = off):
# the demo generator paints brows mostly as a cool grey-blue on warm skin, and once they take
# the skin's chroma they all but vanish (faces/color.py, carried_lightness).
LOCAL_COLOR_CARRY: float = 1.0
LOCAL_COLOR_CARRY_SIGMA: float = 0.05
# ... and in an eye whose dark core the generator lost (a grey iris without a pupil, a washed-out
# eye behind a lens, the eyeliner gone: the 128 px demo model's commonest visible fault), the
# target's darkness comes back (faces/color.py, eye_darkness): judged per eye by the darkest
# tenth of its opening, swap (corrected) minus target, from EYE_DARKNESS_GATE[0] L* units
# lighter in part and from [1] fully, inside the eye's outline grown by EYE_DARKNESS_GROW of
# its width, every pixel darker in the target by more than EYE_DARKNESS_MARGIN is brought down
# to that margin (times EYE_DARKNESS; 0 = off). Eyes as dark as the target's stay the swap's.
# The gate starts at 5 L*: from 0 (session 14, chosen with the astronaut source alone, where it
# cost nothing) it also carried the target's eyeliner into slightly light eyes, and with
# fr_obama.jpg / fr_biden.jpg as sources that cost 0.042 / 0.022 of dlib identity gain per
# photo; from 5 the broken eyes keep their darkness for a third of that (pooled over three
# sources -0.018 against -0.027, off -0.017). Measured: docs/swap.md "Eyes kept defined".
EYE_DARKNESS: float = 1.0
EYE_DARKNESS_GATE: tuple[float, float] = (5.0, 15.0)
EYE_DARKNESS_MARGIN: float = 4.0
EYE_DARKNESS_GROW: float = 0.35
# In a video or live stream the gate follows the generator's own frame-to-frame changes (the
# gap's standard deviation is up to 11 L* over a clip), so an iris would flicker between the
# swap's and the target's darkness: per track, each eye's gate moves this fraction of the way
# to the frame's own value (about 3 frames' memory at 25 frames/s).
EYE_DARKNESS_EASE: float = 0.3
# ... and a face's two eyes judged as a pair (both passes): an eye that lost some darkness
# (or light) too, by more than the margin, takes as much of the target's inside its opening
# as the other eye does, instead of staying a pale grey-teal iris beside a brown one
# (docs/swap.md "Two eyes alike"; False = each eye on its own gate, before session 34).
EYE_PAIRED: bool = True
# ... and the other way round, an eye the generator painted dull (the white a mid grey, the
# catch light gone, at worst a dark almond: with gfp_Blake_Lively.jpg as the source the
# brightest tenth of the opening is 10-30 L* darker than the target's on 89 of the 226 eyes of
# the shared photos, with fr_obama.jpg on 71, with astronaut.jpg on 12) takes the target's
# light back (faces/color.py, eye_whites): judged by the brightest tenth of the opening, from
# EYE_WHITES_GATE[0] L* units darker in part and from [1] fully, every pixel of the opening
# (softly) lighter in the target by more than EYE_WHITES_MARGIN is brought up to that margin
# (times EYE_WHITES; 0 = off). The iris and pupil, darker, stay the swap's. Eased in a video
# as the darkness is. dlib reads the whites as a little more of the target (-0.010 of
# identity gain per photo changed), so the gate starts at 10 L*, where an eye looks dead, not
# at 5 (docs/swap.md "Eye whites").
EYE_WHITES: float = 1.0
EYE_WHITES_GATE: tuple[float, float] = (10.0, 20.0)
EYE_WHITES_MARGIN: float = 4.0
# ... and an eye whose iris the generator lost while its edges stayed dark (a source's heavy
# lid painted over the target's open eye, the iris a pale smear: with LFW's
# Morgan_Freeman_0001.jpg as the source the median L* of the opening is 15-27 lighter than the
# target's on 10 of 224 eyes, whose lash line keeps the darkest tenth within the darkness
# pass's gate) takes the target's iris back (faces/color.py, eye_irises): judged by the
# opening's median, from EYE_IRIS_GATE[0] L* lighter in part and [1] fully, every pixel of
# the opening (softly) darker in the target by more than EYE_IRIS_MARGIN is brought down to
# that margin (times EYE_IRIS; 0 = off). Paired and eased in a video as the other eye passes
# are. Measured: docs/swap.md "Irises kept".
EYE_IRIS: float = 1.0
EYE_IRIS_GATE: tuple[float, float] = (10.0, 20.0)
EYE_IRIS_MARGIN: float = 4.0
# ... and a nose painted without its nostrils (a pale, plastic nose whose wings the detail
# band outlines; with some source photos on most faces) takes the target's darkness back in
# the nostrils' zone (faces/color.py, nostril_darkness; masks.nostril_zone grown by
# NOSTRIL_GROW of the nose's width): judged as an eye is by its opening's darkest tenth, here
# by the larger gap of the zone's NOSTRIL_PERCENTILES (the darkest tenth: the nostrils; the
# median: the shadow under the nose, which some swaps lose whole), from NOSTRIL_GATE[0] L*
# lighter in part and [1] fully, every pixel darker in the target by more than NOSTRIL_MARGIN
# is brought down to that margin (times NOSTRIL_DARKNESS; 0 = off). Eased in a video as the
# eyes are. Measured: docs/swap.md "Nostrils".
NOSTRIL_DARKNESS: float = 1.0
NOSTRIL_GATE: tuple[float, float] = (5.0, 15.0)
NOSTRIL_MARGIN: float = 4.0
NOSTRIL_GROW: float = 0.1
NOSTRIL_PERCENTILES: tuple[float, ...] = (10.0, 50.0)
# ... and lips painted paler than the target's take its darkness back (faces/color.py,
# lip_darkness; masks.lip_ring: the outer lip line less the inner one): the demo generator
# paints most lips at L* 55-58 whatever the target's, so a dark or red lipstick came out a
# pale pink (talking_c.mp4 with some sources 12 L* lighter than the photo's). Judged by the
# larger gap of the ring's median and 75th percentile of L*, corrected swap minus target
# (an open mouth's lower lip can be half the swap's lighter lip), from LIP_GATE[0] lighter
# in part and [1] fully, every lip pixel darker in the target by more than LIP_MARGIN is
# brought down to that margin (times LIP_DARKNESS; 0 = off). Only darker, so the swap's own
# darker lips, and everything outside the lips, stay; lips are the target's expression and
# make-up. The gate is narrow where the eyes' is wide: the eyes' protects the swap's
# identity, and little of it is in the lips' lightness (dlib's identity gain 0.001 per face
# lower or less with three sources, 0.010 with one whose pale lips the model paints on
# every face). Eased in a video as the eyes are. Measured: docs/swap.md "Lipstick kept".
LIP_DARKNESS: float = 1.0
LIP_GATE: tuple[float, float] = (1.0, 3.0)
LIP_MARGIN: float = 2.0
# ... and a face in a hard cast shadow (hair over the brow and eyes, a hat's brim) keeps it
# (before the eye passes): the generator paints every face evenly lit, which put a lit blob
# over a shadowed child's eyes in fr_obama_and_biden.jpg and a lit face over a dark background
# silhouette (df_img54.jpg).
# Shading is what stays of the lightness once every dark feature narrower than a disc of
# CAST_SHADOW_RADIUS of the crop is filled (a closing: brows, eyes, deep eye sockets, lips);
# where the target's is darker than the corrected swap's by more than CAST_SHADOW_MARGIN L*
# (fully from twice that), the swap takes the difference (times CAST_SHADOW; 0 = off;
# faces/color.py, cast_shadows). Smaller discs also carried the darkness of eye sockets and eye
# make-up (0.08 and 0.12 of the crop: a bruise-like patch around df_img41.jpg's eyes; 0.05 also
# the brows of a blink, which moved dlib's reading of the closed lids in
# tests/test_blinks.py). Measured: docs/swap.md "Shadows kept".
CAST_SHADOW: float = 1.0
CAST_SHADOW_RADIUS: float = 0.16
CAST_SHADOW_MARGIN: float = 6.0
# ... and a brim's edge, its shade or a fringe just above the brows stays (faces/color.py,
# forehead_darkness; masks.forehead_zone): the generator paints the forehead lit up to the
# mask's top, so a cap's shade, a beret's dark rim or a lock of hair there came out as a pale
# strip of skin (LFW's Troy_Garity_0001.jpg and Wolfgang_Schneiderhan_0001.jpg with df_img25.jpg
# as the source, 20 and 18 L* lighter than the photo). The cast-shadow pass misses it: its
# closing fills the brim itself, which the crop cuts to a band narrower than the disc. In the
# face outline above the brows' lowest point, less the brows drawn FOREHEAD_BROWS of their
# brow-to-eye distance thick, judged by the darkest quarter of L* (corrected swap minus
# target; the darkest tenth is often the hat, dark in both), from FOREHEAD_GATE[0] L* lighter
# in part and [1] fully, every pixel darker in the target by more than FOREHEAD_MARGIN is
# brought down to that margin (times FOREHEAD_DARKNESS; 0 = off). The gate is high because a
# bare forehead comes out a few L* lighter too (the quarter's gap 2.5 on the median shared
# photo with df_img25.jpg, 7-8 on a few): that is the swap's own light, and stays. After the
# brow passes, which judge a brow against the skin around it. Eased in a video as the eyes
# are. Measured: docs/swap.md "Brims and fringes kept".
FOREHEAD_DARKNESS: float = 1.0
FOREHEAD_GATE: tuple[float, float] = (8.0, 14.0)
FOREHEAD_MARGIN: float = 6.0
FOREHEAD_BROWS: float = 0.8
# ... and skin the generator shades darker than the target is lit takes the chroma of the
# target's darker skin (faces/color.py, shading_chroma): with the astronaut's flash-lit face as
# the source, if_t1.jpg's warm faces got grey nose tips and greyish shaded cheeks, the local
# field giving them the chroma of the lighter skin the target has there. The chroma grows by
# what the target's own skin gains between the two lightnesses, in its hue there (times
# SKIN_SHADING; 0 = off), on the skin and the nose's underside but not above the upper lip
# (masks.skin_zone less masks.upper_lip_band, softened by SKIN_SHADING_SOFTEN of the crop).
# Measured: docs/swap.md "Shaded skin keeps its warmth".
SKIN_SHADING: float = 1.0
SKIN_SHADING_SOFTEN: float = 0.02
# ... and brows the generator paints pale (a grey band barely darker than the skin, where the
# photo's brows are dark: with gfp_10045.png's woman as the source, talking_b.mp4's dark brows
# came out as faint outlines) keep their own shape and are deepened towards the target's
# (faces/color.py, brow_depth): darkness is measured against a closing with a disc of
# BROW_DEPTH_RADIUS of the crop (brows are narrower), per brow over its line drawn
# BROW_DEPTH_THICKNESS of its brow-to-eye distance thick (the eyes' zones left out); where
# BROW_DEPTH_SHARE of the target brow's depth is deeper than the swap's by more than
# BROW_DEPTH_MARGIN L* (fully from twice that), the swap's darkness there is multiplied by the
# ratio, at most BROW_DEPTH_GAIN and never beyond that share (times BROW_DEPTH; 0 = off).
# The full depth (share 1) looked heavy and cost 0.0065 of dlib identity gain per photo; 0.7
# about 0.001. Eased along a track as the eye passes are. Measured: docs/swap.md "Brows kept
# dark".
BROW_DEPTH: float = 1.0
BROW_DEPTH_RADIUS: float = 0.08
BROW_DEPTH_THICKNESS: float = 0.8
BROW_DEPTH_MARGIN: float = 5.0
BROW_DEPTH_GAIN: float = 3.0
BROW_DEPTH_SHARE: float = 0.7
# ... and the pale shelf the generator paints beside a brow it puts lower or higher than the
# target's (a grey band at the target's brow line joined to the swap's dark one: a two-tone
# brow twice as thick, the pale half a second brow; talking_b.mp4 with if_Tom_Hanks_54745.png)
# is lifted to the skin beside it (faces/color.py, brow_shelves): per brow, in its window from
# BROW_SHELF_ABOVE brow-to-eye distances over the brow down to BROW_SHELF_ABOVE_LID over the
# upper lid, the brow's core in each column is where its darkness is BROW_SHELF_CORE of the
# column's most; darker pixels farther than BROW_SHELF_NEAR distances from it, inside the
# brow's line drawn BROW_DEPTH_THICKNESS thick, are lifted to the lightest pixel up to
# BROW_SHELF_REACH distances beyond them (times BROW_SHELF; 0 = off). After the depth pass, so
# that a deepened brow's core is what the shelf is judged against. Measured: docs/swap.md
# "Brows without a shelf".
BROW_SHELF: float = 1.0
BROW_SHELF_ABOVE: float = 0.5
BROW_SHELF_ABOVE_LID: float = 0.2
BROW_SHELF_CORE: float = 0.5
BROW_SHELF_NEAR: float = 0.12
BROW_SHELF_REACH: float = 0.35
# Both brow passes find the swap's own brows on its own landmarks (dlib on the swapped crop; 3.5 ms
# a face in all, docs/swap.md), where the generator put the source's brow, not on the target's brow
# line: where the source's brows sit lower (talking_b.mp4 with df_img18.jpg as the source), the
# generator also paints a faint copy of the target's brow at its line, and judged there the depth
# pass took the copy for a pale brow and deepened it, the shelf pass took it for the core in the
# columns where the real brow lay below the line and left it standing: a dark dot and a patch where
# her brows had been. A brow whose own points lie farther than BROW_OWN_REACH brow-to-eye distances
# from the target's (a misreading) is judged on the target's line. The depth pass judges and
# deepens the swap's brow on its line drawn BROW_DEPTH_THICKNESS thick together with the target's
# (on the swap's alone a brow in the target's place read deeper and df_img42.jpg's pale brows were
# no longer deepened); the shelf pass looks for the core on the swap's line drawn
# BROW_OWN_THICKNESS thick (0.8 reached the copy, a third of a distance above Musk's brow points),
# and only there is a dark pixel kept as brow.
BROW_OWN: bool = True
BROW_OWN_REACH: float = 1.0
BROW_OWN_THICKNESS: float = 0.5
# The reference's box ends at row 77 of 256 (0.30 of the crop) with a Gaussian edge of sigma 7:
# its soft top crosses the brows of most aligned faces, and where the swap's brows lie lower
# than the target's, the target's brows showed through it above them, a second brow
# (talking_b.mp4 with gfp_Blake_Lively.jpg as the source: the mask 0.56-0.90 at her brows).
# With the "hull" part the box is lifted to 1 over the target's brows, each brow's line drawn
# BOX_OVER_BROWS of its brow-to-eye distance thick (0 = the reference's box alone). Raising
# the whole box's top instead (by 0.1 of the crop, hull-bounded) measured +0.003 of identity
# gain per photo but pasted the source's fringe shading across foreheads (the astronaut's
# bangs as a dark arc on talking_a.mp4). Measured: docs/swap.md "Brows without a shelf".
BOX_OVER_BROWS: float = 1.0
# The lift brings in the swap as it is: where the swap is darker than the target there by more
# than BOX_OVER_BROWS_DARKER[0] L* (each crop's mean lightness under the box taken out), it is
# lifted less, not at all from [0] + [1] ([1] = 0: lifted everywhere, as before). Beside a
# brow's outer end the lifted zone reached the hairline or temple shading the generator paints
# where the target has skin, and pasted it whole: a dark blob above the brow's tail
# (talking_b.mp4 frames 45-115 with df_img3.jpg or df_img41.jpg as the source). Where the
# target has a brow the swap is lighter than it, so the lift still hides those brows.
# Measured: docs/swap.md "Nothing dark over the brows".
BOX_OVER_BROWS_DARKER: tuple[float, float] = (4.0, 8.0)
# The skin under the eyes (faces/color.py, under_eye_lightness; masks.under_eye_zone): the
# lower lid's line moved UNDER_EYE_TOP to UNDER_EYE_BOTTOM eye widths down, UNDER_EYE_SIDE eye
# widths beyond each corner, is compared with a strip of cheek UNDER_EYE_CHEEK eye widths below
# the lid, on the difference corrected swap minus target blurred by UNDER_EYE_SIGMA eye widths.
# Where the face's rings lie deeper below the cheek's level than the target's (the larger
# eye's 90th percentile, from UNDER_EYE_GATE[0] L* in part, from [1] fully; eased along a
# track), the zone is lifted by what exceeds UNDER_EYE_MARGIN (times UNDER_EYE; 0 = off,
# before session 50). With a source whose skin is darker under the eyes (Eileen Coparropa,
# Denzel Washington, Abdoulaye Wade) the generator paints dark rings there that the colour
# correction keeps as deep on a lighter target's skin: bruised-looking eyes. The gate leaves
# faces without such rings (most, with the astronaut) as they were. Measured: docs/swap.md
# "Under the eyes".
UNDER_EYE: float = 1.0
UNDER_EYE_TOP: float = 0.12
UNDER_EYE_BOTTOM: float = 0.95
UNDER_EYE_SIDE: float = 0.3
UNDER_EYE_CHEEK: tuple[float, float] = (1.1, 1.45)
UNDER_EYE_SIGMA: float = 0.1
UNDER_EYE_GATE: tuple[float, float] = (4.0, 8.0)
UNDER_EYE_MARGIN: float = 1.0
# The mask parts "mouth" and "eyes" keep the target's own: each feature's outline grown by
# KEEP_GROW times its width, the edge blurred by KEEP_SOFTEN times it (the seam on the skin
# around it, which the colour correction has already matched).
KEEP_GROW: float = 0.2
KEEP_SOFTEN: float = 0.12
# The generator's crop carries detail up to about half its own resolution (measured on the
# shipped 128 px model: its output's Laplacian variance is a fraction of its input's); the band
# below this fraction of S is always the swap's.
DETAIL_RESOLUTION: float = 0.5
# Three bands on faces at least DETAIL_MID_MIN_WORK times S in the frame: the middle band, from
# DETAIL_RESOLUTION to DETAIL_FINE_RESOLUTION of S, is the target's only where the coarse
# lightness gap is under DETAIL_MID_GATE (0: never, it is the swap's); the finest band, above it,
# is the target's where that gap is under DETAIL_GATE. dlib's recogniser sees a face at about
# 150 px: the target's band just above the generator's resolution carries its identity (the
# two-band split cost 0.019 of dlib identity gain, 16 of 17 photos), its finest band mostly
# sharpness. Taking the band up to 0.75 S from the swap gave back +0.005 / +0.007 of the gain
# (medians of per-photo differences, 13 / 12 of 17 photos, two sources), and the finest band's
# gate, opened from 25 to 40 Lab units, the sharpness (0.765 -> 0.807 of the target's) without
# the target's brows or eyes showing (docs/swap.md, "Detail"). Up to 1.0 S gave back more
# (+0.010 / +0.014) but visibly softened faces of 2-3 x S (teeth, lips, eyes). With the
# structure gate below, which gives the finest band back to shading-changed skin, 0.875 is
# better than 0.75 with the plain gate on both counts over all 82 shared photos: sharpness +0.030
# (67 photos up, 11 down), identity gain +0.001 (32 up, 25 down); 1.0 gave +0.004 of identity
# for no sharpness and again visibly softer teeth and eyes at 2 x S (docs/swap.md).
DETAIL_FINE_RESOLUTION: float = 0.875
DETAIL_MID_GATE: float = 0.0
DETAIL_GATE: float = 40.0
# The gate compares the coarse images' lightness *structure*: each minus its own shading, a
# Gaussian of this fraction of the crop's width (2 px of the 64 px coarse image). A generator
# that lights a temple or a cheek a little darker than the photo (a smooth change) closed the
# plain-lightness gate there, and those patches stayed as soft as the 128 px model next to the
# photo's sharp skin; a brow or an eye that moved still differs in structure and stays closed.
# Measured alone on all 82 shared photos (docs/swap.md "Structure gate"): sharpness +0.047 per
# photo (82 of 82) for -0.001 of dlib identity gain. 0 = the plain lightness gap.
DETAIL_SHADING_SIGMA: float = 2.0 / 64.0
# Inside the target's brows (each brow's line drawn DETAIL_BROW_THICKNESS of its brow-to-eye
# distance thick) the finest band's gate closes from a gap of DETAIL_BROW_GATE instead: where
# the swap's brow lies a few pixels lower or higher than the target's, the coarse gap at the
# target's brow line is 15-30 L*, which left the gate half open, and the target's brow edges
# came through as a thin outline of a second brow beside the swap's (talking_b.mp4 with
# if_Tom_Hanks_54745.png; docs/swap.md "Brows without a shelf"). Brows in the same place
# differ by a few L* and keep the target's hairs. 0 (or DETAIL_GATE) = as before session 33.
DETAIL_BROW_GATE: float = 15.0
DETAIL_BROW_THICKNESS: float = 0.8
# Smaller faces keep the two-band split (at DETAIL_GATE): on a face at the model's own size the
# middle band is most of the target's detail there is, and taking it from the swap left those
# faces softer for no identity (fnp_multiface: 0.568 of the target's sharpness against 0.661,
# identity gain 0.249 against 0.247).
DETAIL_MID_MIN_WORK: float = 2.0
# Unsharp masking of the generator's own output (amount, and sigma in pixels of its S crop):
# a small generator's output is soft even at its own resolution; sharpening its own band adds
# crispness that comes from the swap, not from the target.
SWAP_SHARPEN: float = 0.0
SWAP_SHARPEN_SIGMA: float = 1.0
# Focus: a face the photo shows out of focus (a blurred background face) gets the generator's
# crisp eyes and edges painted in and looks pasted on. The swap is blurred, at the model's S
# pixels, until its Laplacian variance inside the mask is at most FOCUS_MATCH times the target
# crop's (the Gaussian sigma interpolated between FOCUS_SIGMAS, in pixels of a 128 px crop);
# a face in focus, which the generator paints softer than the photo, is never blurred. Part of
# matching the target's detail: off with --detail 0 (the model's output only), and 0 = off.
# Measured: docs/swap.md "Focus".
FOCUS_MATCH: float = 1.0
FOCUS_SIGMAS: tuple[float, ...] = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
# Occluders are kept by hysteresis, as edges are in Canny's detector: a pixel whose occluder
# probability is above the first value belongs to the occluder when its 8-connected region of
# such pixels reaches above the second value somewhere. A glasses frame is found with
# confidence in places and only half-confidently (0.3-0.6) along the rest of its length; the
# segmenter's isolated soft doubts along eyes, nostrils and lips, which would keep the target's
# features and with them its identity, touch no confident occluder and stay face.
OCCLUDER_HYSTERESIS: tuple[float, float] = (0.3, 0.8)
# The kept region's edge follows the target's own edges. Where the segmenter ends a region in
# plain skin (a shadow it called hair that reaches into a lit cheek, a blurred background
# "face" half kept), a hard edge showed as a blotch with a wiggly outline next to the swap's
# differently lit skin (the child's cheek in fr_obama_and_biden.jpg, a shadow beside
# df_img59.jpg's nose, a grey square in df_img40.jpg's dark background). The weight is the
# larger of: the hard region times the target's edge strength there (its Sobel gradient, grey
# levels per pixel of a 128 px crop, full from OCCLUDER_EDGE: a glasses frame, a hand's
# outline, a microphone keep their sharp edge), and the region smoothed by a guided filter
# with the target crop as the guide (masks.guided_filter, windows of OCCLUDER_GUIDE_RADIUS of
# the crop, eps OCCLUDER_GUIDE_EPS: soft across plain skin). The guided filter alone thinned
# df_img24/25's frames (6.4 / 9.3 grey levels changed inside the marked frames, from 1.7 /
# 3.7). Radius 0 = off (the plain half-pixel blur). Measured: docs/swap.md "Occluder edges".
OCCLUDER_GUIDE_RADIUS: float = 4.0 / 128.0
OCCLUDER_GUIDE_EPS: float = 1e-3
OCCLUDER_EDGE: float = 8.0
# Beyond the frame's edge (a face the edge cuts) the crop shows the frame mirrored
# (Swapper.align), and before that showed black: the segmenter read the black border, and a
# mirrored nose and mouth, as occluders, and kept a strip of the target along the edge. Only
# occluders inside the frame count (1; 0 = everywhere, as before; docs/swap.md "Faces the
# frame cuts").
OCCLUDER_INSIDE_FRAME: float = 1.0
# An occluder region with at least this share of its pixels inside the eye zone is the eye's
# own (lid crease, eyeliner, iris behind a lens) and not kept: measured on the 81 largest faces
# of the shared photos, only such eye-local regions fall above 0.9 (7 faces, 11-59 pixels of a
# 128 crop); a hair strand, a glasses frame or a hand over an eye have most of their pixels
# outside it.
SPARE_INSIDE: float = 0.9
# ... and so is one lying as wholly inside a brow, each brow's line drawn this thick (a fraction
# of its brow-to-eye distance, masks.brow_zone): the segmenter calls a dark, sharply drawn brow
# an occluder now and then, mostly one of the two (5 of the 81 largest faces of the shared
# photos, 29-81 pixels of a 128 crop, every one of them 100 % inside the brows drawn 0.8
# thick), and kept, that one brow stayed the target's beside the swap's other. Real occluders
# over a brow (a fringe, a hat, a hand, a frame) reach beyond it: at most 56 % of any inside
# eyes and brows together.
SPARE_BROW_THICKNESS: float = 0.8
# ... and as wholly inside the mouth, its outer lip line grown by this fraction of the mouth's
# width (to the nostrils' shadow above and the smile lines at its corners): the segmenter calls
# teeth, a lip's edge, a nostril's dark curve or a smile line an occluder now and then, and
# kept, those stayed the target's (a hard black curve under Biden's nose in
# fr_obama_and_biden.jpg, a dark spot at the corner of df_img3.jpg's lips). 9 of the 82 shared
# photos change; a microphone, a hand or a glasses frame reaches beyond and stays (the marked
# occluders unchanged). Measured: docs/swap.md "Mask", occlusion.
SPARE_MOUTH_GROW: float = 0.3
# ... unless the segmenter is sure of it: a region whose largest sure core (8-connected pixels
# above the strong threshold) has at least this many pixels of a 128 px crop is kept wherever
# it lies. The face's own features it takes for occluders are doubts sure in a few pixels
# (cores of at most 29 on the 82 shared photos' largest faces, segmenter run 4); words laid over
# a mouth (a caption, a meme's line) are sure over whole letters (median 170; 43 of 52 captions
# drawn across the shared faces' mouths reach 40), and were swapped over, letters painted skin.
SPARE_SURE_CORE: float = 40.0
# Dark lenses: the segmenter calls most real sunglasses face (it learned synthetic ones), and
# the generator painted an eye inside a grey, see-through lens (15 of 22 LFW faces with
# sunglasses, with the astronaut as the source). A face whose two eyes are both darker than
# the skin below them (faces/lenses.py lens_gaps: the opening's brightest tenth, and a band
# LENS_UNDER eye widths under the eye, over the top of the cheek; the smaller gap, of the
# darker eye of the two) by LENS_GATE[0] L* keeps its target in part, from [1] fully, over the
# lens: the pixels within LENS_REACH eye widths of the eyes that are darker than that skin by
# LENS_DARK and connected to an eye (faces/lenses.py lens_zone). An open eye shows its white,
# and an eye in shade or a deep-set one has lit skin under it: of 636 faces without
# sunglasses (the shared photos' 113, 523 in LFW) 3 reach the gate, all in deep shade (two
# under a cap's brim, the child under her hair in fr_obama_and_biden.jpg), where the target's
# eyes, dark in the shade, are kept. Part of the "occlusion" mask part (0 = off); eased per
# track in a video as the eye passes are. Measured: docs/swap.md "Sunglasses kept".
LENS: float = 1.0
LENS_GATE: tuple[float, float] = (21.0, 24.0)
LENS_UNDER: tuple[float, float] = (0.2, 0.45)
LENS_REACH: float = 0.8
LENS_DARK: float = 15.0
# Blinks: a small generator keeps its eyes open when the target closes them (on talking_b the
# swap's eye aspect ratio stayed at 0.28-0.35 in the frames where the target's fell to
# 0.16-0.20: every blink and squint lost), and what it paints for a closing eye is a soft,
# half-open smear. An eye the target closes (aspect ratio under BLINK_CLOSING[0], fully from
# BLINK_CLOSING[1]) is taken from the target as far as the swap's own eye, read with its 68
# landmarks, is wider: not at all up to BLINK_GAP[0], fully from BLINK_GAP[1]; over both
# eyes' outlines, the target's grown by BLINK_GROW eye widths (docs/swap.md, "Blinks"). Open
# eyes (about 0.3) never reach the check, so the swap's eyes (identity) stay everywhere else.
# The gap was (0.05, 0.12) until session 31: dlib reads the generator's smeared eyes as nearly
# closed (0.21 against the target's 0.16), so most blink frames kept the smear or blended half
# of it over half of the target's lids, a double exposure (benchmarks/blinks.py, lid match);
# the target's eye grown by 0.35 left the smear's upper half above the lowered lids.
BLINK_CLOSING: tuple[float, float] = (0.23, 0.21)
BLINK_GAP: tuple[float, float] = (-0.01, 0.03)
BLINK_GROW: float = 0.6
# In a video or live stream an eye whose reading hovers at those limits (a long, slow closing,
# a narrow or smiling eye near 0.22) would switch between the swap's eye and the target's
# from frame to frame: per track, an eye more than half kept in the last frame is let go only
# once its reading clears the limits by BLINK_HOLD (both closing limits raised, both gap
# limits lowered by it). talking_c.mp4 frames 9-20 went kept, half, kept, half without it.
# The same hold is lent to the other eye of an eye more than half kept (a blink shuts both;
# dlib read talking_b frame 82's lids 0.208 and 0.232, and the second eye kept its smear).
BLINK_HOLD: float = 0.02
# Faces whose boxes are this close in area count as equally near (both protected).
_SAME_DEPTH: float = 1.0
# A face that is not pasted is protected by an ellipse of this size inside its detector box.
_PROTECT_SCALE: float = 0.92


@dataclass
class FaceJob:
    """One face to composite: the target crop the generator saw, its frame->crop affine, its
    5 landmarks and box in frame pixels."""

    crop: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray
    box: np.ndarray
    # What the compositor keeps from frame to frame for this face's track (a video's, a live
    # stream's: the same dict on every frame of the track); None for a still image.
    memory: dict | None = None
    # The gain the generator saw this face at (``swap/exposure.py``: a number for a dark
    # face, one per RGB channel for a face under coloured light; 1 = as it is): the colour
    # correction is fitted at that brightness and colour too.
    gain: float | np.ndarray = 1.0
    # The detector's confidence in this face (where the frame cuts the face, the swap fades
    # back to the target as it falls: faces/masks.cut_weight).
    score: float = 1.0
    # inside_frame of the crop, kept for the frame shape it was computed for.
    _inside: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def area(self) -> float:
        return box_area(self.box)

    def inside(self, frame_shape: tuple) -> np.ndarray:
        """:func:`inside_frame` of this job's crop in a frame of ``frame_shape``, computed once
        (the occlusion mask, the focus match and the colour correction each ask)."""
        key = tuple(frame_shape[:2])
        if self._inside is None or self._inside[0] != key:
            self._inside = (key, inside_frame(self.matrix, self.crop.shape[0], frame_shape))
        return self._inside[1]


def fade_weight(job: FaceJob, frame_shape: tuple, options: SwapOptions) -> float:
    """How much of ``job``'s swap is pasted (its mask's factor): 1, less for a face turned
    towards a profile (``options.profile_fade``, ``faces/masks.pose_weight``) or one the
    frame's edge cuts and the detector doubts (``options.cut_fade``, ``masks.cut_weight``)."""
    weight = masks.pose_weight(job.landmarks) if options.profile_fade else 1.0
    if options.cut_fade and weight > 0.0:
        weight *= masks.cut_weight(job.landmarks, job.box, job.score, frame_shape)
    return weight


def box_area(box) -> float:
    box = np.asarray(box, dtype=np.float64).reshape(4)
    return float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


def work_factor(matrix: np.ndarray, size: int) -> int:
    """Whole factor ``k`` so that a ``k * size`` crop samples the face at about 1:1."""
    scale = math.sqrt(abs(float(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))
    frame_pixels = 1.0 / max(scale, 1e-9)  # frame pixels per crop pixel
    limit = max(1, MAX_WORK_SIZE // size)
    return int(min(max(math.ceil(frame_pixels - 0.25), 1), limit))


def scale_affine(matrix: np.ndarray, factor: float) -> np.ndarray:
    """The frame->crop affine of a crop ``factor`` times larger (pixel centres kept:
    ``u' = factor * u + (factor - 1) / 2``, the convention of ``cv2.resize``)."""
    scaled = np.asarray(matrix, np.float64) * factor
    scaled[:, 2] += (factor - 1.0) / 2.0
    return scaled


class Compositor:
    """Builds masks and pastes swapped crops back (see the module docstring). One per Swapper:
    it holds the landmark predictor and the face segmenter, loaded on first use."""

    def __init__(self, crop_shrink: float = 1.0, timer=None) -> None:
        self.crop_shrink = float(crop_shrink)
        self.timer = timer
        self._landmarks = None
        self._segmenter = None
        self._boxes: dict[tuple, np.ndarray] = {}

    # -- tools -----------------------------------------------------------------------------
    def landmarks68(self):
        if self._landmarks is None:
            from ..faces.landmarks68 import get_landmarks68  # dlib: loaded only when needed

            self._landmarks = get_landmarks68()
        return self._landmarks

    def segmenter(self):
        if self._segmenter is None:
            try:
                from ..faces.occlusion import load_face_segmenter
            except ImportError as exc:  # pragma: no cover - the module ships with the package
                raise FacedancerError("the face segmenter is not available in this "
                                      "installation; use --mask box+hull") from exc
            self._segmenter = load_face_segmenter()
        return self._segmenter

    def box(self, size: int, options: SwapOptions) -> np.ndarray:
        key = (size, options.mask_blur, options.mask_padding)
        if key not in self._boxes:
            blur = masks.REFERENCE_BLUR if options.mask_blur is None else options.mask_blur
            self._boxes[key] = masks.box_mask(size, blur=blur, padding=options.mask_padding)
        return self._boxes[key]

    # -- masks -----------------------------------------------------------------------------
    def crop_masks(self, jobs: Sequence[FaceJob], options: SwapOptions,
                   swapped: Sequence[np.ndarray] | None = None,
                   frame_shape: tuple | None = None) -> list[np.ndarray]:
        """The mask of each job on its generator crop ``(S, S)`` before depth and pose
        (``swapped``, the generator's outputs, lets ``options.blinks`` compare the eyes;
        ``frame_shape``, the frame's: occluders count only inside it)."""
        return self._masks_and_points(jobs, options, swapped, frame_shape)[0]

    def _masks_and_points(self, jobs: Sequence[FaceJob], options: SwapOptions,
                          swapped: Sequence[np.ndarray] | None = None,
                          frame_shape: tuple | None = None
                          ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """:meth:`crop_masks` and each job's 68 landmarks on its crop (None without the
        ``hull``, ``mouth`` or ``eyes`` part, which are what read them)."""
        parts = mask_parts(options.mask)
        if not jobs:
            return [], None
        size = jobs[0].crop.shape[0]
        out = [self.box(size, options).copy() if "box" in parts
               else np.ones((size, size), np.float32) for _ in jobs]
        points = None  # 68 landmarks per job, with the face outline (dlib)
        if {"hull", "mouth", "eyes"} & set(parts):
            predictor = self.landmarks68()
            points = [predictor.on_crop(job.crop, self.crop_shrink) for job in jobs]
        if "hull" in parts:
            for index, (mask, face_points) in enumerate(zip(out, points)):
                if "box" in parts and BOX_OVER_BROWS > 0:
                    # The box's soft top never fades to the target's own brows; nothing
                    # beyond the box's reach changes (Swapper.mask: the largest mask).
                    brows = masks.brow_zone(face_points, size, BOX_OVER_BROWS)
                    if swapped is not None and BOX_OVER_BROWS_DARKER[1] > 0:
                        brows *= 1.0 - swap_darker(swapped[index], jobs[index].crop, mask,
                                                   *BOX_OVER_BROWS_DARKER)
                    np.maximum(mask, np.where(mask > 0, brows, 0.0), out=mask)
                np.minimum(mask, masks.hull_mask(face_points, size), out=mask)
            if options.blinks and swapped is not None:
                for index, mask in enumerate(out):
                    self._keep_closed_eyes(mask, points[index], swapped[index], size,
                                           jobs[index].memory)
        if "mouth" in parts or "eyes" in parts:
            # The target's own mouth / eyes: exact lip movement for dubbing, its own gaze.
            for mask, face_points in zip(out, points):
                mask *= 1.0 - masks.feature_keep(face_points, size, "mouth" in parts,
                                                 "eyes" in parts, KEEP_GROW, KEEP_SOFTEN)
        if "occlusion" in parts or "segment" in parts:
            # Only the occluder's confident part (> strong) starts a kept region; its mirrored
            # average can be that only where the plain pass is above 2 * strong - 1, so other
            # crops skip the mirrored pass (the 'segment' part uses every face map: all mirror).
            strong = OCCLUDER_HYSTERESIS[1]
            face, occluder = self.segmenter().predict(
                np.stack([job.crop for job in jobs]), mirror=True,
                mirror_above=-1.0 if "segment" in parts else 2.0 * strong - 1.0)
            for index, mask in enumerate(out):
                if "segment" in parts:
                    np.minimum(mask, face[index], out=mask)
                outside = None
                if "occlusion" in parts and frame_shape is not None and OCCLUDER_INSIDE_FRAME:
                    inside = jobs[index].inside(frame_shape)
                    occluder[index] = occluder[index] * inside
                    outside = inside < 0.5
                if "occlusion" in parts:
                    # The eyes, brows and mouth are spared where the outline's landmarks are
                    # at hand; without them (box+occlusion, segment+occlusion) occlusion
                    # needs no dlib.
                    spare = None if points is None else spared_zone(points[index], size)
                    kept = occluder_weight(occluder[index], spare, jobs[index].crop, outside)
                    np.minimum(mask, 1.0 - kept, out=mask)
                if "occlusion" in parts and points is not None and LENS > 0:
                    self._keep_dark_lenses(mask, points[index], jobs[index])
        return out, points

    def _keep_closed_eyes(self, mask: np.ndarray, target_points: np.ndarray,
                          swapped: np.ndarray, size: int, memory: dict | None = None) -> None:
        """Lower ``mask`` (in place) over each eye the target closes further than the swap
        (:func:`blink_keep`); ``memory``: the track's, in a video or live stream."""
        held = memory.get("blink") if memory is not None else None
        target_ratio = masks.eye_aspect_ratios(target_points)
        if not closing_at_all(target_ratio, held):
            if memory is not None:
                memory["blink"] = np.zeros(2)
            return
        small = at_crop_size(swapped, size)
        swap_points = self.landmarks68().on_crop(small, self.crop_shrink)
        keep = blink_keep(target_ratio, masks.eye_aspect_ratios(swap_points), held)
        if memory is not None:
            memory["blink"] = keep
        for eye in (0, 1):
            if keep[eye] > 0.0:
                # Both eyes' outlines: the swap's open eye must go, the target's closed one
                # show, with the lid band above it where the swap's eye sits higher.
                zone = np.maximum(masks.one_eye_zone(target_points, eye, size, BLINK_GROW),
                                  masks.one_eye_zone(swap_points, eye, size))
                mask *= 1.0 - keep[eye] * zone

    @staticmethod
    def _keep_dark_lenses(mask: np.ndarray, target_points: np.ndarray, job: FaceJob) -> None:
        """Lower ``mask`` (in place) over the target's own dark lenses, as far as both eyes
        read as covered (:data:`LENS_GATE`, eased along the job's track)."""
        low, high = LENS_GATE
        gap = float(np.min(lenses.lens_gaps(job.crop, target_points, LENS_UNDER)))  # NaN: none
        weight = np.array([np.clip((gap - low) / max(high - low, 1e-6), 0.0, 1.0)
                           if np.isfinite(gap) else np.nan])
        smooth = _eased(job, "lenses")
        if smooth is not None:
            weight = smooth(weight)
        amount = float(LENS * weight[0]) if np.isfinite(weight[0]) else 0.0
        if amount > 0.0:
            mask *= 1.0 - amount * lenses.lens_zone(job.crop, target_points, LENS_REACH,
                                                    LENS_DARK)

    # -- compositing -----------------------------------------------------------------------
    def composite(self, frame: np.ndarray, jobs: Sequence[FaceJob], swapped: np.ndarray,
                  options: SwapOptions, others: Sequence[np.ndarray] = (),
                  coverage: np.ndarray | None = None) -> np.ndarray:
        """Paste ``swapped`` crops (one per job) into ``frame`` (not modified); returns a copy.
        ``coverage``: an ``(H, W)`` float32 array of zeros that is filled in with how much of
        each pixel the faces replaced (the matte, ``faces.align.paste_back``), or None.

        Depth order: faces are pasted from the smallest box to the largest (larger is nearer
        in photos and videos of people), and each face's mask excludes the faces that are at
        least as near: the other jobs and ``others`` (boxes of detected faces that are not
        swapped), each as an ellipse inside its box. A neighbour's face is never overwritten;
        a face in front covers one behind it.
        """
        if not len(jobs):
            return frame
        crop_masks, points = self._masks_and_points(jobs, options, swapped, frame.shape)
        everyone = [np.asarray(job.box, np.float64) for job in jobs] + \
            [np.asarray(b, np.float64) for b in others]
        order = sorted(range(len(jobs)), key=lambda i: jobs[i].area)
        out = None  # the frame's copy, made by the first paste; later faces are pasted into it
        for index in order:
            job = jobs[index]
            weight = fade_weight(job, frame.shape, options)
            if weight <= 0.0:
                continue
            nearer = [box for j, box in enumerate(everyone)
                      if j != index and box_area(box) >= job.area * _SAME_DEPTH]
            out = self._paste_one(frame if out is None else out, job, swapped[index],
                                  crop_masks[index] * weight, nearer, options, out,
                                  None if points is None else points[index], coverage)
        if out is None:
            return frame
        # A black-and-white picture gets a grey face, not the generator's faint colours.
        return keep_monochrome(out, frame)

    def _paste_one(self, frame: np.ndarray, job: FaceJob, swapped: np.ndarray,
                   mask_s: np.ndarray, nearer: Sequence[np.ndarray],
                   options: SwapOptions, out: np.ndarray | None = None,
                   points: np.ndarray | None = None,
                   coverage: np.ndarray | None = None) -> np.ndarray:
        """Paste one face into ``frame``: into ``out`` when given (the composite's own copy of
        the frame, ``frame`` itself then), else into a new copy; returns the frame pasted
        into (``frame`` when the face's mask is empty). ``points``: the target's 68 landmarks
        on the crop, when the mask read them (the colour keeps the target's chroma in place
        inside the eyes)."""
        size = job.crop.shape[0]
        if SWAP_SHARPEN > 0:
            swapped = sharpen(swapped, SWAP_SHARPEN, SWAP_SHARPEN_SIGMA * swapped.shape[0] / 128.0)
        if FOCUS_MATCH > 0 and options.detail > 0:  # the other side of matching the detail
            # Measured where the face is pasted: beyond the frame's edge the crop shows the
            # frame mirrored, whose doubled edges (a collar across a face the edge cuts) read as
            # focus the photo does not have.
            where = (mask_s > 0.5) & (job.inside(frame.shape) > 0)
            sigma = focus_sigma(at_crop_size(swapped, size), job.crop, where)
            if sigma > 0:
                sigma *= swapped.shape[0] / size  # a pixel-boosted swap is k times larger
                swapped = cv2.GaussianBlur(swapped, (0, 0), sigmaX=sigma, sigmaY=sigma)
        factor = work_factor(job.matrix, size)
        work = size * factor
        matrix = scale_affine(job.matrix, factor) if factor > 1 else np.asarray(job.matrix)
        if factor > 1:
            swap = cv2.resize(swapped, (work, work), interpolation=cv2.INTER_CUBIC) \
                if swapped.shape[0] != work else swapped
            mask = cv2.resize(mask_s, (work, work), interpolation=cv2.INTER_LINEAR)
        else:
            swap, mask = swapped, mask_s
        if nearer:
            protect = np.zeros((work, work), np.float32)
            for box in nearer:
                polygon = transform_points(masks.ellipse_polygon(box, _PROTECT_SCALE), matrix)
                protect = np.maximum(protect, masks.polygon_mask(polygon, work))
            protect = masks.gaussian_blur(protect, 0.01 * work)
            mask = mask * (1.0 - protect)
        if float(mask.max(initial=0.0)) <= 1e-3:
            return frame if out is None else out
        if options.color_match in ("global", "local"):
            small = at_crop_size(swapped, size)
            if not is_unit(job.gain):
                # A dark face (or one under coloured light) is corrected at the brightness
                # and colour the generator saw it at: the passes' margins and gates are L*
                # differences of normally exposed faces, and L* is not proportional to the
                # light (docs/swap.md "Dark faces", "Coloured light").
                small, swap = apply_gain(small, job.gain), apply_gain(swap, job.gain)
            # Fitted at colour_fit_size, applied at S: the global transfer per pixel, the
            # smooth fields resized (ColourTransfer.apply).
            fitted = at_crop_size(small, colour_fit_size(size))
            transfer = self._colour(job, fitted, mask, frame.shape, options, points)
            swap = transfer.apply_resized(small, swap)
            if not is_unit(job.gain):
                swap = apply_gain(swap, inverse_gain(job.gain))
        if options.detail > 0:
            # The target at the work size, its borders replicated: what is pasted back is the
            # change swap - target, and a black border would brighten the frame's edge where a
            # face touches it.
            target = cv2.warpAffine(frame, matrix, (work, work), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
            source = target
            if options.detail_follow and follow.DETAIL_FOLLOW > 0 and points is not None:
                field = self._follow_field(job, swapped, points, size, work)
                if field is not None:
                    # The frame's face moved onto the swap's features (swap/follow.py), and
                    # the change taken against that.
                    source = follow.moved_crop(frame, matrix, field)
                    frame = out = follow.move_frame(frame, matrix, field, mask, out)
            # The band above half the generator's S pixels, also with pixel boost: a boosted
            # swap's extra band is real but soft, and giving it the target's band's place
            # measured less sharp (docs/swap.md).
            # Pasted as a change: where the target's detail was kept, the change is smooth and
            # the frame keeps its own pixels' detail. Pasting the pixels would resample that
            # detail twice (frame -> work crop -> frame, bilinear), which measured to halve the
            # face's Laplacian variance even with all of the target's band kept.
            change, gate, bands = detail_change(swap, source, size, options.detail,
                                                with_gate=True, points=points)
            if gate is not None and grain.GRAIN > 0 and grain.due(job.memory):
                # Where the swap's bands replaced the target's (below the split everywhere,
                # the finest one where the gate closed: eyes, brows, lips), the photo's grain
                # went with them: put grain of the photo's own kind back.
                extra = grain.missing_grain(source, swap, gate, mask, *bands)
                if extra is None:
                    grain.rest(job.memory)
                else:
                    change += np.rint(extra)
            if points is not None and brow_focus.BROW_FOCUS > 0:
                # A large face's brows where the model put them are its soft, upsampled band
                # beside sharp skin and hair: brought to the photo's focus.
                found = brow_focus.brow_focus(source + change, points, size)
                if found is not None:  # only the brows' rows change
                    rows, sharp = found
                    change[rows] += np.rint(sharp)[..., None]
            return paste_back(frame, change, matrix, mask, change=True, out=out,
                              coverage=coverage)
        return paste_back(frame, swap, matrix, mask, out=out, coverage=coverage)

    def _follow_field(self, job: FaceJob, swapped: np.ndarray, points: np.ndarray,
                      size: int, work: int) -> np.ndarray | None:
        """The ``(W, W, 2)`` displacement (work pixels) that moves the target's detail onto
        the swap's features (swap/follow.py), or None where it stays in place."""
        swap_points = self.landmarks68().on_crop(at_crop_size(swapped, size), self.crop_shrink)
        shift = follow.follow_shift(points, swap_points, size)
        if job.memory is not None and 0.0 < follow.DETAIL_FOLLOW_EASE < 1.0:
            # A misreading this frame (NaN) keeps the previous frame's eased shift.
            shift = ease(job.memory, "follow", np.full((51, 2), np.nan) if shift is None
                         else shift, follow.DETAIL_FOLLOW_EASE)
            if np.isnan(shift).any():
                return None
        if shift is None:
            return None
        return follow.follow_field(points, shift, size, work)

    def _own_brow_points(self, small: np.ndarray, points: np.ndarray) -> list:
        """Per brow, the swap's 68 landmarks (dlib on ``small``) where its brow lies within
        :data:`BROW_OWN_REACH` brow-to-eye distances of the target's (``points``), else None."""
        swap_points = self.landmarks68().on_crop(small, self.crop_shrink)
        out = []
        for brow in (0, 1):
            line = masks.brow_line(brow)
            moved = float(np.linalg.norm(swap_points[line] - points[line], axis=1).mean())
            out.append(swap_points if moved <= BROW_OWN_REACH * masks.brow_gap(points, brow)
                       else None)
        return out

    def _colour(self, job: FaceJob, small: np.ndarray, mask: np.ndarray,
                frame_shape: tuple, options: SwapOptions, points: np.ndarray | None = None):
        """The colour correction, fitted on ``small``, the swap at :func:`colour_fit_size`
        (the generator's own crop size S, at most :data:`COLOR_FIT_SIZE`), against the target
        crop at that size: statistics and the local chroma field are smooth, and fitting them
        on a work crop k times larger costs k^2 times more for the same correction.
        ``points``: the target's 68 landmarks on the S crop."""
        crop = job.crop.shape[0]
        size = small.shape[0]
        target = at_crop_size(apply_gain(job.crop, job.gain), size)
        # Where the crop lies outside the frame it shows the frame mirrored (Swapper.align):
        # no statistics there, each target pixel counts once.
        inside = at_crop_size(job.inside(frame_shape), size)
        weights = at_crop_size(mask, size) * inside
        if float(weights.sum()) < 1.0:
            return identity_transfer()
        if options.color_match != "local":
            return fit_colour(small, target, weights)
        if points is not None and size != crop:
            points = points_at_size(points, crop, size)
        similar = None
        if LOCAL_COLOR_SIMILAR_SIGMA > 0 and LOCAL_COLOR_LIGHTNESS_RANGE > 0:
            similar = (LOCAL_COLOR_SIMILAR_SIGMA * size, LOCAL_COLOR_LIGHTNESS_RANGE)
        keep = carry = brows = sources = where = None
        if points is not None:
            # The eyes' outlines (iris and white), softly: the lash line and lids take the
            # chroma of their lightness. eye_zone grows an outline by at least a pixel even at
            # grow 0; eroding by a pixel of the 128 px crop takes that back (a closing).
            eyes = masks.eye_zone(points, size, grow=0.0)
            radius = max(1, int(round(size / 128.0)))
            inner = cv2.erode(eyes.astype(np.uint8), cv2.getStructuringElement(
                cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
            keep = masks.gaussian_blur(inner.astype(np.float32), 0.5 * radius)
            if EYE_SHADOW > 0:
                shadow = eye_shadow_zone(target, points)
                if shadow is not None:
                    keep = np.maximum(keep, EYE_SHADOW * masks.gaussian_blur(shadow, radius))
            if LOCAL_COLOR_KEEP_LIPS > 0:
                lips = masks.mouth_zone(points, size, 0.0).astype(np.float32)
                keep = np.maximum(keep, LOCAL_COLOR_KEEP_LIPS * masks.gaussian_blur(
                    lips, 0.5 * radius))
            if LOCAL_COLOR_SIMILAR_ZONE > 0:
                where = masks.eye_zone(points, size, grow=LOCAL_COLOR_SIMILAR_ZONE)
                where = masks.gaussian_blur(np.maximum(where.astype(np.float32), masks.brow_zone(
                    points, size, LOCAL_COLOR_SIMILAR_BROWS)), 2.0 * radius)
            if LOCAL_COLOR_APART > 0:
                apart = masks.mouth_zone(points, size, LOCAL_COLOR_APART_GROW) | \
                    masks.nostril_zone(points, size)[0]
                sources = 1.0 - LOCAL_COLOR_APART * masks.gaussian_blur(
                    apart.astype(np.float32), 0.5 * radius)
            if LOCAL_COLOR_CARRY > 0:
                carry = (LOCAL_COLOR_CARRY, LOCAL_COLOR_CARRY_SIGMA * size)
                brows = masks.brow_zone(points, size)
        transfer = fit_colour(small, target, weights, local_sigma=LOCAL_COLOR_SIGMA * size,
                              similar=similar, keep_plain=keep, carry=carry, carry_where=brows,
                              similar_sources=sources, similar_where=where,
                              similar_darker=(LOCAL_COLOR_SIMILAR_DARKER, 8.0)
                              if LOCAL_COLOR_SIMILAR_DARKER > 0 else None,
                              similar_lighter=(LOCAL_COLOR_SIMILAR_LIGHTER, 8.0)
                              if LOCAL_COLOR_SIMILAR_LIGHTER > 0 else None)
        if CAST_SHADOW > 0:
            # Before the eye passes, which judge the eyes on the swap as it is then shaded.
            transfer = cast_shadows(transfer, small, target, inside,
                                    CAST_SHADOW_RADIUS * size, CAST_SHADOW_MARGIN, CAST_SHADOW)
        if points is not None and (BROW_DEPTH > 0 or BROW_SHELF > 0):
            # Judged on each brow's line without the eyes' zones (lids, lashes and eye make-up
            # are the eye passes' business).
            eyes = masks.eye_zone(points, size)
            swap_points = self._own_brow_points(small, points) if BROW_OWN else None
            per_brow, own = [], []
            for brow in (0, 1):
                line = masks.one_brow_zone(points, brow, size, BROW_DEPTH_THICKNESS)
                line[eyes] = 0.0
                per_brow.append((line > 0.5, line))
                mine = thin = line
                if swap_points is not None and swap_points[brow] is not None:
                    mine = masks.one_brow_zone(swap_points[brow], brow, size,
                                               BROW_DEPTH_THICKNESS)
                    thin = masks.one_brow_zone(swap_points[brow], brow, size,
                                               BROW_OWN_THICKNESS)
                    mine[eyes] = 0.0
                    thin[eyes] = 0.0
                mine = np.maximum(mine, line)  # both lines: see BROW_OWN
                own.append((mine > 0.5, mine, thin))
            if BROW_DEPTH > 0:
                transfer = brow_depth(transfer, small, target, per_brow,
                                      BROW_DEPTH_RADIUS * size, BROW_DEPTH_MARGIN,
                                      BROW_DEPTH_GAIN, BROW_DEPTH, BROW_DEPTH_SHARE,
                                      smooth=_eased(job, "brow_depth"),
                                      own=[(zone, mine) for zone, mine, _ in own])
            if BROW_SHELF > 0:
                shelves = []
                for brow, (_, line) in enumerate(per_brow):
                    gap = masks.brow_gap(points, brow)
                    rows, columns = masks.brow_window(points, brow, size, BROW_SHELF_ABOVE,
                                                      BROW_SHELF_ABOVE_LID)
                    if swap_points is not None and swap_points[brow] is not None:
                        # Wide enough for the swap's own brow too.
                        rows2, columns2 = masks.brow_window(swap_points[brow], brow, size,
                                                            BROW_SHELF_ABOVE,
                                                            BROW_SHELF_ABOVE_LID)
                        rows = slice(min(rows.start, rows2.start), max(rows.stop, rows2.stop))
                        columns = slice(min(columns.start, columns2.start),
                                        max(columns.stop, columns2.stop))
                    shelves.append(((rows, columns), line, BROW_SHELF_NEAR * gap,
                                    BROW_SHELF_REACH * gap))
                transfer = brow_shelves(transfer, small, target, shelves, BROW_DEPTH_RADIUS * size,
                                        BROW_SHELF_CORE, BROW_SHELF,
                                        own=[thin for _, _, thin in own])
        if points is not None and FOREHEAD_DARKNESS > 0:
            transfer = forehead_darkness(transfer, small, target,
                                         masks.forehead_zone(points, size, FOREHEAD_BROWS),
                                         FOREHEAD_GATE, FOREHEAD_MARGIN, FOREHEAD_DARKNESS,
                                         smooth=_eased(job, "forehead"))
        if points is not None and (EYE_DARKNESS > 0 or EYE_IRIS > 0 or EYE_WHITES > 0):
            # Both passes judged on the corrected swap (the global transfer moves lightness
            # too), per eye opening; each eases its own gate along a track.
            openings = [masks.eye_opening(points, eye, size) for eye in (0, 1)]
            if EYE_DARKNESS > 0:
                per_eye = [(opening, masks.one_eye_zone(points, eye, size, EYE_DARKNESS_GROW))
                           for eye, opening in enumerate(openings)]
                transfer = eye_darkness(transfer, small, target, per_eye, EYE_DARKNESS_GATE,
                                        EYE_DARKNESS_MARGIN, EYE_DARKNESS,
                                        smooth=_eased(job, "eye_darkness"), paired=EYE_PAIRED)
            # The iris and whites passes act inside the opening alone (softly): the lids around
            # it keep the swap's lightness (their shape is the source's).
            inside = [(opening, masks.soft_opening(opening)) for opening in openings]
            if EYE_IRIS > 0:
                # After the darkness pass, judged on what it left.
                transfer = eye_irises(transfer, small, target, inside, EYE_IRIS_GATE,
                                      EYE_IRIS_MARGIN, EYE_IRIS, smooth=_eased(job, "eye_iris"),
                                      paired=EYE_PAIRED)
            if EYE_WHITES > 0:
                transfer = eye_whites(transfer, small, target, inside, EYE_WHITES_GATE,
                                      EYE_WHITES_MARGIN, EYE_WHITES,
                                      smooth=_eased(job, "eye_whites"), paired=EYE_PAIRED)
        if points is not None and UNDER_EYE > 0:
            # After the eye passes (the lids and lash line are theirs) and before the chroma
            # follows the shading.
            under, widths = [], []
            for eye in (0, 1):
                zone, cheek = masks.under_eye_zone(points, eye, size, UNDER_EYE_TOP,
                                                   UNDER_EYE_BOTTOM, UNDER_EYE_SIDE,
                                                   UNDER_EYE_CHEEK)
                under.append((zone, cheek & (weights > 0.5)))  # cheek inside the blend
                widths.append(float(np.linalg.norm(points[39 + 6 * eye] - points[36 + 6 * eye])))
            transfer = under_eye_lightness(transfer, small, target, under,
                                           UNDER_EYE_SIGMA * float(np.mean(widths)),
                                           UNDER_EYE_GATE, UNDER_EYE_MARGIN, UNDER_EYE,
                                           smooth=_eased(job, "under_eye"))
        if points is not None and SKIN_SHADING > 0:
            # After the passes that change lightness (the nostrils' only brings a swap up to
            # the target's darkness, where this adds nothing): the chroma follows the shading.
            # Measured on the bare skin; applied to the nose's underside too, where the
            # generator's grey nose tips are (its nostrils dark in both: no change there), but
            # not above the lip: a moustache the generator paints there is hair, and took the
            # red of the target's darker skin (benchmarks/lips.py "red above the lip").
            skin = masks.skin_zone(points, size).astype(np.float32)
            soften = SKIN_SHADING_SOFTEN * size
            # The band grown by twice the softening, so that none of it leaks in.
            reach = max(1, int(round(2.0 * soften)))
            band = cv2.dilate(masks.upper_lip_band(points, size).astype(np.uint8),
                              cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
            where = masks.skin_zone(points, size, nostrils=False) & (band == 0)
            where = masks.gaussian_blur(where.astype(np.float32), soften)
            transfer = shading_chroma(transfer, small, target, skin * weights, where,
                                      LOCAL_COLOR_SIGMA * size, SKIN_SHADING)
        if points is not None and NOSTRIL_DARKNESS > 0:
            transfer = nostril_darkness(transfer, small, target,
                                        masks.nostril_zone(points, size, grow=NOSTRIL_GROW),
                                        NOSTRIL_GATE, NOSTRIL_MARGIN, NOSTRIL_DARKNESS,
                                        smooth=_eased(job, "nostrils"),
                                        percentiles=NOSTRIL_PERCENTILES)
        if points is not None and LIP_DARKNESS > 0:
            lips = masks.lip_ring(points, size)
            if lips is not None:  # None: lips too thin to judge (a small, closed mouth)
                transfer = lip_darkness(transfer, small, target, lips, LIP_GATE, LIP_MARGIN,
                                        LIP_DARKNESS, smooth=_eased(job, "lips"))
        return transfer


def _held_shift(held: np.ndarray | None, eye: int) -> float:
    """:data:`BLINK_HOLD` for an eye more than half kept in the track's last frame, else 0."""
    return BLINK_HOLD if held is not None and float(held[eye]) > 0.5 else 0.0


def closing_at_all(target_ratio: np.ndarray, held: np.ndarray | None = None) -> bool:
    """Whether either target eye is under the closing limit (raised for a held eye), so that
    the swap's eyes need reading at all."""
    return any(float(target_ratio[eye]) < BLINK_CLOSING[0] + _held_shift(held, eye)
               for eye in (0, 1))


def blink_keep(target_ratio: np.ndarray, swap_ratio: np.ndarray,
               held: np.ndarray | None = None) -> np.ndarray:
    """``(2,)`` share of each eye taken from the target: how far the target closes it
    (:data:`BLINK_CLOSING`) times how much wider the swap's is (:data:`BLINK_GAP`), from the
    two eyes' aspect ratios; ``held``: the last frame's shares of the same track
    (:data:`BLINK_HOLD`), None for a still image. An eye kept more than half holds its
    partner the same way (a blink shuts both)."""
    keep = _eye_shares(target_ratio, swap_ratio, held)
    if keep.max() > 0.5:
        # A blink shuts both eyes, but dlib reads one closed lid a little more open at times
        # (talking_b frame 82: 0.208 / 0.232, the second eye left a smear): the partner of an
        # eye kept more than half is held as if it had been kept itself. A wink's open eye
        # (about 0.3) is beyond the hold.
        keep = np.maximum(keep, _eye_shares(target_ratio, swap_ratio, np.ones(2)))
    return keep


def _eye_shares(target_ratio: np.ndarray, swap_ratio: np.ndarray,
                held: np.ndarray | None) -> np.ndarray:
    """:func:`blink_keep` for each eye alone."""
    start, full = BLINK_CLOSING
    low, high = BLINK_GAP
    keep = np.zeros(2)
    for eye in (0, 1):
        shift = _held_shift(held, eye)
        closing = (start + shift - float(target_ratio[eye])) / (start - full)
        wider = (float(swap_ratio[eye]) - float(target_ratio[eye]) - low + shift) / (high - low)
        keep[eye] = float(np.clip(closing, 0.0, 1.0)) * float(np.clip(wider, 0.0, 1.0))
    return keep


def _eased(job: FaceJob, key: str):
    """How an eye, nostril, lip, forehead, lens or under-eye pass smooths its gate for ``job``:
    :func:`ease` in the track's memory under ``key`` (a video or live stream), None for a
    still image."""
    if job.memory is None or not 0.0 < EYE_DARKNESS_EASE < 1.0:
        return None
    return partial(ease, job.memory, key, rate=EYE_DARKNESS_EASE)


def ease(memory: dict, key: str, values: np.ndarray, rate: float) -> np.ndarray:
    """``values`` moved only ``rate`` of the way from what ``memory[key]`` held (the previous
    frame's eased values), which they replace; NaN entries (not measured this frame) keep
    the previous value, and entries with no previous value are taken as they are."""
    values = np.asarray(values, np.float64)
    previous = memory.get(key)
    if previous is not None and previous.shape == values.shape:
        known = ~np.isnan(previous)
        values = np.where(np.isnan(values), previous,
                          np.where(known, previous + rate * (values - previous), values))
    memory[key] = values
    return values


def colour_fit_size(size: int) -> int:
    """The side the colour correction of an ``size`` px generator crop is fitted at."""
    return min(size, COLOR_FIT_SIZE) if COLOR_FIT_SIZE > 0 else size


def at_crop_size(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` (a square swap or mask at the work size, or already ``size``) area-averaged
    down to the generator's ``size`` x ``size`` crop; itself when it has that size."""
    if image.shape[0] == size:
        return image
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def points_at_size(points: np.ndarray, size: int, new_size: int) -> np.ndarray:
    """Landmarks on a ``size`` px square crop moved onto the same crop resized to
    ``new_size`` px, float64, pixel centres kept as cv2.resize maps them."""
    return (np.asarray(points, np.float64) + 0.5) * (new_size / size) - 0.5


def inside_frame(matrix: np.ndarray, size: int, frame_shape: tuple) -> np.ndarray:
    """``(size, size)`` float32: 1 where a pixel of the crop (frame->crop ``matrix``) comes from
    inside the frame (the nearest frame pixel exists), 0 where it lies beyond the frame's edge."""
    inverse = invert_affine(matrix)
    height, width = frame_shape[:2]
    # The crop's pixel centres map into the parallelogram of its four corners': when those lie
    # within the frame's pixel centres, every pixel rounds to a frame pixel (the usual case:
    # the face is inside the frame), and the per-pixel test below is not needed.
    last = size - 1
    corners = transform_points(np.array([[0, 0], [last, 0], [0, last], [last, last]]), inverse)
    if corners[:, 0].min() >= 0 and corners[:, 0].max() <= width - 1 and \
            corners[:, 1].min() >= 0 and corners[:, 1].max() <= height - 1:
        return np.ones((size, size), np.float32)
    u = np.arange(size, dtype=np.float64)
    grid = np.stack(np.meshgrid(u, u), axis=-1).reshape(-1, 2)
    points = np.rint(transform_points(grid, inverse))
    ok = (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & \
        (points[:, 1] < height)
    return ok.reshape(size, size).astype(np.float32)


def detail_change(swap: np.ndarray, target: np.ndarray, size: int, strength: float = 1.0,
                  with_gate: bool = False, points: np.ndarray | None = None):
    """The change to paste for a swap with the target's detail above the generator's resolution
    restored: float32 ``(W, W, 3)``, whole grey levels (``swap`` and ``target`` are ``(W, W, 3)``
    uint8 at the work size; ``size`` is the generator's crop size S).

    Two-band Laplacian split at ``DETAIL_RESOLUTION * S`` (faces smaller than
    ``DETAIL_MID_MIN_WORK * S``; larger ones: three bands, below): ``low(x)`` = down to that
    size (area average) and back up (bicubic). The detailed swap is ``low(swap) + g (target -
    low(target)) + (1 - g) (swap - low(swap))``, rounded and clipped to uint8, with the gate
    ``g`` 1 where swap and target agree at the coarse scale and 0 where their lightness
    structure (:func:`gate_gap`: shading removed) differs by more than ``DETAIL_GATE`` (times
    ``strength``): the target's fine band replaces the
    swap's own (faint, noisy: upsampled generator output) where the gate is open, so skin
    texture, hair and edges come back without the target's own brows or eyes. Since ``low`` is
    linear, with ``d = swap - target`` that minus the target is ``(1 - g) d + g low(d)``: one
    bicubic upsampling of the difference of the two coarse images the gate needs anyway.
    (tests/frozen_compose.py keeps the two-band form this replaced, which tests compare with.)

    On a work crop of ``DETAIL_MID_MIN_WORK * S`` or more the band is split once more at
    ``DETAIL_FINE_RESOLUTION * S`` (``low2``): the middle band gets its own gate ``m``
    (``DETAIL_MID_GATE`` on the same coarse lightness gap; 0, the default, closes it: that band
    is the swap's), the finest band ``g``, and the change is ``d + g (low2(d) - d) + m (low(d) -
    low2(d))`` (``low2 = low`` is the two-band form; the frozen copy keeps that form only).

    ``with_gate``: return ``(change, gate, bands)`` instead, ``gate`` the finest band's gate
    ``g`` (float32 ``(W, W)``, times ``strength``; None when the crop has no such band) and
    ``bands`` the sizes in pixels where the bands start, ``(coarse, fine)`` (equal for two
    bands): swap/grain.py puts the target's grain back where the swap's band replaced it.

    ``points``: the target's 68 landmarks on the ``(S, S)`` crop, when read; inside its brows
    the finest gate closes from :data:`DETAIL_BROW_GATE` instead of :data:`DETAIL_GATE`.
    """
    work = swap.shape[0]
    coarse = max(8, int(round(size * DETAIL_RESOLUTION)))
    fine = max(coarse, int(round(size * DETAIL_FINE_RESOLUTION)))
    if work < DETAIL_MID_MIN_WORK * size:
        fine = coarse  # the two-band split
    change = cv2.subtract(swap, target, dtype=cv2.CV_32F)
    if coarse >= work:
        return (change, None, (coarse, fine)) if with_gate else change
    # Area-averaged from float: the gate truncates these coarse images to uint8 (a uint8
    # resize would round them instead, a different gate).
    swap_small = cv2.resize(swap.astype(np.float32), (coarse, coarse),
                            interpolation=cv2.INTER_AREA)
    target_small = cv2.resize(target.astype(np.float32), (coarse, coarse),
                              interpolation=cv2.INTER_AREA)
    lightness_gap = gate_gap(swap_small, target_small)

    def gate_of(limit) -> np.ndarray:
        if np.max(limit) <= 0:
            return np.zeros((work, work, 3), np.float32)
        gate = np.clip(1.0 - lightness_gap / limit, 0.0, 1.0)
        gate = cv2.resize(masks.gaussian_blur(gate, 1.0), (work, work),
                          interpolation=cv2.INTER_LINEAR) * float(strength)
        return cv2.merge([gate] * 3)

    low = cv2.resize(swap_small - target_small, (work, work), interpolation=cv2.INTER_CUBIC)
    if fine > coarse:
        # Three bands: low2(d) from d itself (area averaging is linear, as low's); no finest
        # band on a work crop no larger than fine (low2 = d). In place, and a closed middle
        # gate costs nothing.
        low2 = masks.low_pass(change, fine)
        if DETAIL_MID_GATE > 0:
            low -= low2
            low *= gate_of(DETAIL_MID_GATE)  # m (low(d) - low2(d))
        finest = None
        if low2 is not change:
            finest = gate_of(_fine_gate_limit(points, size, coarse))
            low2 -= change
            low2 *= finest  # g (low2(d) - d)
            change += low2
        if DETAIL_MID_GATE > 0:
            change += low
    else:
        # (1 - g) d + g low(d) = d + g (low(d) - d), in place
        finest = gate_of(_fine_gate_limit(points, size, coarse))
        low -= change
        low *= finest
        change += low
    # The detailed swap in uint8: target + change rounded (ties to even) and saturated.
    out = cv2.add(target, change, dtype=cv2.CV_8U)
    change = cv2.subtract(out, target, dtype=cv2.CV_32F)
    if with_gate:
        return change, None if finest is None else finest[..., 0], (coarse, fine)
    return change


def _fine_gate_limit(points: np.ndarray | None, size: int, coarse: int):
    """The finest band's gate limit: :data:`DETAIL_GATE`, or a ``(c, c)`` map of it with
    :data:`DETAIL_BROW_GATE` inside the target's brows (``points`` on the S crop)."""
    if points is None or DETAIL_BROW_GATE <= 0 or DETAIL_BROW_GATE >= DETAIL_GATE:
        return DETAIL_GATE
    brows = masks.brow_zone(points_at_size(points, size, coarse), coarse, DETAIL_BROW_THICKNESS)
    return DETAIL_GATE + (DETAIL_BROW_GATE - DETAIL_GATE) * brows


def swap_darker(swapped: np.ndarray, target: np.ndarray, weights: np.ndarray, start: float,
                ramp: float) -> np.ndarray:
    """``(S, S)`` weight in [0, 1]: 0 where the swap (resized to the target crop's S) is at
    most ``start`` L* darker than the target, 1 from ``start + ramp``; each crop's mean
    lightness under ``weights`` taken out first (the generator's overall brightness is not a
    feature), the difference smoothed over a pixel of the 128 px crop. A larger crop is
    compared at :func:`colour_fit_size` and the weight resized (2.4 ms instead of 0.4 at 256 px
    for a map that smooth)."""
    size = target.shape[0]
    fit = colour_fit_size(size)
    swap_l = to_lab(at_crop_size(swapped, fit))[..., 0]
    target_l = to_lab(at_crop_size(target, fit))[..., 0]
    darker = target_l - swap_l
    weights = at_crop_size(weights, fit)
    total = float(weights.sum())
    if total > 0:
        darker -= float((darker * weights).sum()) / total
    darker = masks.gaussian_blur(darker, fit / 128.0)
    weight = np.clip((darker - start) / ramp, 0.0, 1.0).astype(np.float32)
    return weight if fit == size else cv2.resize(weight, (size, size),
                                                 interpolation=cv2.INTER_LINEAR)


def gate_gap(swap_small: np.ndarray, target_small: np.ndarray) -> np.ndarray:
    """The detail gate's lightness gap (Lab L units) between the coarse swap and target
    (float32 ``(c, c, 3)``, truncated to uint8 for Lab): ``|L_s - L_t|``, or with
    :data:`DETAIL_SHADING_SIGMA` each image's lightness minus its own shading first, so only a
    difference in structure (a feature that moved) closes the gate, not a smooth one."""
    light_s = to_lab(np.clip(swap_small, 0, 255).astype(np.uint8))[..., 0]
    light_t = to_lab(np.clip(target_small, 0, 255).astype(np.uint8))[..., 0]
    gap = light_s - light_t
    if DETAIL_SHADING_SIGMA > 0:
        sigma = DETAIL_SHADING_SIGMA * swap_small.shape[0]
        gap -= cv2.GaussianBlur(gap, (0, 0), sigmaX=sigma, sigmaY=sigma)
    return np.abs(gap)


def _laplacian_variance(image: np.ndarray, where: np.ndarray) -> float:
    """Variance of the grey image's 3 x 3 Laplacian over the pixels ``where`` is True."""
    grey = cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(grey, cv2.CV_32F, ksize=1)[where].var())


def focus_sigma(swap: np.ndarray, target: np.ndarray, where: np.ndarray) -> float:
    """The Gaussian sigma (pixels of the ``(S, S)`` crops) that blurs ``swap`` to the focus of
    ``target`` inside ``where``: 0 when the swap is no sharper than ``FOCUS_MATCH`` times the
    target (a face in focus); else the sigma at which its Laplacian variance falls to that,
    interpolated (in log variance) between the two :data:`FOCUS_SIGMAS` around it, so that the
    blur changes smoothly with the target's focus from frame to frame; at most the largest."""
    if int(np.count_nonzero(where)) < 64:  # too little face to judge
        return 0.0
    goal = FOCUS_MATCH * _laplacian_variance(target, where)
    scale = swap.shape[0] / 128.0
    previous_sigma, previous = 0.0, _laplacian_variance(swap, where)
    if previous <= goal:
        return 0.0
    for sigma in FOCUS_SIGMAS:
        blurred = cv2.GaussianBlur(swap, (0, 0), sigmaX=sigma * scale, sigmaY=sigma * scale)
        current = _laplacian_variance(blurred, where)
        if current <= goal:
            low, high = math.log(max(previous, 1e-6)), math.log(max(current, 1e-6))
            share = (low - math.log(max(goal, 1e-6))) / max(low - high, 1e-6)
            return (previous_sigma + share * (sigma - previous_sigma)) * scale
        previous_sigma, previous = sigma, current
    return FOCUS_SIGMAS[-1] * scale


def sharpen(image: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """Unsharp mask: ``image + amount * (image - blur(image, sigma))`` (uint8 in and out)."""
    data = image.astype(np.float32)
    blurred = cv2.GaussianBlur(data, (0, 0), sigmaX=sigma, sigmaY=sigma)
    return np.clip(np.rint(data + amount * (data - blurred)), 0, 255).astype(np.uint8)


def spared_zone(points: np.ndarray, size: int) -> np.ndarray:
    """The ``(S, S)`` bool zone where an occluder region lying almost wholly inside is the
    face's own feature, not an occluder: the eyes (:func:`masks.eye_zone`), the brows
    (:func:`masks.brow_zone` drawn :data:`SPARE_BROW_THICKNESS` thick) and the mouth
    (:func:`masks.mouth_zone` grown by :data:`SPARE_MOUTH_GROW`), from the target's 68
    landmarks ``points`` on the crop."""
    zone = masks.eye_zone(points, size)
    if SPARE_BROW_THICKNESS > 0:
        zone |= masks.brow_zone(points, size, SPARE_BROW_THICKNESS) > 0.5
    if SPARE_MOUTH_GROW > 0:
        zone |= masks.mouth_zone(points, size, SPARE_MOUTH_GROW)
    return zone


def occluder_weight(probability: np.ndarray, spare: np.ndarray | None = None,
                    guide: np.ndarray | None = None,
                    outside: np.ndarray | None = None) -> np.ndarray:
    """How much of a pixel is kept from the target for an ``(S, S)`` occluder probability map:
    1 inside the occluder found by :data:`OCCLUDER_HYSTERESIS` (grown by a pixel), 0 elsewhere,
    lightly blurred so the kept region has no hard edge; with ``guide`` (the target crop, RGB
    uint8) its edge is as sharp as the target's there and soft across plain skin
    (:data:`OCCLUDER_GUIDE_RADIUS`, :data:`OCCLUDER_EDGE`). ``spare``: an ``(S, S)`` bool zone
    (the eyes, brows and mouth, :func:`spared_zone`) where an occluder lying almost wholly inside it
    (:data:`SPARE_INSIDE` of its pixels) is not kept, unless the segmenter is sure of it
    (:data:`SPARE_SURE_CORE`) and it does not touch ``outside`` (an ``(S, S)`` bool: the
    crop beyond the frame's edge)."""
    weak, strong = OCCLUDER_HYSTERESIS
    probability = np.asarray(probability, np.float32)
    count, labels = cv2.connectedComponents((probability > weak).astype(np.uint8),
                                            connectivity=8)
    confident = np.zeros(count, bool)
    confident[np.unique(labels[probability > strong])] = True
    confident[0] = False  # label 0 is the background (below the weak threshold)
    if spare is not None:
        # Everything that really covers an eye (a hand, hair, sunglasses, a glasses frame,
        # another head) reaches well beyond it; what the segmenter finds inside an eye alone is
        # the eye's own make-up: lid creases, eyeliner, a dark iris behind a lens (inside a
        # brow alone, the brow; inside the mouth alone, teeth, a nostril's shadow, a smile
        # line). Kept, the target's lid line sits on the swapped eye (one eye only, as often
        # as not).
        total = np.bincount(labels.ravel(), minlength=count)
        inside = np.bincount(labels[spare], minlength=count)
        within = confident & (inside >= SPARE_INSIDE * np.maximum(total, 1))
        if within.any():
            # ... unless it is sure of it: each region's largest sure core. Letters are sure
            # over whole strokes, the doubts at teeth, lids and brows only in specks
            # (SPARE_SURE_CORE). Measured only when a region would be spared (most faces have
            # none).
            cores_n, cores = cv2.connectedComponents((probability > strong).astype(np.uint8),
                                                     connectivity=8)
            core_size = np.bincount(cores.ravel(), minlength=cores_n)
            region_of = np.zeros(cores_n, np.int64)
            region_of[cores.ravel()] = labels.ravel()  # a core lies inside one region
            largest = np.zeros(count, np.int64)
            np.maximum.at(largest, region_of[1:], core_size[1:])
            sure = largest >= SPARE_SURE_CORE * (probability.shape[0] / 128.0) ** 2
            if outside is not None and outside.any():
                # Beyond a frame's cut edge the crop shows the frame mirrored, which folds a
                # mouth or an eye at the seam into a shape the segmenter is sure of
                # (df_img1.jpg cut through the face: the lips at the cut kept, 8.5 grey levels
                # from the whole photo's swap along the edge instead of 5.9). Captions seldom
                # meet a cut edge.
                seam = cv2.dilate(outside.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
                sure[np.unique(labels[seam])] = False
            confident &= ~within | sure
    weight = confident[labels].astype(np.float32)
    # Grown by one pixel of a 128 px crop before the blur: the segmenter's edge lies inside
    # the occluder's (a 2-3 px glasses frame lost its rim to the blend: 5.3 / 6.8 grey levels
    # changed inside the frames of df_img24 / df_img25, 1.6 / 2.3 grown).
    radius = max(1, int(round(weight.shape[0] / 128.0)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    weight = cv2.dilate(weight, disc)
    hard = masks.gaussian_blur(weight, max(0.5, weight.shape[0] / 256.0))
    guide_radius = int(round(OCCLUDER_GUIDE_RADIUS * weight.shape[0]))
    if guide is None or guide_radius < 1 or not weight.any():
        return hard
    # The target's edge strength: Sobel / 8 is grey levels per pixel; scaled to a 128 px crop
    # so that OCCLUDER_EDGE means the same on every crop size, and smoothed a little so that
    # a frame's pixels between its two edges count as edge too.
    grey = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY).astype(np.float32)
    scale = weight.shape[0] / 128.0
    edge = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3),
                    cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)) * np.float32(scale / 8.0)
    sharp = np.clip(masks.gaussian_blur(edge, scale) / OCCLUDER_EDGE, 0.0, 1.0)
    soft = masks.guided_filter(weight, guide, guide_radius, OCCLUDER_GUIDE_EPS)
    return np.maximum(sharp * hard, soft)


def eye_shadow_zone(target: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """The target's eye shadow on its ``(S, S, 3)`` crop (``points``: its 68 landmarks there),
    weighted 0-1, with this module's constants (faces/color.py ``eye_shadow_weight``); None
    without skin to compare with."""
    return eye_shadow_weight(target, points, EYE_SHADOW_GROW, EYE_SHADOW_CHROMA,
                             EYE_SHADOW_SATURATION, EYE_SHADOW_DARK)
