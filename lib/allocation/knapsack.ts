// Bit allocation as a multiple-choice knapsack: every item (a layer's weights, a chunk's
// activations, ...) picks exactly one option (a bit-width) with a cost (bytes, or bits x elements)
// and an error (the measured, sensitivity-weighted error of that choice); the plan minimises the
// total error with the total cost within a budget.
import { describe, expectFiniteNumber, expectObject, expectOneOf } from '../util/validate.js';

export interface AllocationOption {
  /** What the option stands for, e.g. { bits: 4 }; carried into the plan unchanged. */
  label: string | number;
  /** Cost of choosing it (for example bytes of weights). Non-negative. */
  cost: number;
  /** Error of choosing it (for example chunk-weighted output MSE). Non-negative. */
  error: number;
}

export interface AllocationItem {
  /** Unique name, e.g. 'blocks.3.ffn.0'. */
  name: string;
  options: AllocationOption[];
}

export interface AllocationPlan {
  /** The chosen option per item name. */
  choices: Record<string, { label: string | number; index: number; cost: number; error: number }>;
  totalCost: number;
  totalError: number;
  budget: number;
  method: 'exact' | 'lagrangian';
}

export interface AllocateOptions {
  /** Largest allowed total cost. */
  budget: number;
  /**
   * 'exact': dynamic programming over the cost axis rounded to `resolution` (exact when all costs
   * are multiples of it). 'lagrangian': minimises error + lambda * cost per item, bisecting lambda,
   * then spends what is left greedily; fast for any size, optimal on the convex hull of each item.
   * Default 'exact' when the table is small enough, else 'lagrangian'.
   */
  method?: 'exact' | 'lagrangian';
  /** Cost unit of the exact method (default: the gcd of all integer costs, or budget / 4096). */
  resolution?: number;
}

/**
 * Chooses one option per item to minimise the total error with total cost <= budget.
 *
 * @example
 * const plan = allocate([
 *   { name: 'blocks.0.ffn.0', options: [{ label: 4, cost: 50, error: 0.9 }, { label: 8, cost: 100, error: 0.1 }] },
 *   { name: 'blocks.1.ffn.0', options: [{ label: 4, cost: 50, error: 0.2 }, { label: 8, cost: 100, error: 0.15 }] },
 * ], { budget: 150 });
 * plan.choices['blocks.0.ffn.0'].label; // 8: the sensitive layer gets the bits
 */
export function allocate(items: AllocationItem[], options: AllocateOptions): AllocationPlan {
  checkItems(items);
  expectObject(options, 'options');
  const budget = expectFiniteNumber(options.budget, 'options.budget', { min: 0 });
  const minCost = items.reduce((s, it) => s + Math.min(...it.options.map((o) => o.cost)), 0);
  if (minCost > budget) {
    throw new RangeError(`options.budget ${budget} is below the cheapest possible plan (${minCost})`);
  }
  const method = options.method === undefined ? undefined : expectOneOf(options.method, 'options.method', ['exact', 'lagrangian'] as const);
  const resolution = options.resolution === undefined ? defaultResolution(items, budget) : expectFiniteNumber(options.resolution, 'options.resolution', { positive: true });
  const cells = Math.floor(budget / resolution) + 1;
  const chosenMethod = method ?? (cells * items.length <= 5e7 ? 'exact' : 'lagrangian');
  const picks = chosenMethod === 'exact' ? exact(items, budget, resolution) : lagrangian(items, budget);
  return planOf(items, picks, budget, chosenMethod);
}

function checkItems(items: AllocationItem[]): void {
  if (!Array.isArray(items) || items.length === 0) throw new TypeError(`Expected a non-empty array for items but received ${describe(items)}`);
  const names = new Set<string>();
  items.forEach((it, i) => {
    if (typeof it?.name !== 'string' || it.name === '') throw new TypeError(`Expected a name for items[${i}] but received ${describe(it?.name)}`);
    if (names.has(it.name)) throw new RangeError(`items[${i}].name '${it.name}' is used twice`);
    names.add(it.name);
    if (!Array.isArray(it.options) || it.options.length === 0) throw new TypeError(`Expected a non-empty options array for items[${i}] (${it.name})`);
    it.options.forEach((o, j) => {
      expectFiniteNumber(o?.cost, `items[${i}].options[${j}].cost`, { min: 0 });
      expectFiniteNumber(o?.error, `items[${i}].options[${j}].error`, { min: 0 });
    });
  });
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function defaultResolution(items: AllocationItem[], budget: number): number {
  const costs = items.flatMap((it) => it.options.map((o) => o.cost));
  if (costs.every((c) => Number.isSafeInteger(c))) {
    const g = costs.reduce((a, c) => gcd(a, c), 0);
    if (g > 0) return Math.max(g, budget / 1e6);
  }
  return budget > 0 ? budget / 4096 : 1;
}

/** DP over item x budget cells (costs rounded UP to the resolution, so the plan never exceeds the budget). */
function exact(items: AllocationItem[], budget: number, resolution: number): number[] {
  const cells = Math.floor(budget / resolution + 1e-9) + 1;
  let best = new Float64Array(cells).fill(Infinity);
  best[0] = 0;
  const choice: Int32Array[] = [];
  for (const it of items) {
    const next = new Float64Array(cells).fill(Infinity);
    const pick = new Int32Array(cells).fill(-1);
    const units = it.options.map((o) => Math.ceil(o.cost / resolution - 1e-9));
    for (let c = 0; c < cells; c++) {
      if (best[c] === Infinity) continue;
      it.options.forEach((o, j) => {
        const to = c + units[j];
        if (to < cells && best[c] + o.error < next[to]) {
          next[to] = best[c] + o.error;
          pick[to] = j;
        }
      });
    }
    choice.push(pick);
    best = next;
  }
  let cell = 0;
  for (let c = 1; c < cells; c++) if (best[c] < best[cell]) cell = c;
  if (best[cell] === Infinity) throw new RangeError(`options.budget ${budget} is too small at resolution ${resolution}; pass a finer options.resolution`);
  const picks = new Array<number>(items.length);
  for (let i = items.length - 1; i >= 0; i--) {
    const j = choice[i][cell];
    picks[i] = j;
    cell -= Math.ceil(items[i].options[j].cost / resolution - 1e-9);
  }
  return picks;
}

/** Per-item minimisation of error + lambda * cost with lambda bisected to fit the budget, then a greedy top-up. */
function lagrangian(items: AllocationItem[], budget: number): number[] {
  const solve = (lambda: number) =>
    items.map((it) => {
      let bestJ = 0;
      it.options.forEach((o, j) => {
        const v = o.error + lambda * o.cost, b = it.options[bestJ];
        const vb = b.error + lambda * b.cost;
        if (v < vb || (v === vb && o.cost < b.cost)) bestJ = j;
      });
      return bestJ;
    });
  const costOf = (p: number[]) => p.reduce((s, j, i) => s + items[i].options[j].cost, 0);
  let lo = 0, hi = 1;
  while (costOf(solve(hi)) > budget && hi < 1e30) hi *= 2;
  let picks = solve(hi);
  if (costOf(solve(0)) <= budget) picks = solve(0);
  else {
    for (let k = 0; k < 100; k++) {
      const mid = (lo + hi) / 2;
      const p = solve(mid);
      if (costOf(p) <= budget) {
        hi = mid;
        picks = p;
      } else lo = mid;
    }
  }
  // Spend what is left: repeatedly take the upgrade with the best error saved per extra cost.
  let spent = costOf(picks);
  for (;;) {
    let bestGain = 0, bi = -1, bj = -1;
    items.forEach((it, i) => {
      const cur = it.options[picks[i]];
      it.options.forEach((o, j) => {
        const extra = o.cost - cur.cost, saved = cur.error - o.error;
        if (saved <= 0 || spent + extra > budget) return;
        const gain = extra <= 0 ? Infinity : saved / extra;
        if (gain > bestGain) [bestGain, bi, bj] = [gain, i, j];
      });
    });
    if (bi < 0) break;
    spent += items[bi].options[bj].cost - items[bi].options[picks[bi]].cost;
    picks[bi] = bj;
  }
  return picks;
}

function planOf(items: AllocationItem[], picks: number[], budget: number, method: 'exact' | 'lagrangian'): AllocationPlan {
  const choices: AllocationPlan['choices'] = {};
  let totalCost = 0, totalError = 0;
  items.forEach((it, i) => {
    const o = it.options[picks[i]];
    choices[it.name] = { label: o.label, index: picks[i], cost: o.cost, error: o.error };
    totalCost += o.cost;
    totalError += o.error;
  });
  return { choices, totalCost, totalError, budget, method };
}
