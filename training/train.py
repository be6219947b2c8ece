"""Trains the embedded default of qarvd on the moving-shapes videos (npm run train:embedded).

Flow matching with teacher forcing over chunks: each training video (7 chunks of 3 latent frames) is
run as one sequence of its clean chunks (timestep 0, the KV cache's content at sampling time) and
its noisy chunks (one noise level per chunk), with the chunk-causal mask of dit.teacher_forcing_mask;
the loss is the MSE of the predicted flow (noise - x0) on the noisy chunks. Fixed seed, fixed step
count, CPU (one torch thread, the GEMMs on OpenBLAS threads: see train.sh); checkpoints every
few minutes so that a stopped run resumes (to the same steps).

  /usr/bin/python3 training/train.py [--steps N] [--out models/embedded-default.safetensors]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes  # noqa: E402
from dit import CausalDit, rope_tables, teacher_forcing_mask  # noqa: E402
from export import save_model  # noqa: E402

CONFIG = {
    'name': 'embedded-default',
    'inChannels': 48, 'outChannels': 48,
    # dim >= inChannels * 4 (= 192, a 2 x 2 patch of 48 channels): a narrower model cannot carry a
    # patch's noise through its residual stream, and its samples keep that part of the noise.
    'dim': 192, 'ffnDim': 512, 'heads': 4, 'layers': 4,
    'freqDim': 256, 'textDim': 32, 'textLen': 8,
    'latentHeight': 8, 'latentWidth': 8,
    'framesPerChunk': 3, 'chunks': 7, 'eps': 1e-6,
    # Sampling steps, chosen after training by the object tracker on validation captions (README).
    'timesteps': [500, 300, 150, 50], 'shift': 1,
}
# Noise levels (as timesteps, unshifted) that 70% of the training chunks get, and the held-out loss uses.
TRAIN_TIMESTEPS = [1000, 800, 600, 400, 200]
HELD_OUT_SEED = 2 ** 31
CYCLE = 1500  # steps of one cosine cycle of the learning rate  # held-out videos are seeds 2^31, 2^31 + 1, ...; training uses seeds < 2^31


def sigma_of(t, shift):
    s = t / 1000.0
    return shift * s / (1 + (shift - 1) * s)


class Data:
    def __init__(self, c):
        self.c = c
        self.contexts = {}

    def video(self, seed):
        sc = shapes.scene(seed)
        lat = shapes.to_latents(shapes.render(sc)).astype(np.float32)
        cap = sc['caption']
        if cap not in self.contexts:
            self.contexts[cap] = shapes.encode_prompt(cap, self.c['textLen'], self.c['textDim'])
        return lat, self.contexts[cap]

    def batch(self, seeds):
        v, x = zip(*(self.video(s) for s in seeds))
        return torch.from_numpy(np.stack(v)), torch.from_numpy(np.stack(x))


def flow_loss(model, x0, ctx, sigma, noise, cos, sin, mask):
    """x0 [B, F, C, H, W]; sigma [B, K] per chunk; returns the mean squared flow error (noisy chunks)."""
    c = model.c
    B, Fr = x0.shape[:2]
    fpc = c['framesPerChunk']
    s_f = sigma.repeat_interleave(fpc, 1)  # [B, F]
    xt = (1 - s_f)[..., None, None, None] * x0 + s_f[..., None, None, None] * noise
    x = torch.cat([x0, xt], 1)
    t = torch.cat([torch.zeros(B, Fr), (s_f * 1000).float()], 1)
    flow = model.run(x, t, ctx, cos, sin, mask)[:, Fr:]
    return ((flow - (noise - x0)) ** 2).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=3000)
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--lr', type=float, default=8e-4)
    ap.add_argument('--out', default='models/embedded-default.safetensors')
    ap.add_argument('--state', default='training/out/state.pt')
    ap.add_argument('--log', default='training/out/log.jsonl')
    ap.add_argument('--result', default='models/embedded-default.json')
    ap.add_argument('--threads', type=int, default=1, help='torch intra-op threads (the GEMMs run on OpenBLAS threads, OPENBLAS_NUM_THREADS)')
    ap.add_argument('--held-out', type=int, default=32)
    ap.add_argument('--minutes-per-checkpoint', type=float, default=3)
    ap.add_argument('--export-only', action='store_true', help='write --out from the state in --state (with this CONFIG) and stop')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.export_only:
        m = CausalDit(CONFIG)
        m.load_state_dict(torch.load(a.state)['model'])
        save_model(a.out, m, CONFIG, dtype=torch.float16)
        with open(a.result) as f:
            record = json.load(f)
        record['config'] = CONFIG
        with open(a.result, 'w') as f:
            json.dump(record, f, indent=1)
        return
    torch.manual_seed(0)
    c = CONFIG
    data = Data(c)
    model = CausalDit(c)
    torch.nn.init.zeros_(model.head.head.weight)
    torch.nn.init.zeros_(model.head.head.bias)
    untrained = CausalDit(c)
    untrained.load_state_dict(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.99), weight_decay=0.01)
    K, fpc = c['chunks'], c['framesPerChunk']
    Fr = K * fpc
    hp, wp = c['latentHeight'] // 2, c['latentWidth'] // 2
    tpf = hp * wp
    cos, sin = rope_tables(c['dim'] // c['heads'], Fr, hp, wp)
    cos2, sin2 = torch.cat([cos, cos]), torch.cat([sin, sin])
    mask = teacher_forcing_mask(K, fpc, tpf)
    sample_sigmas = torch.tensor([sigma_of(t, 1) for t in TRAIN_TIMESTEPS])

    # Held-out set: fixed videos, noise and noise levels (every sampling sigma once per chunk, cycled).
    g = torch.Generator().manual_seed(1234)
    hx, hctx = data.batch([HELD_OUT_SEED + i for i in range(a.held_out)])
    hnoise = torch.randn(hx.shape, generator=g)
    hsig = sample_sigmas[(torch.arange(a.held_out)[:, None] + torch.arange(K)[None, :]) % len(sample_sigmas)]

    def held_out(m):
        m.eval()
        with torch.no_grad():
            tot = 0.0
            for i in range(0, a.held_out, 8):
                tot += flow_loss(m, hx[i:i + 8], hctx[i:i + 8], hsig[i:i + 8], hnoise[i:i + 8], cos2, sin2, mask).item() * len(hx[i:i + 8])
        m.train()
        return tot / a.held_out

    step = 0
    elapsed = 0.0
    curve = []
    os.makedirs(os.path.dirname(a.state), exist_ok=True)
    if os.path.exists(a.state):
        st = torch.load(a.state)
        model.load_state_dict(st['model'])
        opt.load_state_dict(st['opt'])
        untrained.load_state_dict(st['untrained'])
        step, elapsed, curve = st['step'], st['elapsed'], st['curve']
        torch.set_rng_state(st['rng'])
        print(f'resumed at step {step}', flush=True)
    untrained_loss = held_out(untrained)
    print(f'held-out flow loss, untrained: {untrained_loss:.4f}', flush=True)

    def lr_at(s):
        # Cosine cycles of CYCLE steps (to a tenth of their peak), the first after a 100-step
        # warm-up, each later one from half the peak before it (a warm restart).
        warm = 100
        if s < warm:
            return a.lr * (s + 1) / warm
        cycle, pos = divmod(s, CYCLE)
        p = (pos - warm) / (CYCLE - warm) if cycle == 0 else pos / CYCLE
        return a.lr * 0.5 ** cycle * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))

    t_start = time.time() - elapsed
    last_ckpt = time.time()
    logf = open(a.log, 'a')
    running = None
    while step < a.steps:
        for gr in opt.param_groups:
            gr['lr'] = lr_at(step)
        seeds = [step * a.batch + i for i in range(a.batch)]
        x0, ctx = data.batch(seeds)
        noise = torch.randn(x0.shape)
        pick = torch.randint(len(sample_sigmas), (a.batch, K))
        sig = torch.where(torch.rand(a.batch, K) < 0.7, sample_sigmas[pick], torch.rand(a.batch, K))
        if step >= CYCLE:
            # Later cycles: 40% of the chunks at high noise (0.8..1), where the sampler's first steps
            # must take the object from the caption and the cache (their x0 estimate is all the
            # next steps start from); the first cycle left the model predicting the background there.
            sig = torch.where(torch.rand(a.batch, K) < 0.4, 0.8 + 0.2 * torch.rand(a.batch, K), sig)
        loss = flow_loss(model, x0, ctx, sig, noise, cos2, sin2, mask)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % 20 == 0 or step == a.steps:
            rec = {'step': step, 'loss': loss.item(), 'smoothed': running, 'lr': lr_at(step - 1), 'seconds': time.time() - t_start}
            if step % 200 == 0 or step == a.steps:
                rec['heldOut'] = held_out(model)
            curve.append(rec)
            logf.write(json.dumps(rec) + '\n')
            logf.flush()
            print(json.dumps(rec), flush=True)
        if time.time() - last_ckpt > a.minutes_per_checkpoint * 60 or step == a.steps:
            torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'untrained': untrained.state_dict(), 'step': step,
                        'elapsed': time.time() - t_start, 'curve': curve, 'rng': torch.get_rng_state()}, a.state + '.tmp')
            os.replace(a.state + '.tmp', a.state)
            save_model(a.out, model, c, dtype=torch.float16)
            last_ckpt = time.time()
    trained_loss = held_out(model)
    result = {
        'config': c, 'steps': a.steps, 'batch': a.batch, 'lr': a.lr, 'threads': a.threads,
        'seconds': time.time() - t_start,
        'heldOut': {'videos': a.held_out, 'firstSeed': HELD_OUT_SEED, 'untrained': untrained_loss, 'trained': trained_loss},
        'curve': [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()} for r in curve if r['step'] % 100 == 0 or r['step'] == a.steps],
    }
    save_model(a.out, model, c, dtype=torch.float16)
    with open(a.result, 'w') as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result['heldOut']), flush=True)


if __name__ == '__main__':
    main()
