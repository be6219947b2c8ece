"""The moving-shapes videos, mirrored from lib/data/shapes.ts (the TypeScript generator is the
specification; test/data/shapes.test.ts checks a fixture written by this file against it).

Everything here is deterministic: the same seed gives the same caption and, in float64, the same
pixels as the TypeScript side (only +, -, *, /, sqrt, floor and comparisons touch the pixels).
"""
import math
import numpy as np

M32 = 0xFFFFFFFF


def imul(a, b):
    return ((a & M32) * (b & M32)) & M32


def rotl(x, k):
    x &= M32
    return ((x << k) | (x >> (32 - k))) & M32


def hash_string(s):
    """FNV-1a over UTF-16 code units (ASCII here), as lib/model/random.ts hashString."""
    h = 0x811C9DC5
    for ch in s.encode('utf-16-le').decode('utf-16-le'):
        for unit in _utf16_units(ch):
            h ^= unit
            h = imul(h, 0x01000193)
    return h & M32


def _utf16_units(ch):
    b = ch.encode('utf-16-le')
    return [b[i] | (b[i + 1] << 8) for i in range(0, len(b), 2)]


class Rng:
    """xoshiro128** seeded by splitmix32, Box-Muller normals: lib/model/random.ts Rng."""

    def __init__(self, seed):
        h = hash_string(seed) if isinstance(seed, str) else seed & M32
        state = []
        for _ in range(4):
            h = (h + 0x9E3779B9) & M32
            z = h
            z = imul(z ^ (z >> 16), 0x85EBCA6B)
            z = imul(z ^ (z >> 13), 0xC2B2AE35)
            state.append((z ^ (z >> 16)) & M32)
        self.s = state
        self.spare = None

    def next_uint32(self):
        s0, s1, s2, s3 = self.s
        result = imul(rotl(imul(s1, 5), 7), 9)
        t = (s1 << 9) & M32
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 11)
        self.s = [s0, s1, s2, s3]
        return result

    def uniform(self):
        return self.next_uint32() / 4294967296.0

    def normal(self):
        if self.spare is not None:
            s = self.spare
            self.spare = None
            return s
        u = 1 - self.uniform()
        v = self.uniform()
        r = math.sqrt(-2 * math.log(u))
        self.spare = r * math.sin(2 * math.pi * v)
        return r * math.cos(2 * math.pi * v)

    def below(self, n):
        return math.floor(self.uniform() * n)


def encode_prompt(prompt, text_len, text_dim):
    """lib/model/weights.ts encodePrompt: each word hashed to its own unit normals, zero padding."""
    import re
    words = [w for w in re.split(r'[^0-9a-zA-Z]+', prompt.lower()) if w][:text_len]
    out = np.zeros((text_len, text_dim), dtype=np.float32)
    for i, w in enumerate(words):
        rng = Rng(hash_string(w))
        out[i] = np.array([rng.normal() for _ in range(text_dim)], dtype=np.float64).astype(np.float32)
    return out


SIZE = 32
FRAMES = 21
BACKGROUND = (0.1, 0.1, 0.12)
COLOURS = [
    ('red', (0.95, 0.15, 0.15)),
    ('green', (0.15, 0.85, 0.2)),
    ('blue', (0.2, 0.35, 1.0)),
    ('yellow', (0.95, 0.9, 0.1)),
    ('cyan', (0.1, 0.85, 0.95)),
    ('magenta', (0.9, 0.2, 0.9)),
]
SHAPES = ['disc', 'square']
DIRECTIONS = [('left', -1, 0), ('right', 1, 0), ('up', 0, -1), ('down', 0, 1)]
CHANGE_FRAME = 12


def fold(x, lo, hi):
    """x reflected into [lo, hi] (a ball bouncing between walls)."""
    L = hi - lo
    y = (x - lo) - 2 * L * math.floor((x - lo) / (2 * L))
    return lo + (y if y <= L else 2 * L - y)


def scene(seed):
    """The parameters of video `seed`, drawn in the order of lib/data/shapes.ts shapeScene."""
    rng = Rng(seed)
    colour = rng.below(len(COLOURS))
    shape = rng.below(len(SHAPES))
    motion = rng.below(5)
    radius = 3.5 + rng.uniform() * 1.0
    change = None
    if rng.uniform() < 0.25:
        change = {'colour': (colour + 1 + rng.below(len(COLOURS) - 1)) % len(COLOURS), 'frame': CHANGE_FRAME}
    lo, hi = radius, SIZE - radius
    centres = []
    if motion < 4:
        _, dx, dy = DIRECTIONS[motion]
        speed = 0.8 + rng.uniform() * 0.2
        # From next to the wall it leaves, across the frame; across the motion, near the middle.
        offset = 1 + rng.uniform()
        across = SIZE / 2 + (rng.uniform() - 0.5) * 4
        start = lo + offset if (dx + dy) > 0 else hi - offset
        for f in range(FRAMES):
            a = start + (dx + dy) * speed * f
            centres.append((a, across) if dx != 0 else (across, a))
    else:
        # Right and down from near the top right, off the right wall within 6 frames.
        vx = 1.6 + rng.uniform() * 0.4
        vy = 0.8 + rng.uniform() * 0.4
        x0 = hi - (7 + rng.uniform() * 2)
        y0 = lo + 3 + rng.uniform() * 2
        for f in range(FRAMES):
            centres.append((fold(x0 + vx * f, lo, hi), fold(y0 + vy * f, lo, hi)))
    words = ['a', COLOURS[colour][0], SHAPES[shape]]
    words += ['bouncing'] if motion == 4 else ['moving', DIRECTIONS[motion][0]]
    if change:
        words += ['turning', COLOURS[change['colour']][0]]
    return {
        'seed': seed, 'caption': ' '.join(words), 'colour': colour, 'shape': shape, 'motion': motion,
        'radius': radius, 'change': change, 'centres': centres,
    }


def render(sc):
    """RGB frames [FRAMES, 3, SIZE, SIZE] in [0, 1], float64."""
    out = np.empty((FRAMES, 3, SIZE, SIZE), dtype=np.float64)
    p = np.arange(SIZE, dtype=np.float64) + 0.5
    r = sc['radius']
    half = r * 0.886
    for f in range(FRAMES):
        cx, cy = sc['centres'][f]
        if sc['shape'] == 0:
            ddx = p[None, :] - cx
            ddy = p[:, None] - cy
            dist = np.sqrt(ddx * ddx + ddy * ddy)
            alpha = np.clip(r + 0.5 - dist, 0.0, 1.0)
        else:
            ax = np.clip(half + 0.5 - np.abs(p[None, :] - cx), 0.0, 1.0)
            ay = np.clip(half + 0.5 - np.abs(p[:, None] - cy), 0.0, 1.0)
            alpha = ay * ax
        ci = sc['change']['colour'] if sc['change'] and f >= sc['change']['frame'] else sc['colour']
        col = COLOURS[ci][1]
        for ch in range(3):
            out[f, ch] = BACKGROUND[ch] * (1 - alpha) + col[ch] * alpha
    return out


def to_latents(rgb):
    """[F, 3, 32, 32] pixels in [0, 1] to latents [F, 48, 8, 8]: 2 p - 1, then a 4 x 4 space-to-depth
    (channel c * 16 + 4 i + j of latent pixel (y, x) is pixel (4 y + i, 4 x + j) of colour c)."""
    x = 2 * rgb - 1
    F = x.shape[0]
    x = x.reshape(F, 3, SIZE // 4, 4, SIZE // 4, 4).transpose(0, 1, 3, 5, 2, 4)
    return x.reshape(F, 48, SIZE // 4, SIZE // 4)


def from_latents(lat):
    F = lat.shape[0]
    x = lat.reshape(F, 3, 4, 4, SIZE // 4, SIZE // 4).transpose(0, 1, 4, 2, 5, 3).reshape(F, 3, SIZE, SIZE)
    return (x + 1) / 2
