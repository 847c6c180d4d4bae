"""The embedded generator's drawing (:mod:`cartoon_vae.synthetic`): one face from its attributes, with Pillow.

A face is drawn at ``SS`` times its ``SIZE`` and box-filtered down, which gives anti-aliased dark outlines like
the real set's. Every attribute visibly changes the image.

Example:
    >>> import numpy as np
    >>> from cartoon_vae.synthetic_attributes import sample_attributes
    >>> from cartoon_vae.synthetic_drawing import render
    >>> render(sample_attributes(np.random.default_rng(0))).size
    (500, 500)
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .synthetic_attributes import GLASSES, GLASSES_STYLES, HAIR, IRIS, SKIN

SIZE = 500
SS = 2  # supersampling factor: draw at 1000x1000, downsample to 500x500
OUTLINE = (25, 20, 20, 255)


def _s(v):
    """500-pixel coordinates to the supersampled canvas."""
    return v * SS


def _chaikin(points, rounds=3):
    """Smooth a closed polygon by corner cutting."""
    p = np.asarray(points, float)
    for _ in range(rounds):
        q = np.roll(p, -1, axis=0)
        p = np.stack([0.75 * p + 0.25 * q, 0.25 * p + 0.75 * q], axis=1).reshape(-1, 2)
    return [tuple(map(float, xy)) for xy in p]


def _w(v):
    """A line width in 500-pixel units, as an integer on the supersampled canvas."""
    return int(round(v * SS))


def _darker(rgb, f=0.55):
    return tuple(int(c * f) for c in rgb[:3]) + (255,)


def _rgba(rgb, a=255):
    return tuple(rgb[:3]) + (a,)


def _outlined(draw, points, fill, outline=OUTLINE, width=3.0):
    pts = [(_s(x), _s(y)) for x, y in points]
    draw.polygon(pts, fill=fill)
    draw.line(pts + [pts[0]], fill=outline, width=_w(width), joint="curve")


def _translucent(img, points, rgba, line_width=0):
    """A translucent polygon (or, with ``line_width``, an open line), alpha-composited onto ``img``.

    ImageDraw writes RGBA ink straight into an RGBA image instead of blending it.
    """
    pad = _w(line_width) + 2
    x0 = max(int(min(x for x, _ in points) * SS) - pad, 0)
    y0 = max(int(min(y for _, y in points) * SS) - pad, 0)
    x1 = min(int(max(x for x, _ in points) * SS) + pad, img.width)
    y1 = min(int(max(y for _, y in points) * SS) + pad, img.height)
    layer = Image.new("RGBA", (x1 - x0, y1 - y0), (0, 0, 0, 0))
    pts = [(_s(x) - x0, _s(y) - y0) for x, y in points]
    if line_width:
        ImageDraw.Draw(layer).line(pts, fill=rgba, width=_w(line_width), joint="curve")
    else:
        ImageDraw.Draw(layer).polygon(pts, fill=rgba)
    img.alpha_composite(layer, dest=(x0, y0))


def _ellipse_pts(cx, cy, rx, ry, a0=0.0, a1=2 * math.pi, n=48):
    t = np.linspace(a0, a1, n)
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in t]


class _Face:
    """The geometry of one face, in 500-pixel coordinates."""

    JAWS = [  # right half of the jaw, (x as a fraction of the half width, y as a fraction of temple->chin)
        [(1.0, 0), (0.97, 0.35), (0.8, 0.7), (0.45, 0.93), (0, 1)],      # oval
        [(1.0, 0), (1.03, 0.3), (0.95, 0.65), (0.62, 0.93), (0, 1)],     # round
        [(1.0, 0), (1.0, 0.5), (0.97, 0.85), (0.72, 1.0), (0, 1)],       # square
        [(1.0, 0), (0.93, 0.3), (0.6, 0.72), (0.18, 0.96), (0, 1)],      # heart
        [(0.9, 0), (0.88, 0.5), (0.72, 0.82), (0.38, 0.97), (0, 1)],     # long
        [(1.0, 0), (1.07, 0.5), (0.98, 0.82), (0.55, 0.98), (0, 1)],     # wide jaw
        [(0.92, 0), (1.06, 0.25), (0.72, 0.7), (0.28, 0.94), (0, 1)],    # diamond
    ]

    def __init__(self, a):
        self.a = a
        self.cx = 250.0
        self.top = 122.0
        self.temple = 238.0
        self.hw = [100, 106, 104, 100, 92, 108, 98][a["face_shape"]]
        self.chin = 372.0 + 16 * a["chin_length"] + (14 if a["face_shape"] == 4 else 0)
        self.eye_y = 262.0
        self.mouth_y = self.eye_y + 70 + 6 * a["chin_length"]
        self.skin = SKIN[a["face_color"]]
        self.hair = HAIR[a["hair_color"]]

    def outline(self):
        cx, hw = self.cx, self.hw
        top = _ellipse_pts(cx, self.temple, hw * self.JAWS[self.a["face_shape"]][0][0], self.temple - self.top,
                           math.pi, 2 * math.pi, 24)
        jaw = [(cx + hw * fx, self.temple + (self.chin - self.temple) * fy)
               for fx, fy in self.JAWS[self.a["face_shape"]]]
        right = jaw[1:]
        left = [(2 * cx - x, y) for x, y in reversed(jaw[1:-1])]
        return _chaikin(top + right + left, 3)


def _draw_ears(d, f):
    for side in (-1, 1):
        ex = f.cx + side * (f.hw * 0.95 + 4)
        _outlined(d, _ellipse_pts(ex, f.temple + 40, 20, 30), _rgba(f.skin))
        d.arc([_s(ex - 9), _s(f.temple + 24), _s(ex + 9), _s(f.temple + 56)],
              90 - 70 * side, 90 + 70 * side, fill=_darker(f.skin, 0.7), width=_w(2))


def _hair_cap(f, pad=10, depth=70.0, wave=0.0):
    """Hair over the top of the head, down to the temples, closed along an arched (possibly wavy) hairline."""
    rx = f.hw * f.JAWS[f.a["face_shape"]][0][0] + pad
    arc = _ellipse_pts(f.cx, f.temple, rx, f.temple - f.top + pad, math.pi, 2 * math.pi, 30)
    theta = np.linspace(0, math.pi, 15)
    line = [(f.cx + (rx - pad - 3) * math.cos(t), f.temple + 4 - depth * math.sin(t) ** 0.6 + wave * math.sin(6 * t))
            for t in theta]
    return arc + line


def _draw_hair_back(d, f, style):
    col, out = _rgba(f.hair), _darker(f.hair, 0.5)
    cx, hw = f.cx, f.hw
    if style == 4:    # long straight
        _outlined(d, _chaikin([(cx - hw - 22, 200), (cx - hw - 18, 440), (cx + hw + 18, 440),
                               (cx + hw + 22, 200), (cx, 95)], 2), col, out)
    elif style == 5:  # bob
        _outlined(d, _chaikin([(cx - hw - 25, 190), (cx - hw - 28, 345), (cx + hw + 28, 345),
                               (cx + hw + 25, 190), (cx, 95)], 2), col, out)
    elif style == 6:  # afro
        _outlined(d, _ellipse_pts(cx, 215, hw + 65, 130, n=60), col, out)
    elif style == 7:  # pigtails
        for side in (-1, 1):
            for k in range(4):
                _outlined(d, _ellipse_pts(cx + side * (hw + 40 + 4 * k), 170 + 34 * k, 24 - 2 * k, 20), col, out)
    elif style == 11:  # long wavy
        pts = [(cx, 90)]
        for k in range(9):
            pts.append((cx + hw + 28 + 10 * math.sin(k * 1.3), 160 + 32 * k))
        pts += [(cx - x + cx, y) for x, y in reversed(pts[1:])]
        _outlined(d, _chaikin(pts, 2), col, out)


def _draw_hair_front(img, d, f, style):
    col, out = _rgba(f.hair), _darker(f.hair, 0.5)
    cx, hw = f.cx, f.hw
    if style == 0:   # bald: a shine on the scalp
        d.arc([_s(cx - 40), _s(f.top + 14), _s(cx + 20), _s(f.top + 50)], 200, 290,
              fill=(255, 255, 255, 120), width=_w(4))
        return
    if style == 1:   # buzz cut: a thin cap
        _outlined(d, _hair_cap(f, pad=2, depth=82), col, out, 2.5)
    elif style == 8:  # mohawk
        _outlined(d, _chaikin([(cx - 18, f.temple - 70), (cx - 24, f.top - 30), (cx, f.top - 60),
                               (cx + 24, f.top - 30), (cx + 18, f.temple - 70)], 2), col, out)
    else:
        wave = {6: 6.0, 7: 5.0, 11: 7.0}.get(style, 2.0)
        _outlined(d, _hair_cap(f, pad=12, depth=72, wave=wave), col, out)
    if style == 3:   # side part: a swoop across the forehead
        _outlined(d, _chaikin([(cx - hw - 8, f.temple - 30), (cx - 30, f.top - 6), (cx + hw + 8, f.temple - 50),
                               (cx + 40, f.temple - 30), (cx - 20, f.temple - 14)], 2), col, out)
    elif style == 5:  # bob: a straight fringe
        _outlined(d, [(cx - hw, f.temple - 60), (cx + hw, f.temple - 60), (cx + hw - 4, f.temple - 12),
                      (cx - hw + 4, f.temple - 12)], col, out)
    elif style == 9:  # bun
        _outlined(d, _ellipse_pts(cx, f.top - 22, 34, 30), col, out)
    elif style == 10:  # spiky
        for k in range(-3, 4):
            x = cx + 26 * k
            _outlined(d, [(x - 16, f.top + 14 + abs(k) * 6), (x, f.top - 36 + abs(k) * 10),
                          (x + 16, f.top + 14 + abs(k) * 6)], col, out, 2.5)
    elif style == 2:  # short crop: a few strands
        for k in (-1, 0, 1):
            d.arc([_s(cx + 30 * k - 20), _s(f.top + 10), _s(cx + 30 * k + 20), _s(f.top + 50)], 200, 320,
                  fill=out, width=_w(2))


def _beard_region(f, y0):
    pts = [(x, y) for x, y in f.outline() if y >= y0]
    pts.sort(key=lambda p: math.atan2(p[1] - y0, p[0] - f.cx))
    inner = [(f.cx + 34, f.mouth_y - 14), (f.cx, f.mouth_y - 20), (f.cx - 34, f.mouth_y - 14)]
    return pts[::-1] + inner


def _draw_facial_hair(img, d, f, style):
    col = _rgba(f.hair)
    out = _darker(f.hair, 0.5)
    cx, my = f.cx, f.mouth_y
    if style == 0:    # full beard
        _outlined(d, _beard_region(f, f.eye_y + 30), col, out)
    elif style == 1:  # goatee
        _outlined(d, _chaikin([(cx - 26, my + 10), (cx + 26, my + 10), (cx + 16, f.chin + 12),
                               (cx - 16, f.chin + 12)], 2), col, out)
    elif style == 3:  # chin strap
        _outlined(d, _beard_region(f, f.eye_y + 55)[:-3] + [(cx, f.chin - 22)], col, out)
    elif style == 4:  # stubble
        _translucent(img, _beard_region(f, f.eye_y + 30), _rgba(f.hair, 110))
    if style in (0, 2):  # moustache
        _outlined(d, _chaikin([(cx - 38, my - 6), (cx - 10, my - 24), (cx, my - 18), (cx + 10, my - 24),
                               (cx + 38, my - 6), (cx, my - 12)], 2), col, out, 2.5)


def _draw_mouth_nose(d, f):
    cx, my = f.cx, f.mouth_y
    d.arc([_s(cx - 12), _s(f.eye_y + 30), _s(cx + 12), _s(f.eye_y + 48)], 20, 160,
          fill=_darker(f.skin, 0.45), width=_w(2.5))
    mouth = [(cx - 30 + 60 * t, my - 4 + 5 * math.sin(math.pi * t)) for t in np.linspace(0, 1, 10)]
    mouth += [(cx + 30 - 60 * t, my - 2 + 22 * math.sin(math.pi * t)) for t in np.linspace(0, 1, 12)]
    _outlined(d, mouth, (255, 255, 255, 255), OUTLINE, 2.5)


def _eye_shape(f, side):
    """The almond of one eye; side -1 is the viewer's left."""
    a = f.a
    ex, ey = f.cx + side * 46, f.eye_y
    slant = (a["eye_slant"] - 1) * 6.0          # outer corner up (2) or down (0)
    angle = math.radians((a["eye_angle"] - 1) * 10.0) * side
    pts = []
    for t in np.linspace(-1, 1, 14):
        pts.append((t * 24, -15 * math.sqrt(max(0.0, 1 - t * t)) - slant * (t * side > 0) * abs(t)))
    for t in np.linspace(1, -1, 14):
        pts.append((t * 24, 11 * math.sqrt(max(0.0, 1 - t * t)) - slant * (t * side > 0) * abs(t)))
    c, s = math.cos(angle), math.sin(angle)
    return [(ex + x * c - y * s, ey + x * s + y * c) for x, y in pts], (ex, ey)


def _draw_eyes(img, f):
    a = f.a
    for side in (-1, 1):
        pts, (ex, ey) = _eye_shape(f, side)
        spts = [(_s(x), _s(y)) for x, y in pts]
        ox, oy = _s(ex - 40), _s(ey - 40)  # the eye is drawn in an 80x80 box, then pasted through its almond
        local = [(x - ox, y - oy) for x, y in spts]
        layer = Image.new("RGBA", (_s(80), _s(80)), (0, 0, 0, 0))
        ld = ImageDraw.Draw(layer)
        ld.polygon(local, fill=(245, 245, 245, 255))
        c, r = _s(40), _s(11.5)
        ld.ellipse([c - r, c - r, c + r, c + r], fill=_rgba(IRIS[a["eye_color"]]))
        ld.ellipse([c - _s(5), c - _s(5), c + _s(5), c + _s(5)], fill=(20, 15, 15, 255))
        ld.ellipse([c + _s(2), c - _s(6), c + _s(6), c - _s(2)], fill=(255, 255, 255, 255))
        if a["eye_lid"]:
            ld.rectangle([c - _s(30), c - _s(30), c + _s(30), c - _s(5)], fill=_rgba(_darker(f.skin, 0.9)))
            ld.line([(c - _s(24), c - _s(5)), (c + _s(24), c - _s(5))], fill=OUTLINE, width=_w(2))
        mask = Image.new("L", layer.size, 0)
        ImageDraw.Draw(mask).polygon(local, fill=255)
        img.paste(layer, (int(ox), int(oy)), mask)
        d = ImageDraw.Draw(img)
        d.line(spts + [spts[0]], fill=OUTLINE, width=_w(2.5), joint="curve")
        if a["eye_lashes"]:
            ox, oy = pts[0] if side < 0 else pts[13]
            for k in range(3):
                d.line([(_s(ox), _s(oy - 2 * k)), (_s(ox + side * 9), _s(oy - 7 - 4 * k))], fill=OUTLINE,
                       width=_w(2.5))


BROWS = [  # centre line of the eyebrow: y offsets at t = 0 (inner) .. 1 (outer)
    lambda t: 0 * t,                              # straight
    lambda t: -10 * math.sin(math.pi * t),        # arched
    lambda t: -12 * t,                            # rising
    lambda t: 8 * t,                              # falling
    lambda t: -10 * math.sin(math.pi * t * 0.7),  # soft peak, outer third
    lambda t: -14 * (1 - abs(2 * t - 1.2)),       # angular peak
    lambda t: -6 * math.sin(2 * math.pi * t),     # S-curve
    lambda t: 6 * math.sin(math.pi * t) - 6 * t,  # low arch
]


def _draw_brows(d, f):
    a = f.a
    width = [38, 48, 58][a["eyebrow_width"]]
    thick = [4, 6, 8, 11][a["eyebrow_thickness"]]
    colour = _darker(f.hair, [0.8, 0.45][a["eyebrow_weight"]])
    base_y = f.eye_y - [24, 32, 40][a["eye_eyebrow_distance"]]
    shape = BROWS[a["eyebrow_shape"]]
    for side in (-1, 1):
        x0 = f.cx + side * 20
        ts = np.linspace(0, 1, 12)
        upper = [(x0 + side * width * t, base_y + shape(t) - thick / 2 * (1 - 0.5 * t)) for t in ts]
        lower = [(x0 + side * width * t, base_y + shape(t) + thick / 2 * (1 - 0.5 * t)) for t in ts[::-1]]
        d.polygon([(_s(x), _s(y)) for x, y in upper + lower], fill=colour)


def _draw_glasses(img, d, f, style):
    """Bold frames as in the real set (about 9 px at 500, so still 1-2 px at a 64-px model size),
    lenses lightly tinted with the frame colour; the aviators are dark sunglasses."""
    a = f.a
    colour = _rgba(GLASSES[a["glasses_color"]])
    lens = colour[:3] + (60,)
    w = _w(9)
    for side in (-1, 1):
        ex, ey = f.cx + side * 46, f.eye_y
        tint = lens
        if style == 0:    # round
            pts = _ellipse_pts(ex, ey, 28, 26)
        elif style == 1:  # square, rounded corners
            pts = _chaikin([(ex - 32, ey - 22), (ex + 32, ey - 22), (ex + 32, ey + 22), (ex - 32, ey + 22)], 2)
        elif style == 2:  # cat-eye
            pts = _chaikin([(ex - side * 30, ey - 14), (ex + side * 38, ey - 26), (ex + side * 30, ey + 18),
                            (ex - side * 26, ey + 18)], 2)
        elif style == 3:  # narrow rectangles
            pts = _chaikin([(ex - 30, ey - 16), (ex + 30, ey - 16), (ex + 30, ey + 18), (ex - 30, ey + 18)], 1)
        else:             # big dark aviator sunglasses
            pts = _chaikin([(ex - 30, ey - 22), (ex + 30, ey - 22), (ex + 26, ey + 22), (ex, ey + 34),
                            (ex - 26, ey + 22)], 2)
            tint = _darker(colour, 0.25)[:3] + (225,)
        _translucent(img, pts, tint)
        spts = [(_s(x), _s(y)) for x, y in pts]
        d.line(spts + [spts[0]], fill=colour, width=_w(6) if style == 3 else w, joint="curve")
        d.line([(_s(ex + side * 28), _s(ey - 8)), (_s(f.cx + side * (f.hw + 6)), _s(ey - 12))], fill=colour, width=w)
    d.arc([_s(f.cx - 18), _s(f.eye_y - 16), _s(f.cx + 18), _s(f.eye_y + 4)], 200, 340, fill=colour, width=w)


def render(attributes: dict) -> Image.Image:
    """Draw one face: a 500x500 RGBA image with a transparent background."""
    a = attributes
    f = _Face(a)
    img = Image.new("RGBA", (_s(SIZE), _s(SIZE)), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    _draw_hair_back(d, f, a["hair"])
    _draw_ears(d, f)
    _outlined(d, f.outline(), _rgba(f.skin))
    _draw_facial_hair(img, d, f, a["facial_hair"])
    _draw_mouth_nose(d, f)
    _draw_eyes(img, f)
    _draw_brows(d, f)
    _draw_hair_front(img, d, f, a["hair"])
    if a["glasses"] != len(GLASSES_STYLES) - 1:
        _draw_glasses(img, d, f, a["glasses"])
    return img.reduce(SS)  # box-filter downsampling: the anti-aliasing
