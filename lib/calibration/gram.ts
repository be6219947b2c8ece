// Weighted X^T X accumulation (the Hessian proxy of GPTQ), streaming and mergeable.
import type { Tensor } from '../tensor/tensor.js';
import { describe, expectInteger } from '../util/validate.js';
import { decodeFloat64, encodeFloat64, expectTagged } from './codec.js';
import { expectFinite, expectFloatTensor, expectWeight, expectWeights, options, rowsCols } from './checks.js';
import { calib, NO_WEIGHTS } from './native.js';

/**
 * Weights of an accumulation: row r of x (seen as [rows, lastDim]) counts
 * `weight * rowWeights[r]` (defaults 1), e.g. the chunk weight of the batch or of every token.
 */
export interface GramOptions {
  weight?: number;
  rowWeights?: ArrayLike<number>;
}

export interface GramJSON {
  type: 'Gram';
  version: 1;
  cols: number;
  rows: number;
  weightSum: number;
  /** base64 of the little-endian float64 matrix, row-major */
  matrix: string;
}

interface Args {
  data: Float32Array;
  rows: number;
  cols: number;
  rowWeights: Float64Array;
  weight: number;
  weightSum: number;
}

/**
 * `H = sum_r w_r x_r x_r^T` over every row x_r of the batches seen (a cols x cols float64 matrix,
 * symmetric, row-major), with the number of rows and the total weight `sum_r w_r`, so that
 * `H / weightSum` is the weighted mean. Accumulators merge by adding.
 *
 * Precision: on the AVX2 path products and sums are float32 within blocks of 256 rows, added into
 * float64; each entry is within about 256 * 2^-24 * sum_r |w_r x_ri x_rj| of the exact value
 * (typically much closer). The scalar path is float64 throughout.
 *
 * @example
 * const g = new Gram(1536);
 * for (const { x, chunk } of batches) await g.accumulate(x, { weight: chunkWeights[chunk] });
 * const hessian = g.mean();
 */
export class Gram {
  readonly cols: number;
  readonly matrix: Float64Array;
  /** Rows accumulated. */
  rows = 0;
  /** Sum of the row weights accumulated. */
  weightSum = 0;
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  constructor(cols: number) {
    this.cols = expectInteger(cols, 'cols', { min: 1, max: 65536 });
    this.matrix = new Float64Array(this.cols * this.cols);
  }

  /** Adds the rows of x (float32, last dim = cols). Blocks the event loop. */
  accumulateSync(x: Tensor<'float32'>, options?: GramOptions): this {
    this.#idle('accumulateSync');
    const a = this.#prepare(x, options);
    calib().calibGramAccumulate(a.data, a.rows, a.cols, a.rowWeights, a.weight, this.matrix, false);
    this.rows += a.rows;
    this.weightSum += a.weightSum;
    return this;
  }

  /** Adds the rows of x off the event loop; accumulations into one Gram run one after another. */
  accumulate(x: Tensor<'float32'>, options?: GramOptions): Promise<this> {
    let a: Args;
    try {
      a = this.#prepare(x, options);
    } catch (e) {
      return Promise.reject(e);
    }
    this.#pending++;
    const run = this.#tail
      .then(() => calib().calibGramAccumulate(a.data, a.rows, a.cols, a.rowWeights, a.weight, this.matrix, true))
      .then(() => {
        this.rows += a.rows;
        this.weightSum += a.weightSum;
        return this;
      })
      .finally(() => this.#pending--);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Adds another accumulator of the same size. */
  merge(other: Gram): this {
    this.#idle('merge');
    if (!(other instanceof Gram)) throw new TypeError(`Expected a Gram for other but received ${describe(other)}`);
    if (other.cols !== this.cols) throw new RangeError(`Expected other to have ${this.cols} cols but received ${other.cols}`);
    other.#idle('merge');
    for (let i = 0; i < this.matrix.length; i++) this.matrix[i] += other.matrix[i];
    this.rows += other.rows;
    this.weightSum += other.weightSum;
    return this;
  }

  /** H / weightSum (the weighted mean of x x^T). */
  mean(): Float64Array {
    this.#idle('mean');
    if (!(this.weightSum > 0)) throw new RangeError('Cannot take the mean of a Gram accumulator with no weight (nothing accumulated)');
    return this.matrix.map((v) => v / this.weightSum);
  }

  toJSON(): GramJSON {
    this.#idle('toJSON');
    return { type: 'Gram', version: 1, cols: this.cols, rows: this.rows, weightSum: this.weightSum, matrix: encodeFloat64(this.matrix) };
  }

  static fromJSON(json: unknown): Gram {
    const o = expectTagged(json, 'json', 'Gram', 1);
    const g = new Gram(o.cols as number);
    g.matrix.set(decodeFloat64(o.matrix, 'json.matrix', g.cols * g.cols));
    g.rows = expectInteger(o.rows, 'json.rows', { min: 0 });
    g.weightSum = expectWeight(o.weightSum, 'json.weightSum');
    return g;
  }

  #idle(what: string): void {
    if (this.#pending > 0) throw new Error(`Gram.${what}: an accumulate() is still running; await it first`);
  }

  #prepare(x: unknown, opts: unknown): Args {
    const t = expectFloatTensor(x, 'x');
    const { rows, cols } = rowsCols(t);
    if (cols !== this.cols) throw new RangeError(`Expected x to have ${this.cols} elements in its last dimension but received shape [${t.shape.join(', ')}]`);
    expectFinite(t, 'x');
    const o = options(opts);
    const weight = o.weight === undefined ? 1 : expectWeight(o.weight, 'weight');
    const rowWeights = o.rowWeights === undefined ? NO_WEIGHTS : expectWeights(o.rowWeights, 'rowWeights', rows);
    let weightSum = weight * rows;
    if (rowWeights.length) {
      weightSum = 0;
      for (const w of rowWeights) weightSum += weight * w;
    }
    return { data: t.data, rows, cols, rowWeights, weight, weightSum };
  }
}

/**
 * One-shot weighted X^T X of x[..., K] into a new Gram (or into `options.into`). Runs off the event
 * loop.
 *
 * @example
 * const g = await gramAccumulate(x, { rowWeights });
 * g.matrix; // Float64Array(K * K)
 */
export async function gramAccumulate(x: Tensor<'float32'>, options?: GramOptions & { into?: Gram }): Promise<Gram> {
  return target(x, options).accumulate(x, strip(options));
}

/** Synchronous gramAccumulate. */
export function gramAccumulateSync(x: Tensor<'float32'>, options?: GramOptions & { into?: Gram }): Gram {
  return target(x, options).accumulateSync(x, strip(options));
}

function target(x: unknown, opts: unknown): Gram {
  const o = options(opts);
  if (o.into !== undefined) {
    if (!(o.into instanceof Gram)) throw new TypeError(`Expected a Gram for into but received ${describe(o.into)}`);
    return o.into;
  }
  const t = expectFloatTensor(x, 'x');
  return new Gram(t.shape[t.rank - 1]);
}

function strip(opts: (GramOptions & { into?: Gram }) | undefined): GramOptions | undefined {
  if (opts === undefined) return undefined;
  const { into: _into, ...rest } = opts;
  return rest;
}
