import t from 'tap';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  ChunkScheduler, LinearF32, Tensor, decodeQuantizedModel, decodeSafetensors, encodeQuantizedModel, loadQuantizedModel, readQuantizedModel, saveQuantizedModel,
  type QuantizedModelSpec,
} from '../../lib/index.js';
import { buildLayerSets, type LayerSpec, type SegmentSpec } from '../../lib/method/spec.js';
import { CausalDit } from '../../lib/model/dit.js';
import { makeSpec, tiny } from './fixture.js';

/** A spec as plain data (typed arrays as arrays, tensors with dtype and shape), for deep comparison. */
function plain(spec: QuantizedModelSpec): unknown {
  const tensor = (x: Tensor) => ({ dtype: x.dtype, shape: [...x.shape], data: Array.from(x.data as ArrayLike<number>) });
  const seg = (s: SegmentSpec | null) =>
    s && { q: tensor(s.weight.q), scale: tensor(s.weight.scale), zeroPoint: tensor(s.weight.zeroPoint), dtype: s.weight.dtype, groupSize: s.weight.groupSize, activation: s.activation };
  const layer = (l: LayerSpec) => ({
    ...l,
    bias: l.bias && Array.from(l.bias),
    ...(l.type === 'quantized' ? { segment: seg(l.segment) } : { outlierIdx: Array.from(l.outlierIdx), outlier: seg(l.outlier), normal: seg(l.normal) }),
  });
  const tensors = Object.fromEntries(Object.entries(spec.tensors).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, tensor(v)]));
  return { config: spec.config, tensors, layers: spec.layers.map(layer), info: spec.info };
}

/** Element i of packed 4-bit data: the low nibble for even i, sign-extended. */
function nibble(bytes: Uint8Array, i: number): number {
  const v = i % 2 === 0 ? bytes[i >> 1] & 15 : bytes[i >> 1] >> 4;
  return v >= 8 ? v - 16 : v;
}

const spec = makeSpec();
const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-ckpt-'));
const file = path.join(dir, 'tiny-q.safetensors');

t.test('the fixture covers what the checkpoint must store', (t) => {
  const kinds = new Set<string>();
  for (const l of spec.layers) {
    const segs = l.type === 'quantized' ? [l.segment] : [l.outlier, l.normal];
    for (const s of segs) {
      if (!s) continue;
      kinds.add(`${s.weight.dtype}/${s.weight.groupSize ? 'group' : 'channel'}`);
      for (const a of s.activation) kinds.add(a.type);
      kinds.add(`chunks:${s.activation.length}`);
      if (s.weight.q.dtype === 'int4' && s.weight.q.size % 2 === 1) kinds.add('odd int4');
    }
    kinds.add(l.type === 'dual' ? `dual:${l.outlierIdx.length === 0 ? 'none' : l.outlierIdx.length % 2 ? 'odd' : 'even'}` : 'quantized');
    if (!l.bias) kinds.add('no bias');
  }
  for (const k of ['int8/channel', 'int8/group', 'int4/channel', 'int4/group', 'static', 'dynamic', 'chunks:1', 'chunks:2', 'chunks:3', 'odd int4', 'dual:none', 'dual:odd', 'dual:even', 'quantized', 'no bias']) {
    t.ok(kinds.has(k), k);
  }
  t.ok('blocks.0.cross_attn.q.weight' in spec.tensors, 'a block linear left in float');
  t.equal(spec.layers.length, 18);
  t.end();
});

t.test('save and read back: every tensor, every layer, the config and the info are equal', async (t) => {
  await saveQuantizedModel(file, spec);
  t.same(readdirSync(dir), ['tiny-q.safetensors'], 'no temporary file left');
  const back = await readQuantizedModel(file);
  t.same(plain(back), plain(spec));
  t.same(back.info, spec.info, 'info JSON');
  t.same(plain(decodeQuantizedModel(encodeQuantizedModel(spec))), plain(spec), 'in memory too');
  // The bytes are deterministic: the same spec encodes to the same file.
  t.same(Buffer.from(encodeQuantizedModel(back)), Buffer.from(encodeQuantizedModel(spec)));
});

t.test('on-disk layout, read with the plain safetensors codec', async (t) => {
  const { tensors, metadata } = decodeSafetensors(encodeQuantizedModel(spec));
  const meta = JSON.parse(metadata['qarvd.quantized']);
  t.equal(meta.format, 'qarvd.quantized');
  t.equal(meta.version, 1);
  t.same(meta.config, tiny);
  t.same(JSON.parse(metadata['qarvd.config']), tiny);
  t.same(meta.info, spec.info);
  t.same(meta.layers.map((l: { name: string }) => l.name), spec.layers.map((l) => l.name));

  // int8 per channel (blocks.0.self_attn.q): I8 [out, in], scale F32 [out], zero point I32 [out], bias F32.
  const q = spec.layers.find((l) => l.name === 'blocks.0.self_attn.q') as Extract<LayerSpec, { type: 'quantized' }>;
  t.same(meta.layers[0], { name: q.name, type: 'quantized', inFeatures: 32, outFeatures: 32, bias: true, segment: { dtype: 'int8', shape: [32, 32], groupSize: 0, activation: [{ type: 'dynamic' }] } });
  t.equal(tensors['blocks.0.self_attn.q.q'].dtype, 'int8');
  t.same(tensors['blocks.0.self_attn.q.q'].shape, [32, 32]);
  t.same(Array.from(tensors['blocks.0.self_attn.q.q'].data), Array.from(q.segment.weight.q.data));
  t.same(tensors['blocks.0.self_attn.q.scale'].shape, [32]);
  t.equal(tensors['blocks.0.self_attn.q.zero_point'].dtype, 'int8');
  t.same(Array.from(tensors['blocks.0.self_attn.q.bias'].data), Array.from(q.bias!));

  // Dual int4 with an odd element count (blocks.1.ffn.0, outliers [3, 17, 30]): U8 bytes, low nibble first.
  const d = spec.layers.find((l) => l.name === 'blocks.1.ffn.0') as Extract<LayerSpec, { type: 'dual' }>;
  const dj = meta.layers.find((l: { name: string }) => l.name === d.name);
  t.match(dj, { type: 'dual', inFeatures: 32, outFeatures: 47, outliers: 3, outlier: { dtype: 'int4', shape: [47, 3], groupSize: 0 }, normal: { dtype: 'int4', shape: [47, 29], groupSize: 16 } });
  t.same(Array.from(tensors['blocks.1.ffn.0.outlier_idx'].data), [3, 17, 30]);
  const stored = tensors['blocks.1.ffn.0.outlier.q'];
  t.equal(stored.dtype, 'uint8');
  t.same(stored.shape, [Math.ceil((47 * 3) / 2)]);
  t.equal((stored.data[70] as number) >> 4, 0, 'the padding nibble is zero');
  const unpacked = Array.from({ length: 47 * 3 }, (_, i) => nibble(stored.data as Uint8Array, i));
  const original = Array.from({ length: 47 * 3 }, (_, i) => nibble(d.outlier!.weight.q.data as Uint8Array, i));
  t.same(unpacked, original);
  t.same(tensors['blocks.1.ffn.0.normal.scale'].shape, [47, 2]);
  t.same(tensors['blocks.1.ffn.0.normal.zero_point'].shape, [47, 2]);

  // A dual layer without outliers has an empty index and no outlier tensors.
  t.same(tensors['blocks.0.cross_attn.k.outlier_idx'].shape, [0]);
  t.notOk('blocks.0.cross_attn.k.outlier.q' in tensors);
  // The float block linear is stored under Wan's names; a layer without bias has no bias tensor.
  t.equal(tensors['blocks.0.cross_attn.q.weight'].dtype, 'float32');
  t.notOk('blocks.0.self_attn.o.bias' in tensors);
  t.notOk('blocks.0.self_attn.q.weight' in tensors);
});

t.test('the loaded model generates the same video as the in-memory layers, bit for bit', async (t) => {
  // Reference: the float model with the spec's layers built in memory, per chunk.
  const reference = CausalDit.synthetic(tiny, { seed: 0 });
  const sets = buildLayerSets(spec.layers);
  t.equal(sets.length, 3, 'the longest per-chunk list has three chunks');
  const want = await new ChunkScheduler(reference, ChunkScheduler.perChunk(sets)).generate({ prompt: 'a red fox', seed: 7 });

  const loaded = await loadQuantizedModel(file);
  t.equal(loaded.layerSets.length, 3);
  const got = await new ChunkScheduler(loaded.model, loaded.policy).generate({ prompt: 'a red fox', seed: 7 });
  t.ok(got.data.every((v, i) => Object.is(v, want.data[i])), 'identical video');
  t.ok(got.data.every(Number.isFinite));

  // The per-chunk settings matter: chunk 0's layers everywhere give another video.
  const chunk0 = await new ChunkScheduler(loaded.model, ChunkScheduler.everyChunk(loaded.layerSets[0])).generate({ prompt: 'a red fox', seed: 7 });
  t.notOk(chunk0.data.every((v, i) => v === want.data[i]), 'per-chunk activations are applied');

  // The model's own block linears are chunk 0's quantized layers; the float one stays float.
  t.equal(loaded.model.linear('blocks.0.ffn.2'), loaded.layerSets[0]['blocks.0.ffn.2']);
  t.ok(loaded.model.linear('blocks.0.cross_attn.q') instanceof LinearF32);
  t.throws(() => loaded.model.floatWeights('blocks.0.ffn.2'), { name: 'RangeError', message: /blocks\.0\.ffn\.2.*no float weights/ });
  t.same(Array.from(loaded.model.floatWeights('blocks.0.cross_attn.q').weight.data), Array.from(spec.tensors['blocks.0.cross_attn.q.weight'].data));
  t.ok(loaded.model.blockLinearBytes < reference.blockLinearBytes / 2, 'quantized layers hold fewer bytes');
});

t.test('a one-block model with even sizes round-trips', async (t) => {
  const small = { ...tiny, name: 'one-block', layers: 1, ffnDim: 64 };
  const s = makeSpec(small, 3);
  const f = path.join(dir, 'one-block.safetensors');
  await saveQuantizedModel(f, s);
  const back = await readQuantizedModel(f);
  t.same(plain(back), plain(s));
  const { model, policy } = await loadQuantizedModel(f);
  const ref = await new ChunkScheduler(CausalDit.synthetic(small, { seed: 3 }), ChunkScheduler.perChunk(buildLayerSets(s.layers))).generate({ prompt: 'waves', seed: 2, chunks: 2 });
  const got = await new ChunkScheduler(model, policy).generate({ prompt: 'waves', seed: 2, chunks: 2 });
  t.ok(got.data.every((v, i) => Object.is(v, ref.data[i])), 'identical video');
});
