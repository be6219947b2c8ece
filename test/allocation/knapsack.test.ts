import t from 'tap';
import { allocate, type AllocationItem } from '../../lib/index.js';

function rng(seed: number) {
  return () => (seed = (seed * 16807) % 2147483647) / 2147483647;
}

// Every combination of options: the true optimum under the budget.
function bruteForce(items: AllocationItem[], budget: number): number {
  let best = Infinity;
  const walk = (i: number, cost: number, err: number) => {
    if (cost > budget) return;
    if (i === items.length) return void (best = Math.min(best, err));
    for (const o of items[i].options) walk(i + 1, cost + o.cost, err + o.error);
  };
  walk(0, 0, 0);
  return best;
}

function randomItems(r: () => number, n: number): AllocationItem[] {
  return Array.from({ length: n }, (_, i) => {
    const size = 1 + Math.floor(r() * 20);
    // Bit-widths 2, 4, 8: cost grows with bits, error falls (not necessarily convexly).
    return { name: `layer${i}`, options: [2, 4, 8].map((bits) => ({ label: bits, cost: bits * size, error: r() * size * 2 ** -bits * 10 })) };
  });
}

t.test('the sensitive layer gets the bits (the documented example)', (t) => {
  const plan = allocate(
    [
      { name: 'a', options: [{ label: 4, cost: 50, error: 0.9 }, { label: 8, cost: 100, error: 0.1 }] },
      { name: 'b', options: [{ label: 4, cost: 50, error: 0.2 }, { label: 8, cost: 100, error: 0.15 }] },
    ],
    { budget: 150 },
  );
  t.equal(plan.choices.a.label, 8);
  t.equal(plan.choices.b.label, 4);
  t.equal(plan.totalCost, 150);
  t.ok(Math.abs(plan.totalError - 0.3) < 1e-12);
  t.end();
});

t.test('exact equals brute force; lagrangian stays within budget and near it', (t) => {
  const r = rng(7);
  for (let trial = 0; trial < 40; trial++) {
    const items = randomItems(r, 2 + Math.floor(r() * 6));
    const min = items.reduce((s, it) => s + it.options[0].cost, 0);
    const max = items.reduce((s, it) => s + it.options[2].cost, 0);
    const budget = Math.round(min + r() * (max - min));
    const optimum = bruteForce(items, budget);
    const ex = allocate(items, { budget, method: 'exact' });
    t.ok(ex.totalCost <= budget, `exact within budget (trial ${trial})`);
    t.ok(Math.abs(ex.totalError - optimum) < 1e-9, `exact is optimal (trial ${trial}): ${ex.totalError} vs ${optimum}`);
    const lg = allocate(items, { budget, method: 'lagrangian' });
    t.ok(lg.totalCost <= budget, `lagrangian within budget (trial ${trial})`);
    t.ok(lg.totalError >= optimum - 1e-9, 'lagrangian never beats the optimum');
  }
  t.end();
});

t.test('lagrangian is optimal when errors are convex in cost and the budget sits on the hull', (t) => {
  // Each item halves its error per doubling of bits: convex. Budget = all-4-bit plan.
  const items = [10, 20, 30, 40].map((size, i) => ({ name: `l${i}`, options: [2, 4, 8].map((b) => ({ label: b, cost: b * size, error: size * 4 ** -b * (i + 1) })) }));
  const budget = items.reduce((s, it) => s + it.options[1].cost, 0);
  const lg = allocate(items, { budget, method: 'lagrangian' });
  t.ok(Math.abs(lg.totalError - bruteForce(items, budget)) < 1e-12);
  t.end();
});

t.test('plans serialise to JSON and back', (t) => {
  const plan = allocate(randomItems(rng(3), 4), { budget: 200 });
  t.same(JSON.parse(JSON.stringify(plan)), plan);
  t.end();
});

t.test('bad input', (t) => {
  const items = randomItems(rng(1), 2);
  t.throws(() => allocate([], { budget: 1 }), { name: 'TypeError', message: /items/ });
  t.throws(() => allocate(items, { budget: -1 }), { name: 'RangeError', message: /budget/ });
  t.throws(() => allocate(items, { budget: 0 }), { name: 'RangeError', message: /cheapest/ });
  t.throws(() => allocate(items, { budget: NaN }), { name: 'RangeError', message: /budget/ });
  t.throws(() => allocate(items, { budget: 1000, method: 'greedy' as never }), { name: 'RangeError', message: /method/ });
  t.throws(() => allocate([items[0], items[0]], { budget: 1000 }), { name: 'RangeError', message: /twice/ });
  t.throws(() => allocate([{ name: 'x', options: [{ label: 4, cost: 1, error: NaN }] }], { budget: 10 }), { name: 'RangeError', message: /options\[0\]\.error/ });
  t.throws(() => allocate([{ name: 'x', options: [] }], { budget: 10 }), { name: 'TypeError', message: /options/ });
  t.end();
});
