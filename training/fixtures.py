"""Writes the fixtures that tie the Python side to the library (run: /usr/bin/python3 training/fixtures.py):

- test/fixtures/trained/torch-forward.safetensors: a small random model of the library's
  architecture (every tensor random, none zero) under Wan's names, two chunks of latents, a text
  context, and torch's flow for both chunks computed as training computes it (one sequence of the
  clean chunks and the noisy chunks with the teacher-forcing mask). The library must give the same
  flows running the chunks one after the other through its KV cache.
- test/fixtures/trained/shapes.json: scenes, captions and a few pixels of the Python mirror of the
  moving-shapes generator, and encodePrompt of their captions, for lib/data/shapes.ts to agree with.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402
from dit import CausalDit, rope_tables, teacher_forcing_mask  # noqa: E402
from export import save_safetensors  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'trained')

SMALL = {
    'name': 'torch-fixture', 'inChannels': 48, 'outChannels': 48, 'dim': 48, 'ffnDim': 96, 'heads': 2, 'layers': 2,
    'freqDim': 32, 'textDim': 32, 'textLen': 8, 'latentHeight': 8, 'latentWidth': 8, 'framesPerChunk': 3, 'chunks': 2, 'eps': 1e-6,
}


def forward_fixture():
    torch.manual_seed(7)
    c = SMALL
    m = CausalDit(c)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if 'norm' in name and name.endswith('weight'):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith('bias'):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                fan_in = p[0].numel() if p.dim() > 1 else p.numel()
                p.copy_(torch.randn_like(p) / fan_in ** 0.5)
    K, fpc = c['chunks'], c['framesPerChunk']
    hp, wp = c['latentHeight'] // 2, c['latentWidth'] // 2
    x0 = torch.randn(1, K * fpc, c['inChannels'], c['latentHeight'], c['latentWidth'])
    noisy = torch.randn_like(x0)
    ctx = torch.from_numpy(shapes.encode_prompt('a red disc moving left', c['textLen'], c['textDim']))[None]
    timesteps = torch.tensor([600.0, 937.5])  # per chunk, for the noisy chunks
    cos, sin = rope_tables(c['dim'] // c['heads'], K * fpc, hp, wp)
    mask = teacher_forcing_mask(K, fpc, hp * wp)
    t = torch.cat([torch.zeros(K * fpc), timesteps.repeat_interleave(fpc)])[None]
    with torch.no_grad():
        flow = m.run(torch.cat([x0, noisy], 1), t, ctx, torch.cat([cos, cos]), torch.cat([sin, sin]), mask)
    tensors = {k: v.detach().float().contiguous() for k, v in m.state_dict().items()}
    tensors['fixture.clean'] = x0[0].contiguous()
    tensors['fixture.noisy'] = noisy[0].contiguous()
    tensors['fixture.context'] = ctx[0].contiguous()
    tensors['fixture.timesteps'] = timesteps.contiguous()
    tensors['fixture.flow_clean'] = flow[0, :K * fpc].contiguous()
    tensors['fixture.flow_noisy'] = flow[0, K * fpc:].contiguous()
    save_safetensors(os.path.join(ROOT, 'torch-forward.safetensors'), tensors, {'qarvd.config': json.dumps(c), 'format': 'pt'})


def _colour_at(sc, f):
    ci = sc['change']['colour'] if sc['change'] and f >= sc['change']['frame'] else sc['colour']
    return shapes.COLOURS[ci][1]


def shapes_fixture():
    out = []
    for seed in [0, 1, 2, 3, 4, 5, 6, 7, 12345, 2 ** 31, 2 ** 31 + 1, 4294967295]:
        sc = shapes.scene(seed)
        rgb = shapes.render(sc)
        lat = shapes.to_latents(rgb)
        # a few pixels and latent values, at fixed places, in float64
        picks = [(f, ch, y, x) for f in (0, 10, 20) for ch in range(3) for (y, x) in ((0, 0), (16, 16), (int(sc['centres'][f][1]), int(sc['centres'][f][0])))]
        # and the anti-aliased edge: pixels partly covered by the object
        for f in (0, 10, 20):
            col, bg = np.array(_colour_at(sc, f)), np.array(shapes.BACKGROUND)
            ch0 = int(np.argmax(np.abs(col - bg)))
            alpha = (rgb[f, ch0] - bg[ch0]) / (col[ch0] - bg[ch0])
            edge = list(zip(*np.nonzero((alpha > 0.02) & (alpha < 0.98))))
            picks += [(f, ch, int(y), int(x)) for (y, x) in edge[:8] for ch in range(3)]
        out.append({
            'seed': seed, 'caption': sc['caption'], 'colour': sc['colour'], 'shape': sc['shape'], 'motion': sc['motion'],
            'radius': sc['radius'], 'change': sc['change'], 'centres': sc['centres'],
            'pixels': [[f, ch, y, x, float(rgb[f, ch, y, x])] for (f, ch, y, x) in picks],
            'latentSum': float(lat.astype(np.float32).astype(np.float64).sum()),
            'frameSums': [float(rgb[f].astype(np.float32).astype(np.float64).sum()) for f in range(shapes.FRAMES)],
            'context': shapes.encode_prompt(sc['caption'], 8, 32)[:3].astype(np.float64).round(7).tolist(),
        })
    with open(os.path.join(ROOT, 'shapes.json'), 'w') as f:
        json.dump(out, f, indent=0)


if __name__ == '__main__':
    os.makedirs(ROOT, exist_ok=True)
    forward_fixture()
    shapes_fixture()
