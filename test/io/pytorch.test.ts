// PyTorch checkpoints against fixtures written by torch itself (test/fixtures/checkpoints/make_fixtures.py).
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { commonPrefix, findStateDict, openPytorchCheckpoint, TorchTensor } from '../../lib/io/pytorch.js';
import { PickleDict, PickleError, unpickle } from '../../lib/io/pickle.js';
import { openZip } from '../../lib/io/zip.js';
import { readSafetensors } from '../../lib/io/safetensors.js';
import { toFloat32 } from '../../lib/tensor/convert.js';

const fixtures = new URL('../fixtures/checkpoints/', import.meta.url).pathname;
const fixture = (name: string) => path.join(fixtures, name);
const MARKER = '/tmp/qarvd-malicious-pickle-ran';

t.test('a Self-Forcing style checkpoint: generator_ema by default, model. prefix, bf16 kept, the same bits as torch wrote', async (t) => {
  const ckpt = await openPytorchCheckpoint(fixture('tiny_self_forcing.pt'));
  t.teardown(() => ckpt.close());
  const root = ckpt.root as PickleDict;
  t.same([...root.keys()], ['generator', 'generator_ema', 'step']);
  t.equal(root.get('step'), 1234);
  const sd = findStateDict(root);
  t.equal(sd.key, 'generator_ema', 'the EMA weights are the default');
  t.equal(findStateDict(root, { key: 'generator' }).key, 'generator');
  const names = [...sd.tensors.keys()];
  t.equal(commonPrefix(names), 'model.');
  // The same weights as Wan names in a safetensors file that Python wrote byte by byte.
  const { tensors: wan } = await readSafetensors(fixture('tiny_wan.safetensors'));
  t.same(names.map((n) => n.slice('model.'.length)).sort(), Object.keys(wan).sort());
  for (const [name, ref] of sd.tensors) {
    const x = await ckpt.readTensor(ref, name);
    const w = wan[name.slice('model.'.length)];
    t.equal(x.dtype, 'bfloat16', `${name} stays bf16`);
    t.same(x.shape, w.shape);
    if (Buffer.compare(Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength), Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength)) !== 0) t.fail(`${name} differs`);
  }
  // generator and generator_ema are different weights.
  const g = await ckpt.readTensor(findStateDict(root, { key: 'generator' }).tensors.get('model.head.head.weight')!);
  t.notSame(g.data, (await ckpt.readTensor(sd.tensors.get('model.head.head.weight')!)).data);
  t.throws(() => findStateDict(root, { key: 'critic' }), { name: 'CheckpointError', message: /no key 'critic'.*'generator', 'generator_ema', 'step'/ });
  t.throws(() => findStateDict(root, { key: 'step' }), { message: /holds no tensors; these keys do: generator, generator_ema/ });
});

t.test('views of one storage, offsets, strides, other dtypes: the values torch shows', async (t) => {
  const expected = JSON.parse(readFileSync(fixture('views.json'), 'utf8')) as Record<string, { shape: number[]; values: number[] }>;
  const ckpt = await openPytorchCheckpoint(fixture('views.pt'));
  t.teardown(() => ckpt.close());
  const { key, tensors } = findStateDict(ckpt.root);
  t.equal(key, 'state_dict');
  for (const name of ['base', 'transposed', 'rows', 'column', 'half', 'scalar']) {
    const x = toFloat32(await ckpt.readTensor(tensors.get(name)!, name));
    t.same(x.shape, expected[name].shape, `${name} shape`);
    t.same([...x.data], expected[name].values, `${name} values`);
  }
  t.same(tensors.get('transposed')!.stride, [1, 6]);
  t.equal(tensors.get('rows')!.storageOffset, 6);
  t.equal(tensors.get('rows')!.storage, tensors.get('base')!.storage, 'views share their storage');
  const long = tensors.get('long')!;
  t.equal(long.torchDtype, 'int64');
  const bytes = await ckpt.readTensorBytes(long);
  t.same([...new BigInt64Array(bytes.buffer, bytes.byteOffset, 3)], expected.long.values.map(BigInt));
  await t.rejects(ckpt.readTensor(long, 'long'), { name: 'TypeError', message: /long is int64/ });
});

t.test('a pickle that calls os.system or eval is refused, naming the global, and nothing runs', async (t) => {
  rmSync(MARKER, { force: true });
  await t.rejects(openPytorchCheckpoint(fixture('malicious.pt')), { name: 'PickleError', message: /refuses the global posix\.system/ });
  await t.rejects(openPytorchCheckpoint(fixture('malicious_builtins.pt')), { name: 'PickleError', message: /refuses the global __builtin__\.eval/ });
  t.notOk(existsSync(MARKER), 'the command in the pickle never ran');
  // Hand-made pickles: the same refusal through STACK_GLOBAL, code-running opcodes, corrupt streams.
  const pickle = (...parts: (number[] | string)[]) => Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...Buffer.from(p, 'latin1')] : p)));
  const globals = { 'collections.OrderedDict': { call: () => new PickleDict() } };
  t.throws(() => unpickle(pickle([0x80, 4, 0x8c, 2], 'os', [0x8c, 6], 'system', [0x93, 0x8c, 2], 'ls', [0x85, 0x52, 0x2e]), { globals }), { name: 'PickleError', message: /refuses the global os\.system/ });
  t.throws(() => unpickle(pickle([0x80, 2], '(', 'cos\nsystem\n', [0x8c, 2], 'ls', 'o.'), { globals }), { message: /os\.system/ });
  t.throws(() => unpickle(pickle([0x80, 2, 0x29, 0x81, 0x2e]), { globals }), { name: 'PickleError', message: /NEWOBJ/ });
  t.throws(() => unpickle(pickle([0x80, 2, 0x58, 10, 0, 0, 0], 'abc'), { globals }), { name: 'PickleError', message: /truncated/ });
  t.throws(() => unpickle(pickle([0x80, 2], 'ccollections\nOrderedDict\n', [0x4b, 1, 0x52, 0x2e]), { globals }), { message: /instead of an argument tuple/ });
  t.throws(() => unpickle(pickle([0x80, 2, 0x68, 3, 0x2e]), { globals }), { message: /memo slot 3/ });
  t.throws(() => unpickle(pickle([0x80, 5, 0x4e, 0x2e]), { globals }), { message: /protocol 5/ });
  // What is accepted comes out as plain values.
  const v = unpickle(pickle([0x80, 2, 0x7d, 0x28, 0x58, 1, 0, 0, 0], 'a', [0x4a, 0xff, 0xff, 0xff, 0xff, 0x58, 1, 0, 0, 0], 'b', [0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x58, 1, 0, 0, 0], 'c', [0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x75, 0x2e]), { globals }) as PickleDict;
  t.same([...v], [['a', -1], ['b', 2n ** 64n], ['c', 1.5]]);
});

t.test('other files are clear errors', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-pt-'));
  await t.rejects(openPytorchCheckpoint(fixture('legacy.pt')), { name: 'CheckpointError', message: /legacy torch.save format/ });
  await t.rejects(openPytorchCheckpoint(fixture('tiny_wan.safetensors')), { name: 'CheckpointError', message: /not a PyTorch checkpoint/ });
  const cut = path.join(dir, 'cut.pt');
  const whole = readFileSync(fixture('tiny_self_forcing.pt'));
  writeFileSync(cut, whole.subarray(0, whole.length - 100));
  await t.rejects(openPytorchCheckpoint(cut), { name: 'CheckpointError' });
  await t.rejects(openPytorchCheckpoint(path.join(dir, 'missing.pt')), { code: 'ENOENT' });
});

/**
 * Rewrites a torch.save archive as zip64 with `hole` bytes of nothing (a sparse region) before its
 * first entry, so that every offset lies past 4 GiB: 64-bit sizes and offsets in zip64 extra fields,
 * the zip64 end of central directory record and its locator (APPNOTE 4.3.14-4.3.15, 4.5.3).
 */
async function writeZip64(file: string, entries: { name: string; data: Uint8Array }[], hole: number): Promise<void> {
  const handle = await open(file, 'w');
  const central: Buffer[] = [];
  let at = hole;
  const put = async (b: Buffer) => {
    await handle.write(b, 0, b.length, at);
    at += b.length;
  };
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const offset = at;
    const local = Buffer.alloc(30 + name.length + 20);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(45, 4);
    local.writeUInt32LE(crc32(e.data), 14);
    local.writeUInt32LE(0xffffffff, 18);
    local.writeUInt32LE(0xffffffff, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(20, 28);
    name.copy(local, 30);
    local.writeUInt16LE(0x0001, 30 + name.length);
    local.writeUInt16LE(16, 32 + name.length);
    local.writeBigUInt64LE(BigInt(e.data.length), 34 + name.length);
    local.writeBigUInt64LE(BigInt(e.data.length), 42 + name.length);
    await put(local);
    await put(Buffer.from(e.data));
    const c = Buffer.alloc(46 + name.length + 28);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(45, 4);
    c.writeUInt16LE(45, 6);
    c.writeUInt32LE(crc32(e.data), 16);
    c.writeUInt32LE(0xffffffff, 20);
    c.writeUInt32LE(0xffffffff, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt16LE(28, 30);
    c.writeUInt32LE(0xffffffff, 42);
    name.copy(c, 46);
    c.writeUInt16LE(0x0001, 46 + name.length);
    c.writeUInt16LE(24, 48 + name.length);
    c.writeBigUInt64LE(BigInt(e.data.length), 50 + name.length);
    c.writeBigUInt64LE(BigInt(e.data.length), 58 + name.length);
    c.writeBigUInt64LE(BigInt(offset), 66 + name.length);
    central.push(c);
  }
  const cdOffset = at;
  const cd = Buffer.concat(central);
  await put(cd);
  const eocd64Offset = at;
  const eocd64 = Buffer.alloc(56);
  eocd64.writeUInt32LE(0x06064b50, 0);
  eocd64.writeBigUInt64LE(44n, 4);
  eocd64.writeUInt16LE(45, 12);
  eocd64.writeUInt16LE(45, 14);
  eocd64.writeBigUInt64LE(BigInt(entries.length), 24);
  eocd64.writeBigUInt64LE(BigInt(entries.length), 32);
  eocd64.writeBigUInt64LE(BigInt(cd.length), 40);
  eocd64.writeBigUInt64LE(BigInt(cdOffset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(eocd64Offset), 8);
  locator.writeUInt32LE(1, 16);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(0xffff, 8);
  eocd.writeUInt16LE(0xffff, 10);
  eocd.writeUInt32LE(0xffffffff, 12);
  eocd.writeUInt32LE(0xffffffff, 16);
  await put(Buffer.concat([eocd64, locator, eocd]));
  await handle.close();
}

t.test('a zip64 checkpoint over 4 GiB (sparse) reads from its offsets, without loading the file', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-zip64-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const small = await openZip(fixture('views.pt'));
  const entries = [];
  for (const name of small.entries.keys()) entries.push({ name: name.replace(/^views\//, 'big/'), data: await small.read(name) });
  await small.close();
  const big = path.join(dir, 'big.pt');
  await writeZip64(big, entries, 2 ** 32 + 12345);
  t.ok(statSync(big).size > 2 ** 32, 'the file is over 4 GiB');
  const ckpt = await openPytorchCheckpoint(big);
  t.teardown(() => ckpt.close());
  const { tensors } = findStateDict(ckpt.root);
  const expected = JSON.parse(readFileSync(fixture('views.json'), 'utf8'));
  t.same([...(await ckpt.readTensor(tensors.get('column')!)).data], expected.column.values);
  t.ok(tensors.get('base') instanceof TorchTensor);
  t.ok(process.memoryUsage().rss < 2 ** 31, 'nowhere near the file size in memory');
});

t.test("the README's checkpoint examples, as written (on the tiny fixtures)", async (t) => {
  const { openSafetensors } = await import('../../lib/index.js');
  const f = await openSafetensors(fixture('tiny_wan.safetensors'));
  t.match(f.entries.find((e) => e.name === 'blocks.0.ffn.0.weight'), { dtype: 'bfloat16', shape: [64, 32] }, 'from the header alone');
  t.equal((await f.read('blocks.0.ffn.0.weight')).dtype, 'bfloat16');
  await f.close();
  const ckpt = await openPytorchCheckpoint(fixture('tiny_self_forcing.pt'));
  const { key, tensors } = findStateDict(ckpt.root);
  t.equal(key, 'generator_ema');
  t.equal(commonPrefix([...tensors.keys()]), 'model.');
  t.equal((await ckpt.readTensor(tensors.get('model.blocks.0.ffn.0.weight')!)).dtype, 'bfloat16');
  await ckpt.close();
  t.equal(commonPrefix(['module.model.a.weight', 'module.model.b.bias']), 'module.model.', 'wrapper prefixes, repeatedly');
  t.equal(commonPrefix(['model.a', 'other.b']), '');
});
