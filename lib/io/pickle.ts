// A restricted unpickler: Python's pickle format read as data, never as code. The opcodes that build
// plain values (numbers, strings, bytes, lists, tuples, dicts) are interpreted here; every GLOBAL
// (the only way a pickle reaches code) is looked up in a table the caller gives, and anything not in
// it is refused before it could be used, naming the global. A pickle that calls os.system fails at
// the GLOBAL opcode that names posix.system; nothing of Python's is ever run.
import { describe } from '../util/validate.js';

/** A pickle this reader refuses: an opcode or a global outside what it accepts, or a corrupt stream. */
export class PickleError extends Error {
  override name = 'PickleError';
}

/** Keys of unpickled dicts: Python's str, int, float, bool and None (other keys become their repr-like text). */
export type PickleKey = string | number | bigint | boolean | null;

/** A Python dict or OrderedDict, in insertion order. */
export class PickleDict extends Map<PickleKey, unknown> {}

/** A Python tuple (kept apart from lists so that a reader can tell them apart). */
export class PickleTuple extends Array<unknown> {}

/** A global the caller allows: `call` receives the REDUCE arguments; `build` (optional) applies BUILD state. */
export interface PickleGlobal {
  call?(args: unknown[]): unknown;
  build?(target: unknown, state: unknown): unknown;
}

export interface UnpickleOptions {
  /** Allowed globals by 'module.name'; every other global is refused. */
  globals: Readonly<Record<string, PickleGlobal>>;
  /** Resolves persistent ids (BINPERSID); without it they are refused. */
  persistentLoad?(pid: unknown): unknown;
  /** Names the stream in errors (for example 'model.pt: archive/data.pkl'). */
  source?: string;
  /** How errors describe the allowed globals (default: their list). */
  allowedText?: string;
}

/** A reference to an allowed global on the stack (what GLOBAL pushes and REDUCE calls). */
export class GlobalRef {
  constructor(readonly qualifiedName: string, readonly impl: PickleGlobal) {}
}


/**
 * Reads a pickle (protocols 2 to 4: the protocol-2 opcodes torch.save writes, and the framing, memo
 * and short-string opcodes of protocols 3 and 4) into JavaScript values: None as null, bool, int as
 * number (bigint beyond 2^53), float, str, bytes as Uint8Array, list as Array, tuple as PickleTuple,
 * dict as PickleDict. Globals resolve only through `options.globals`.
 *
 * @example
 * const value = unpickle(bytes, { globals: { 'collections.OrderedDict': { call: () => new PickleDict() } } });
 */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): unknown {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array for bytes but received ${describe(bytes)}`);
  const source = options.source ?? 'pickle';
  const fail = (why: string): never => {
    throw new PickleError(`${source}: ${why}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  const buildTargets = new WeakMap<object, PickleGlobal>();
  let at = 0;

  const need = (n: number) => {
    if (at + n > bytes.byteLength) fail(`ends inside an opcode at byte ${at} (truncated?)`);
  };
  const u8 = () => (need(1), bytes[at++]);
  const u16 = () => (need(2), (at += 2), view.getUint16(at - 2, true));
  const u32 = () => (need(4), (at += 4), view.getUint32(at - 4, true));
  const i32 = () => (need(4), (at += 4), view.getInt32(at - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(at, true);
    at += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`a length of ${v} bytes at byte ${at - 8}`);
    return Number(v);
  };
  const take = (n: number) => (need(n), (at += n), bytes.subarray(at - n, at));
  const utf8 = (b: Uint8Array) => {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(b);
    } catch {
      return fail(`a string at byte ${at - b.byteLength} is not UTF-8`);
    }
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, at);
    if (end < 0) fail(`a text argument at byte ${at} has no end of line`);
    const s = new TextDecoder('latin1').decode(bytes.subarray(at, end));
    at = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1])) fail(`pops an empty stack at byte ${at - 1}`);
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail(`reads an empty stack at byte ${at - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail(`has no MARK for the opcode at byte ${at - 1}`);
    return stack.splice(m!);
  };
  const tuple = (items: unknown[]) => PickleTuple.from(items) as PickleTuple;
  const key = (k: unknown): PickleKey => {
    if (k === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof k)) return k as PickleKey;
    if (k instanceof PickleTuple) return `(${k.map((x) => String(key(x))).join(', ')})`;
    return fail(`uses ${describe(k)} as a dict key`);
  };
  const setItems = (target: unknown, items: unknown[]) => {
    if (!(target instanceof PickleDict)) fail(`sets items on ${describe(target)}, which is not a dict`);
    if (items.length % 2) fail('SETITEMS has an odd number of items');
    for (let i = 0; i < items.length; i += 2) (target as PickleDict).set(key(items[i]), items[i + 1]);
  };
  const append = (target: unknown, items: unknown[]) => {
    if (!Array.isArray(target) || target instanceof PickleTuple) fail(`appends to ${describe(target)}, which is not a list`);
    (target as unknown[]).push(...items);
  };
  const resolve = (module: string, name: string) => {
    const qualifiedName = `${module}.${name}`;
    const impl = Object.hasOwn(options.globals, qualifiedName) ? options.globals[qualifiedName] : undefined;
    if (!impl) fail(`refuses the global ${qualifiedName}: a pickle that names it could run code, so it is not read (allowed: ${options.allowedText ?? Object.keys(options.globals).join(', ')})`);
    return new GlobalRef(qualifiedName, impl!);
  };
  const signedLittleEndian = (b: Uint8Array): number | bigint => {
    if (b.byteLength === 0) return 0;
    let v = 0n;
    for (let i = b.byteLength - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.byteLength - 1] & 0x80) v -= 1n << BigInt(8 * b.byteLength);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };

  for (;;) {
    const offset = at;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const version = u8();
        if (version > 4) fail(`is pickle protocol ${version}; protocols 2 to 4 are read`);
        break;
      }
      case 0x95: // FRAME: a length prefix, nothing to do when the whole stream is in memory
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) fail(`stops with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(signedLittleEndian(take(u8())));
        break;
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) fail(`LONG4 of negative length at byte ${offset}`);
        stack.push(signedLittleEndian(take(n)));
        break;
      }
      case 0x47: // BINFLOAT (big-endian double)
        need(8);
        stack.push(view.getFloat64(at, false));
        at += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(take(u64())));
        break;
      case 0x54: // BINSTRING (Python 2 str)
        stack.push(new TextDecoder('latin1').decode(take(i32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(new TextDecoder('latin1').decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(Uint8Array.from(take(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(Uint8Array.from(take(u8())));
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x85: // TUPLE1
        stack.push(tuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop(), a = pop();
        stack.push(tuple([a, b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop(), a = pop();
        stack.push(tuple([a, b, c]));
        break;
      }
      case 0x74: // TUPLE
        stack.push(tuple(popMark()));
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: { // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new PickleDict());
        break;
      case 0x64: { // DICT
        const d = new PickleDict();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`reads memo slot ${i}, which was never written (byte ${offset})`);
        stack.push(memo.get(i));
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        stack.push(resolve(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail(`STACK_GLOBAL of ${describe(module)}.${describe(name)}`);
        stack.push(resolve(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop(), fn = pop();
        if (!(fn instanceof GlobalRef)) fail(`calls ${describe(fn)}, which is not an allowed global (byte ${offset})`);
        if (!(args instanceof PickleTuple)) fail(`calls ${(fn as GlobalRef).qualifiedName} with ${describe(args)} instead of an argument tuple`);
        const g = fn as GlobalRef;
        if (!g.impl.call) fail(`calls ${g.qualifiedName}, which is only accepted as a type, never called`);
        try {
          const made = g.impl.call!([...(args as PickleTuple)]);
          // What a global made remembers it, so that a BUILD on it goes back to the same global.
          if (g.impl.build && typeof made === 'object' && made !== null) buildTargets.set(made, g.impl);
          stack.push(made);
        } catch (e) {
          if (e instanceof PickleError) throw e;
          fail(`${g.qualifiedName}: ${(e as Error).message}`);
        }
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const target = top();
        const owner = buildTargets.get(target as object);
        if (!owner?.build) fail(`BUILD on ${describe(target)} is not accepted (byte ${offset})`);
        stack[stack.length - 1] = owner!.build!(target, state);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail('holds a persistent id, which this reader does not resolve');
        try {
          stack.push(options.persistentLoad!(pid));
        } catch (e) {
          if (e instanceof PickleError) throw e;
          fail(`persistent id ${describe(pid)}: ${(e as Error).message}`);
        }
        break;
      }
      default:
        fail(`holds opcode 0x${op.toString(16).padStart(2, '0')} (${OPCODE_NAMES[op] ?? 'unknown'}) at byte ${offset}, which a weights file never needs; refused`);
    }
  }
}

/** Names of the opcodes refused, for the error message. */
const OPCODE_NAMES: Record<number, string> = {
  0x69: 'INST', 0x6f: 'OBJ', 0x81: 'NEWOBJ', 0x92: 'NEWOBJ_EX', 0x50: 'PERSID', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4',
  0x49: 'INT', 0x4c: 'LONG', 0x46: 'FLOAT', 0x53: 'STRING', 0x56: 'UNICODE', 0x67: 'GET', 0x70: 'PUT',
  0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER', 0x8e: 'BINBYTES8',
};
