import t from 'tap';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  SafetensorsError, Tensor, decodeQuantizedModel, decodeSafetensors, encodeQuantizedModel, encodeSafetensors, loadModel, loadQuantizedModel, readQuantizedModel,
  saveQuantizedModel, saveSyntheticModel, type QuantizedModelSpec,
} from '../../lib/index.js';
import { buildLayerSets } from '../../lib/method/spec.js';
import { rng } from '../helpers/rng.js';
import { makeSpec, tiny } from './fixture.js';

const spec = makeSpec();
const good = encodeQuantizedModel(spec);
const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-ckpt-err-'));

/** The checkpoint re-encoded after `edit` changed its tensors or its description. */
function tampered(edit: (tensors: Record<string, Tensor>, meta: Record<string, any>) => void): Uint8Array {
  const { tensors, metadata } = decodeSafetensors(good);
  const meta = JSON.parse(metadata['qarvd.quantized']);
  edit(tensors, meta);
  return encodeSafetensors(tensors, { ...metadata, 'qarvd.quantized': JSON.stringify(meta) });
}

const layerOf = (meta: Record<string, any>, name: string) => meta.layers.find((l: { name: string }) => l.name === name);

t.test('corrupt and truncated files are SafetensorsErrors naming the file', async (t) => {
  const file = path.join(dir, 'broken.safetensors');
  writeFileSync(file, good.subarray(0, good.length - 100));
  await t.rejects(readQuantizedModel(file), { name: 'SafetensorsError', message: /broken\.safetensors.*truncated/ });
  await t.rejects(loadQuantizedModel(file), SafetensorsError);
  writeFileSync(file, good.subarray(0, 6));
  await t.rejects(readQuantizedModel(file), { name: 'SafetensorsError', message: /broken\.safetensors/ });

  const flipped = Uint8Array.from(good);
  flipped[8] ^= 0xff; // the header's opening brace
  t.throws(() => decodeQuantizedModel(flipped, 'flipped.safetensors'), { name: 'SafetensorsError', message: /flipped\.safetensors.*JSON/ });
  const length = Uint8Array.from(good);
  length[3] ^= 0x40; // the header length
  t.throws(() => decodeQuantizedModel(length, 'len.safetensors'), { name: 'SafetensorsError', message: /len\.safetensors/ });
  await t.rejects(readQuantizedModel(path.join(dir, 'missing.safetensors')), { code: 'ENOENT' });
});

t.test('metadata: missing, not JSON, another format or version', async (t) => {
  const source = 'q.safetensors';
  const { tensors, metadata } = decodeSafetensors(good);
  const cases: [string, Record<string, string>, RegExp][] = [
    ['missing', { 'qarvd.config': metadata['qarvd.config'] }, /q\.safetensors has no qarvd\.quantized metadata.*loadModel/],
    ['not JSON', { ...metadata, 'qarvd.quantized': '{"format": "qarvd.q' }, /q\.safetensors.*not JSON/],
    ['not an object', { ...metadata, 'qarvd.quantized': '[1]' }, /q\.safetensors.*not a JSON object/],
  ];
  for (const [name, m, pattern] of cases) t.throws(() => decodeQuantizedModel(encodeSafetensors(tensors, m), source), { name: 'RangeError', message: pattern }, name);

  t.throws(() => decodeQuantizedModel(tampered((_, m) => void (m.version = 2)), source), { name: 'RangeError', message: /q\.safetensors is a quantized checkpoint of version 2; this qarvd reads version 1/ });
  t.throws(() => decodeQuantizedModel(tampered((_, m) => void delete m.version), source), { name: 'RangeError', message: /version undefined; this qarvd reads version 1/ });
  t.throws(() => decodeQuantizedModel(tampered((_, m) => void (m.format = 'gguf')), source), { name: 'RangeError', message: /q\.safetensors.*format "gguf"/ });
  t.throws(() => decodeQuantizedModel(tampered((_, m) => void (m.config.dim = 33)), source), { message: /q\.safetensors config\.dim/ });
  t.throws(() => decodeQuantizedModel(tampered((_, m) => void (m.info = 3)), source), { name: 'RangeError', message: /info/ });
  t.throws(() => decodeQuantizedModel(tampered((_, m) => void (m.layers = {})), source), { name: 'RangeError', message: /layers/ });

  // A float model file is not a quantized checkpoint, and a quantized checkpoint is not a float model file.
  const floatFile = path.join(dir, 'float.safetensors');
  await saveSyntheticModel(floatFile, tiny);
  await t.rejects(readQuantizedModel(floatFile), { name: 'RangeError', message: /float\.safetensors has no qarvd\.quantized metadata/ });
  const quantFile = path.join(dir, 'quant.safetensors');
  writeFileSync(quantFile, good);
  await t.rejects(loadModel(quantFile), { name: 'RangeError', message: /quant\.safetensors is a quantized checkpoint.*loadQuantizedModel/ });
});

t.test('layers: missing tensors, wrong dtype or shape, bad values, unknown names', (t) => {
  const cases: [string, Uint8Array, string, RegExp][] = [
    ['missing scale', tampered((x) => void delete x['blocks.0.self_attn.q.scale']), 'RangeError', /layer blocks\.0\.self_attn\.q: tensor blocks\.0\.self_attn\.q\.scale .*is missing/],
    ['missing bias', tampered((x) => void delete x['blocks.1.ffn.2.bias']), 'RangeError', /layer blocks\.1\.ffn\.2: tensor blocks\.1\.ffn\.2\.bias .*is missing/],
    ['missing outlier_idx', tampered((x) => void delete x['blocks.1.ffn.0.outlier_idx']), 'RangeError', /layer blocks\.1\.ffn\.0: tensor blocks\.1\.ffn\.0\.outlier_idx .*is missing/],
    ['missing normal q', tampered((x) => void delete x['blocks.0.self_attn.k.normal.q']), 'RangeError', /layer blocks\.0\.self_attn\.k: tensor blocks\.0\.self_attn\.k\.normal\.q .*is missing/],
    ['float zero point', tampered((x) => void (x['blocks.0.ffn.2.zero_point'] = Tensor.zeros('float32', [32, 3]))), 'TypeError', /layer blocks\.0\.ffn\.2: tensor blocks\.0\.ffn\.2\.zero_point is float32 but int8 was expected/],
    ['int8 instead of packed', tampered((x) => void (x['blocks.0.ffn.2.q'] = Tensor.zeros('int8', [32, 47]))), 'TypeError', /tensor blocks\.0\.ffn\.2\.q is int8 but uint8/],
    ['scale shape', tampered((x) => void (x['blocks.0.ffn.2.scale'] = Tensor.zeros('float32', [32]))), 'RangeError', /tensor blocks\.0\.ffn\.2\.scale has shape \[32\] but \[32, 3\]/],
    ['q shape', tampered((x) => void (x['blocks.0.self_attn.q.q'] = Tensor.zeros('int8', [32, 31]))), 'RangeError', /tensor blocks\.0\.self_attn\.q\.q has shape \[32, 31\]/],
    ['negative scale', tampered((x) => void (x['blocks.0.self_attn.q.scale'].data[4] = -1)), 'RangeError', /layer blocks\.0\.self_attn\.q: .*positive.*element 4/],
    ['zero point range', tampered((x) => void (x['blocks.0.ffn.2.zero_point'].data[0] = 8)), 'RangeError', /layer blocks\.0\.ffn\.2: .*zeroPoint.*-8 and 7/],
    ['outliers not ascending', tampered((x) => void (x['blocks.1.ffn.0.outlier_idx'].data[1] = 2)), 'RangeError', /layer blocks\.1\.ffn\.0: .*outlier_idx.*ascending/],
    ['segment shape', tampered((_, m) => void (layerOf(m, 'blocks.1.ffn.0').outlier.shape = [47, 4])), 'RangeError', /layer blocks\.1\.ffn\.0: blocks\.1\.ffn\.0\.outlier has shape \[47,4\]/],
    ['outlier count', tampered((_, m) => void (layerOf(m, 'blocks.1.ffn.0').outliers = 4)), 'RangeError', /layer blocks\.1\.ffn\.0: tensor blocks\.1\.ffn\.0\.outlier_idx has shape \[3\] but \[4\]/],
    ['empty segment not null', tampered((_, m) => void (layerOf(m, 'blocks.0.cross_attn.k').outlier = layerOf(m, 'blocks.0.cross_attn.k').normal)), 'RangeError', /layer blocks\.0\.cross_attn\.k: outlier must be null/],
    ['bad group size', tampered((_, m) => void (layerOf(m, 'blocks.0.ffn.2').segment.groupSize = 24)), 'RangeError', /layer blocks\.0\.ffn\.2: .*multiple of 16/],
    ['bad activation', tampered((_, m) => void (layerOf(m, 'blocks.0.self_attn.v').segment.activation[1] = { type: 'static', scale: -1, zeroPoint: 0 })), 'RangeError', /layer blocks\.0\.self_attn\.v: .*activation\[1\]\.scale/],
    ['no activation', tampered((_, m) => void (layerOf(m, 'blocks.0.self_attn.v').segment.activation = [])), 'TypeError', /layer blocks\.0\.self_attn\.v: .*activation/],
    ['bad dtype', tampered((_, m) => void (layerOf(m, 'blocks.0.self_attn.q').segment.dtype = 'int2')), 'RangeError', /layer blocks\.0\.self_attn\.q: .*dtype/],
    ['features', tampered((_, m) => void (layerOf(m, 'blocks.0.self_attn.q').inFeatures = 16)), 'RangeError', /layer blocks\.0\.self_attn\.q: has 16 -> 32 features but the model's layer has 32 -> 32/],
    ['unknown layer', tampered((_, m) => void (m.layers[0].name = 'blocks.9.ffn.0')), 'RangeError', /layer blocks\.9\.ffn\.0: not a block linear/],
    ['unnamed layer', tampered((_, m) => void (m.layers[2] = 5)), 'TypeError', /layers\[2\] is not a layer description/],
    ['twice', tampered((_, m) => void m.layers.push(m.layers[0])), 'RangeError', /layer blocks\.0\.self_attn\.q appears twice/],
    ['layer dropped', tampered((_, m) => void m.layers.splice(0, 1)), 'RangeError', /block linear blocks\.0\.self_attn\.q is neither a quantized layer nor given in float: tensor blocks\.0\.self_attn\.q\.weight/],
    ['float twice', tampered((x) => void (x['blocks.0.self_attn.q.weight'] = Tensor.zeros('float32', [32, 32]))), 'RangeError', /layer blocks\.0\.self_attn\.q is quantized but tensor blocks\.0\.self_attn\.q\.weight/],
    ['missing parameter', tampered((x) => void delete x['blocks.1.norm3.weight']), 'RangeError', /tensor blocks\.1\.norm3\.weight \(float32 \[32\]\) is missing/],
    ['float16 parameter', tampered((x) => void (x['head.modulation'] = Tensor.zeros('float16', [1, 2, 32]))), 'TypeError', /tensor head\.modulation is float16 but float32/],
    ['stray tensor', tampered((x) => void (x['blocks.0.extra'] = Tensor.zeros('float32', [1]))), 'RangeError', /1 tensor\(s\) belong to no parameter or quantized layer of tiny: blocks\.0\.extra/],
  ];
  for (const [name, bytes, cls, pattern] of cases) {
    t.throws(() => decodeQuantizedModel(bytes, 'q.safetensors'), { name: cls, message: new RegExp(`^q\\.safetensors[: ].*${pattern.source}`) }, name);
  }
  t.end();
});

t.test('random corruption never crashes: a clear error naming the file, or layers that build', (t) => {
  const next = rng(42);
  const allowed = new Set(['SafetensorsError', 'RangeError', 'TypeError']);
  let failures = 0;
  for (let trial = 0; trial < 300; trial++) {
    const bytes = Uint8Array.from(good);
    // Mostly the header (where the structure is), sometimes the data.
    const headerEnd = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const at = next() < 0.8 ? Math.floor(next() * headerEnd) : headerEnd + Math.floor(next() * (bytes.length - headerEnd));
    bytes[at] ^= 1 + Math.floor(next() * 255);
    try {
      const s = decodeQuantizedModel(bytes, 'fuzz.safetensors');
      buildLayerSets(s.layers);
    } catch (e) {
      failures++;
      if (!(e instanceof Error) || !allowed.has(e.name) || !/fuzz\.safetensors/.test(e.message)) t.fail(`byte ${at}: ${String(e)}`);
    }
  }
  t.ok(failures > 100, `${failures} of 300 corruptions were refused, each with a clear error`);
  t.end();
});

t.test('encoding checks the spec and names what is wrong', (t) => {
  const base = makeSpec();
  const edit = (f: (s: QuantizedModelSpec) => void): QuantizedModelSpec => {
    const s: QuantizedModelSpec = { ...base, tensors: { ...base.tensors }, layers: base.layers.map((l) => ({ ...l })), info: { ...base.info } };
    f(s);
    return s;
  };
  const cases: [string, unknown, string, RegExp][] = [
    ['not an object', null, 'TypeError', /spec/],
    ['config', edit((s) => void (s.config = { ...s.config, heads: 0 })), 'RangeError', /spec\.config\.heads/],
    ['layers', edit((s) => void (s.layers = {} as never)), 'TypeError', /spec\.layers/],
    ['NaN info', edit((s) => void (s.info.score = NaN)), 'RangeError', /spec\.info\.score/],
    ['typed array info', edit((s) => void (s.info.sensitivity = new Float64Array(2))), 'TypeError', /spec\.info\.sensitivity.*Float64Array/],
    ['undefined info', edit((s) => void (s.info.plan = { a: [1, undefined] })), 'TypeError', /spec\.info\.plan\.a\[1\]/],
    ['cyclic info', edit((s) => { const a: Record<string, unknown> = {}; a.self = a; s.info.a = a; }), 'TypeError', /spec\.info\.a\.self.*refers back/],
    ['layer type', edit((s) => void (s.layers[0] = { ...s.layers[0], type: 'ternary' } as never)), 'RangeError', /spec\.layers\[0\]\.type/],
    ['no segment', edit((s) => void (s.layers[0] = { ...s.layers[0], segment: undefined } as never)), 'TypeError', /spec\.layers\[0\]\.segment/],
    ['q dtype', edit((s) => void (s.layers[0] = { ...s.layers[0], segment: { weight: { ...(s.layers[0] as any).segment.weight, q: Tensor.zeros('float32', [32, 32]) }, activation: [] } } as never)), 'TypeError', /spec\.layers\[0\]\.segment\.weight\.q/],
    ['dtype mismatch', edit((s) => void (s.layers[0] = { ...s.layers[0], segment: { ...(s.layers[0] as any).segment, weight: { ...(s.layers[0] as any).segment.weight, dtype: 'int4' } } } as never)), 'TypeError', /spec\.layers\[0\]\.segment\.weight\.dtype/],
    ['zero point range', edit((s) => void (s.layers[0] = { ...s.layers[0], segment: { ...(s.layers[0] as any).segment, weight: { ...(s.layers[0] as any).segment.weight, zeroPoint: new Tensor('int32', [32], new Int32Array(32).fill(300)) } } } as never)), 'RangeError', /spec\.layers\[0\]\.segment\.weight\.zeroPoint values between -128 and 127/],
    ['bias', edit((s) => void (s.layers[0] = { ...s.layers[0], bias: [1, 2] } as never)), 'TypeError', /spec\.layers\[0\]\.bias/],
    ['outlierIdx', edit((s) => void (s.layers[1] = { ...s.layers[1], outlierIdx: [1, 2] } as never)), 'TypeError', /spec\.layers\[1\]\.outlierIdx/],
    ['bias length', edit((s) => void (s.layers[0] = { ...s.layers[0], bias: new Float32Array(3) } as never)), 'RangeError', /spec: layer blocks\.0\.self_attn\.q: tensor blocks\.0\.self_attn\.q\.bias has shape \[3\]/],
    ['unknown layer', edit((s) => void (s.layers[0] = { ...s.layers[0], name: 'blocks.7.ffn.0' } as never)), 'RangeError', /spec: layer blocks\.7\.ffn\.0: not a block linear/],
    ['twice', edit((s) => void s.layers.push(s.layers[0])), 'RangeError', /spec: layer blocks\.0\.self_attn\.q appears twice/],
    ['float and quantized', edit((s) => void (s.tensors['blocks.0.self_attn.q.bias'] = Tensor.zeros('float32', [32]))), 'RangeError', /spec\.tensors.*blocks\.0\.self_attn\.q\.bias/],
    ['missing float', edit((s) => void delete s.tensors['patch_embedding.weight']), 'RangeError', /spec: tensor patch_embedding\.weight/],
  ];
  for (const [name, s, cls, pattern] of cases) t.throws(() => encodeQuantizedModel(s as QuantizedModelSpec), { name: cls, message: pattern }, name);
  t.end();
});

t.test('writes are atomic: a failing write leaves the previous file and no temporary', async (t) => {
  const sub = mkdtempSync(path.join(dir, 'atomic-'));
  const file = path.join(sub, 'm.safetensors');
  await saveQuantizedModel(file, spec);
  const first = readFileSync(file);

  // The spec is refused before anything is written.
  await t.rejects(saveQuantizedModel(file, { ...spec, info: { bad: NaN } }), RangeError);
  t.same(readFileSync(file), first);
  t.same(readdirSync(sub), ['m.safetensors']);

  // The rename fails after the bytes were written (the target is a directory): the temporary is removed.
  const blocked = path.join(sub, 'dir.safetensors');
  mkdirSync(blocked);
  await t.rejects(saveQuantizedModel(blocked, spec), { code: /EISDIR|ENOTEMPTY|EEXIST|EPERM/ });
  t.same(readdirSync(sub).sort(), ['dir.safetensors', 'm.safetensors']);
  t.same(readdirSync(blocked), []);

  // No directory: nothing is created.
  await t.rejects(saveQuantizedModel(path.join(sub, 'none', 'm.safetensors'), spec), { code: 'ENOENT' });
  t.notOk(existsSync(path.join(sub, 'none')));
  await t.rejects(saveQuantizedModel('' as string, spec), TypeError);

  // Overwriting replaces the whole file.
  const other = makeSpec(tiny, 5);
  await saveQuantizedModel(file, other);
  t.same(Buffer.from(readFileSync(file)), Buffer.from(encodeQuantizedModel(other)));
  t.same(readdirSync(sub).sort(), ['dir.safetensors', 'm.safetensors']);
});
