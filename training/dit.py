"""The causal DiT of lib/model/dit.ts in PyTorch (Wan2.1's structure and parameter names), with the
chunk-causal training attention of teacher forcing: every chunk is denoised while attending to the
clean earlier chunks, whose keys and values are computed at timestep 0, as the library's KV cache
holds them after each chunk's cache pass. test/model/trained.test.ts checks a fixture written by
training/fixtures.py (a random model's flow for one chunk after a committed one) against the library.
"""
import math
import torch
import torch.nn as nn
import torch.nn.functional as F


def rope_split(head_dim):
    s = head_dim // 6
    return [head_dim - 4 * s, 2 * s, 2 * s]


def rope_tables(head_dim, frames, hp, wp, start_frame=0, theta=10000.0):
    """cos, sin [tokens, head_dim / 2] for tokens ordered (frame, row, column)."""
    parts = rope_split(head_dim)
    f = torch.arange(frames, dtype=torch.float64) + start_frame
    r = torch.arange(hp, dtype=torch.float64)
    c = torch.arange(wp, dtype=torch.float64)
    ff, rr, cc = torch.meshgrid(f, r, c, indexing='ij')
    pos = [ff.reshape(-1), rr.reshape(-1), cc.reshape(-1)]
    angles = []
    for p, ps in zip(parts, pos):
        w = theta ** (-2 * torch.arange(p // 2, dtype=torch.float64) / p)
        angles.append(ps[:, None] * w[None, :])
    a = torch.cat(angles, 1)
    return torch.cos(a).float(), torch.sin(a).float()


def apply_rope(x, cos, sin, heads):
    # x [B, T, dim] -> pairs (2i, 2i+1) within each head rotated by the angle of pair i
    B, T, D = x.shape
    d = D // heads
    x = x.view(B, T, heads, d // 2, 2)
    a, b = x[..., 0], x[..., 1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    out = torch.stack([a * c - b * s, a * s + b * c], -1)
    return out.view(B, T, D)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Attn(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)


def attend(q, k, v, heads, mask=None):
    B, T, D = q.shape
    d = D // heads
    q = q.view(B, T, heads, d).transpose(1, 2)
    k = k.view(B, k.shape[1], heads, d).transpose(1, 2)
    v = v.view(B, v.shape[1], heads, d).transpose(1, 2)
    s = (q @ k.transpose(-1, -2)) / math.sqrt(d)
    if mask is not None:
        s = s.masked_fill(~mask, float('-inf'))
    return (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        dim = c['dim']
        self.self_attn = Attn(dim, c['eps'])
        self.cross_attn = Attn(dim, c['eps'])
        self.norm3 = nn.LayerNorm(dim, eps=c['eps'], elementwise_affine=True)
        self.ffn = nn.Sequential(nn.Linear(dim, c['ffnDim']), nn.GELU(approximate='tanh'), nn.Linear(c['ffnDim'], dim))
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim ** 0.5)
        self.eps = c['eps']
        self.heads = c['heads']


def layer_norm(x, eps):
    return F.layer_norm(x, (x.shape[-1],), eps=eps)


class CausalDit(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        dim = c['dim']
        self.patch_embedding = nn.Conv3d(c['inChannels'], dim, kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.text_embedding = nn.Sequential(nn.Linear(c['textDim'], dim), nn.GELU(approximate='tanh'), nn.Linear(dim, dim))
        self.time_embedding = nn.Sequential(nn.Linear(c['freqDim'], dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.blocks = nn.ModuleList([Block(c) for _ in range(c['layers'])])
        self.head = nn.Module()
        self.head.head = nn.Linear(dim, c['outChannels'] * 4)
        self.head.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim ** 0.5)

    def sinusoid(self, t):
        # t [N] float -> [N, freqDim], in float64 as Wan (then float32)
        half = self.c['freqDim'] // 2
        f = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half)
        a = t.double()[:, None] * f[None, :]
        return torch.cat([torch.cos(a), torch.sin(a)], 1).float()

    def embed_context(self, ctx):
        return self.text_embedding(ctx)

    def patchify(self, x):
        # x [B, F, C, H, W] -> [B, F hp wp, C 4] ordered (c, kh, kw)
        B, Fr, C, H, W = x.shape
        x = x.reshape(B, Fr, C, H // 2, 2, W // 2, 2).permute(0, 1, 3, 5, 2, 4, 6)
        return x.reshape(B, Fr * (H // 2) * (W // 2), C * 4)

    def unpatchify(self, y, Fr):
        c = self.c
        B = y.shape[0]
        H, W, C = c['latentHeight'], c['latentWidth'], c['outChannels']
        y = y.view(B, Fr, H // 2, W // 2, 2, 2, C).permute(0, 1, 6, 2, 4, 3, 5)
        return y.reshape(B, Fr, C, H, W)

    def run(self, x, t_tok, ctx, cos, sin, mask):
        """Tokens of any mix of chunks: x [B, F, C, H, W] (frames of the sequence in order),
        t_tok [B, F] model timesteps per frame; mask [T, T] bool (True: attend)."""
        c = self.c
        dim = c['dim']
        B, Fr = x.shape[:2]
        tpf = (c['latentHeight'] // 2) * (c['latentWidth'] // 2)
        W = self.patch_embedding.weight.view(dim, -1)
        h = self.patchify(x) @ W.t() + self.patch_embedding.bias
        e = self.time_embedding(self.sinusoid(t_tok.reshape(-1))).view(B, Fr, dim)
        e0 = self.time_projection(e).view(B, Fr, 6, dim)
        # per token: repeat each frame's vectors over its tokens
        e_t = e.repeat_interleave(tpf, 1)
        e0_t = e0.repeat_interleave(tpf, 1)
        ctx = self.embed_context(ctx)
        for blk in self.blocks:
            m = blk.modulation[None] + e0_t  # [B, T, 6, dim] (broadcast of [1,1,6,dim])
            sh0, sc0, g0, sh1, sc1, g1 = [m[:, :, i] for i in range(6)]
            y = layer_norm(h, c['eps']) * (1 + sc0) + sh0
            a = blk.self_attn
            q = apply_rope(a.norm_q(a.q(y)), cos, sin, c['heads'])
            k = apply_rope(a.norm_k(a.k(y)), cos, sin, c['heads'])
            v = a.v(y)
            h = h + a.o(attend(q, k, v, c['heads'], mask)) * g0
            y = blk.norm3(h)
            ca = blk.cross_attn
            h = h + ca.o(attend(ca.norm_q(ca.q(y)), ca.norm_k(ca.k(ctx)), ca.v(ctx), c['heads']))
            y = layer_norm(h, c['eps']) * (1 + sc1) + sh1
            h = h + blk.ffn(y) * g1
        hm = self.head.modulation[None] + e_t[:, :, None, :]  # [B, T, 2, dim]
        out = self.head.head(layer_norm(h, c['eps']) * (1 + hm[:, :, 1]) + hm[:, :, 0])
        return self.unpatchify(out, Fr)


def teacher_forcing_mask(chunks, frames_per_chunk, tpf):
    """Sequence [clean chunks 0..K-1, noisy chunks 0..K-1]: clean chunk a sees clean chunks <= a;
    noisy chunk a sees clean chunks < a and itself."""
    n = chunks * frames_per_chunk * tpf
    chunk_of = torch.arange(n) // (frames_per_chunk * tpf)
    cq = chunk_of[:, None]
    ck = chunk_of[None, :]
    clean_clean = ck <= cq
    noisy_clean = ck < cq
    noisy_noisy = ck == cq
    clean_noisy = torch.zeros(n, n, dtype=torch.bool)
    top = torch.cat([clean_clean, clean_noisy], 1)
    bottom = torch.cat([noisy_clean, noisy_noisy], 1)
    return torch.cat([top, bottom], 0)
