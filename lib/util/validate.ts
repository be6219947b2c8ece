// Argument checks for the public API. Every public function validates here, before any native call,
// and throws a TypeError (wrong kind of value) or RangeError (right kind, bad value) whose message
// names the argument and says what was received.

/** Short description of a received value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of length ${(value as unknown as { length: number }).length}`;
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'Object'})`;
  return typeof value;
}

export function expectInteger(value: unknown, name: string, range: { min?: number; max?: number } = {}): number {
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = range;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`Expected an integer for ${name} but received ${describe(value)}`);
  }
  if (value < min || value > max) {
    const bounds = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`;
    throw new RangeError(`Expected an integer ${bounds} for ${name} but received ${value}`);
  }
  return value;
}

export function expectFiniteNumber(value: unknown, name: string, range: { min?: number; max?: number; positive?: boolean } = {}): number {
  if (typeof value !== 'number') throw new TypeError(`Expected a number for ${name} but received ${describe(value)}`);
  if (!Number.isFinite(value)) throw new RangeError(`Expected a finite number for ${name} but received ${value}`);
  if (range.positive && !(value > 0)) throw new RangeError(`Expected a positive number for ${name} but received ${value}`);
  if (range.min !== undefined && value < range.min) throw new RangeError(`Expected a number >= ${range.min} for ${name} but received ${value}`);
  if (range.max !== undefined && value > range.max) throw new RangeError(`Expected a number <= ${range.max} for ${name} but received ${value}`);
  return value;
}

export function expectOneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new RangeError(`Expected one of ${allowed.map((a) => `'${a}'`).join(', ')} for ${name} but received ${describe(value)}`);
  }
  return value as T;
}

export function expectBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`Expected a boolean for ${name} but received ${describe(value)}`);
  return value;
}

export function expectObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`Expected an options object for ${name} but received ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** Throws a RangeError naming `name` if any element is NaN or infinite (used for scales and weights). */
export function expectAllFinite(values: ArrayLike<number>, name: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new RangeError(`Expected finite values in ${name} but element ${i} is ${values[i]}`);
    }
  }
}
