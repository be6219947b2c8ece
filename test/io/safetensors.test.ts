import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Tensor, decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors, SafetensorsError } from '../../lib/index.js';

// A file assembled byte by byte, independently of the encoder: header length, JSON, data.
function handMade(header: object, data: number[]): Uint8Array {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  Buffer.from(data).copy(out, 8 + json.length);
  return new Uint8Array(out);
}

t.test('decodes a hand-made file', (t) => {
  // float32 1.0 = 00 00 80 3f, float32 -2.0 = 00 00 00 c0; int8 -1, 5
  const bytes = handMade(
    { __metadata__: { format: 'pt' }, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'I8', shape: [1, 2], data_offsets: [8, 10] } },
    [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 0xff, 5],
  );
  const { tensors, metadata } = decodeSafetensors(bytes);
  t.same(metadata, { format: 'pt' });
  t.same([...tensors.a.data], [1, -2]);
  t.equal(tensors.a.dtype, 'float32');
  t.same(tensors.b.shape, [1, 2]);
  t.same([...tensors.b.data], [-1, 5]);
  t.end();
});

t.test('encodes what the format specifies and round-trips every dtype', (t) => {
  const tensors = {
    f32: new Tensor('float32', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6.5])),
    f16: new Tensor('float16', [2], new Uint16Array([0x3c00, 0xc000])),
    bf16: new Tensor('bfloat16', [2], new Uint16Array([0x3f80, 0x4000])),
    i32: new Tensor('int32', [3], new Int32Array([-7, 0, 2 ** 31 - 1])),
    i8: new Tensor('int8', [1], new Int8Array([-128])),
    u8: new Tensor('uint8', [0], new Uint8Array(0)),
  };
  const bytes = encodeSafetensors(tensors, { qarvd: '1' });
  const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
  t.equal(n % 8, 0, 'header padded to 8 bytes');
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString());
  t.same(header.f32, { dtype: 'F32', shape: [2, 3], data_offsets: [header.f32.data_offsets[0], header.f32.data_offsets[0] + 24] });
  t.same(header.__metadata__, { qarvd: '1' });
  const back = decodeSafetensors(bytes).tensors;
  for (const [k, v] of Object.entries(tensors)) {
    t.equal(back[k].dtype, v.dtype, `${k} dtype`);
    t.same(back[k].shape, v.shape, `${k} shape`);
    t.same([...back[k].data], [...v.data], `${k} data`);
  }
  t.end();
});

t.test('rejects corrupt and truncated files with a clear error', (t) => {
  const good = encodeSafetensors({ w: Tensor.fromArray([1, 2, 3, 4]) });
  const cases: [string, Uint8Array, RegExp][] = [
    ['short', good.subarray(0, 5), /shorter than the 8-byte header/],
    ['truncated data', good.subarray(0, good.length - 3), /truncated/],
    ['huge header length', (() => { const b = Uint8Array.from(good); new DataView(b.buffer).setBigUint64(0, 1n << 40n, true); return b; })(), /exceeds/],
    ['header past end', (() => { const b = Uint8Array.from(good); new DataView(b.buffer).setBigUint64(0, BigInt(good.length), true); return b; })(), /runs past the end/],
    ['bad json', handMade({}, []).map((v, i) => (i === 8 ? 0x7b + 1 : v)), /not UTF-8 JSON/],
    ['unknown dtype', handMade({ a: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, [0, 0, 0, 0, 0, 0, 0, 0]), /dtype F64/],
    ['shape mismatch', handMade({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, [0, 0, 0, 0, 0, 0, 0, 0]), /shape \[3\]/],
    ['overlap', handMade({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] }, b: { dtype: 'U8', shape: [2], data_offsets: [1, 3] } }, [1, 2, 3]), /overlaps/],
    ['gap', handMade({ a: { dtype: 'U8', shape: [1], data_offsets: [1, 2] } }, [1, 2]), /gap/],
    ['trailing bytes', handMade({ a: { dtype: 'U8', shape: [1], data_offsets: [0, 1] } }, [1, 2]), /not described/],
    ['reversed offsets', handMade({ a: { dtype: 'U8', shape: [0], data_offsets: [1, 0] } }, [1]), /reversed/],
    ['bad shape', handMade({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 1] } }, [1]), /shape/],
    ['metadata not strings', handMade({ __metadata__: { a: 1 } }, []), /__metadata__.a/],
    ['not an object', handMade([1, 2] as unknown as object, []), /not a JSON object/],
  ];
  for (const [name, bytes, pattern] of cases) {
    t.throws(() => decodeSafetensors(bytes, 'x.safetensors'), { name: 'SafetensorsError', message: pattern }, name);
  }
  t.throws(() => decodeSafetensors(good.subarray(0, 5), 'model.safetensors'), /model\.safetensors/, 'names the file');
  t.end();
});

t.test('refuses what it cannot store', (t) => {
  t.throws(() => encodeSafetensors({ q: Tensor.zeros('int4', [3]) }), { name: 'TypeError', message: /tensors\.q.*int4/ });
  t.throws(() => encodeSafetensors({ q: [1, 2] as never }), { name: 'TypeError', message: /tensors\.q/ });
  t.throws(() => encodeSafetensors({}, { a: 3 as never }), { name: 'TypeError', message: /metadata\.a/ });
  t.end();
});

t.test('files: atomic write, read back, nothing half-written on failure', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-st-'));
  const file = path.join(dir, 'm.safetensors');
  await writeSafetensors(file, { w: Tensor.fromArray([1, 2]) }, { v: '1' });
  const first = readFileSync(file);
  t.same([...(await readSafetensors(file)).tensors.w.data], [1, 2]);

  // A failing write (an unstorable tensor) leaves the previous file intact and no temporary behind.
  await t.rejects(writeSafetensors(file, { w: Tensor.zeros('uint4', [2]) }), TypeError);
  t.same(readFileSync(file), first);
  t.same(readdirSync(dir), ['m.safetensors']);

  // Overwriting replaces the file as a whole.
  await writeSafetensors(file, { w: Tensor.fromArray([3]) });
  t.same([...(await readSafetensors(file)).tensors.w.data], [3]);
  t.same(readdirSync(dir), ['m.safetensors']);

  // A truncated file on disk is a SafetensorsError naming it.
  writeFileSync(file, first.subarray(0, first.length - 1));
  await t.rejects(readSafetensors(file), { name: 'SafetensorsError', message: /m\.safetensors.*truncated/ });
  await t.rejects(readSafetensors(path.join(dir, 'missing.safetensors')), { code: 'ENOENT' });
  t.notOk(existsSync(path.join(dir, 'missing.safetensors')));
  t.ok(SafetensorsError.prototype instanceof Error);
});
