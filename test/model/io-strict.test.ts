// A model file must match its configuration exactly: a block more or less than the configuration
// says, an unknown tensor, a misshapen one or a non-finite weight is an error naming the tensor (they
// loaded before: a fourth block was silently dropped, NaN weights gave NaN latents with exit 0), and
// a configuration whose KV cache cannot be allocated is refused when it is read.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Tensor } from '../../lib/tensor/tensor.js';
import { EMBEDDED_DEFAULT, type DitConfig } from '../../lib/model/config.js';
import { loadModel, saveModelWeights, CONFIG_METADATA_KEY } from '../../lib/model/io.js';
import { syntheticWeights } from '../../lib/model/weights.js';
import { writeSafetensors } from '../../lib/io/safetensors.js';
import { run } from '../helpers/cli.js';

const tiny: DitConfig = { ...EMBEDDED_DEFAULT, name: 'tiny', inChannels: 4, outChannels: 4, dim: 24, ffnDim: 40, heads: 2, layers: 1, freqDim: 16, textDim: 8, textLen: 5, latentHeight: 4, latentWidth: 4, framesPerChunk: 1, chunks: 2 };
const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-io-strict-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const weights = (c: DitConfig): Record<string, Tensor> => ({ ...syntheticWeights(c, { seed: 3 }).tensors });
async function save(name: string, c: DitConfig, tensors: Record<string, Tensor>, config: DitConfig = c): Promise<string> {
  const file = path.join(dir, name);
  await writeSafetensors(file, tensors, { [CONFIG_METADATA_KEY]: JSON.stringify(config), format: 'pt' });
  return file;
}

t.test('a file that matches its configuration loads', async (t) => {
  const file = path.join(dir, 'ok.safetensors');
  await saveModelWeights(file, tiny, weights(tiny));
  t.equal((await loadModel(file)).config.layers, 1);
});

t.test('more blocks than the configuration says is an error naming the first extra tensor', async (t) => {
  const two = { ...tiny, layers: 2 };
  const file = await save('extra-block.safetensors', tiny, weights(two), tiny);
  await t.rejects(loadModel(file), { name: 'RangeError', message: /tensor blocks\.1\.\S+ is not part of the tiny configuration \(1 blocks\)/ });
  const r = await run(['generate', '--model', file, '--out', path.join(dir, 'g'), '--quiet', '--chunks', '1']);
  t.equal(r.code, 1, 'the CLI exits 1');
  t.match(r.err, /blocks\.1\./);
});

t.test('fewer blocks than the configuration says is an error naming a missing tensor', async (t) => {
  const file = await save('missing-block.safetensors', tiny, weights(tiny), { ...tiny, layers: 2 });
  await t.rejects(loadModel(file), { name: 'RangeError', message: /tensor blocks\.1\.\S+ is missing/ });
});

t.test('an unknown tensor is an error naming it', async (t) => {
  const file = await save('unknown.safetensors', tiny, { ...weights(tiny), 'extra.weight': Tensor.zeros('float32', [3]) });
  await t.rejects(loadModel(file), { name: 'RangeError', message: /tensor extra\.weight is not part of the tiny configuration/ });
});

t.test('a non-finite weight is an error naming the tensor and the element', async (t) => {
  for (const [bad, label] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [-Infinity, '-Infinity']] as const) {
    const tensors = weights(tiny);
    const w = tensors['blocks.0.ffn.0.weight'];
    const data = Float32Array.from(w.data as Float32Array);
    data[7] = bad;
    tensors['blocks.0.ffn.0.weight'] = new Tensor('float32', w.shape, data);
    const file = await save(`nonfinite-${label}.safetensors`, tiny, tensors);
    await t.rejects(loadModel(file), { name: 'RangeError', message: new RegExp(`tensor blocks\\.0\\.ffn\\.0\\.weight holds a non-finite weight \\(${label.replace('-', '\\-')} at element 7\\)`) });
  }
  // A norm weight (not a linear) is checked too, and in 16-bit files.
  const tensors = weights(tiny);
  const n = tensors['blocks.0.norm3.weight'];
  tensors['blocks.0.norm3.weight'] = new Tensor('bfloat16', n.shape, new Uint16Array(n.size).fill(0x7fc0)); // bf16 NaN
  const file = await save('nonfinite-bf16.safetensors', tiny, tensors);
  await t.rejects(loadModel(file), { name: 'RangeError', message: /tensor blocks\.0\.norm3\.weight holds a non-finite weight \(NaN at element 0\)/ });
});

t.test('a configuration whose KV cache cannot exist is refused when the file is read', async (t) => {
  const file = await save('chunks.safetensors', tiny, weights(tiny), { ...tiny, chunks: 1e9 });
  await t.rejects(loadModel(file), { name: 'RangeError', message: /chunks.*KV cache/ });
});
