#!/usr/bin/env python3
"""PyTorch on the same GPU at the DiT shapes, for bench-gpu/gemm.mjs to compare against (it runs this
script itself and prints the ratios; run it alone for PyTorch's numbers only).

bf16: torch.nn.functional.linear(x, w) with x [M, K] and w [N, K] in bfloat16 (cuBLAS; bf16 in and
out, no conversions timed). int8: torch._int_mm(xq, wq.t()) with int8 operands and int32 output (no
quantization or epilogue timed: a lower bound for any W8A8 layer built on it). Timed with CUDA
events over --reps back-to-back calls after a warm-up.

Usage: python3 bench-gpu/gemm.py [--reps 50] [--json]
"""
import argparse
import json
import sys

SHAPES = [(m, k, n) for m in (768, 4680) for (k, n) in ((1536, 1536), (1536, 8960), (8960, 1536))]


def time_ms(torch, fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(3):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            fn()
        stop.record()
        stop.synchronize()
        best = min(best, start.elapsed_time(stop) / reps)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = p.parse_args()
    try:
        import torch
    except ImportError as e:
        print(json.dumps({"error": f"no torch: {e}"}) if args.json else f"no torch: {e}")
        return 0
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device for torch"}) if args.json else "no CUDA device for torch")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False
    g = torch.Generator(device="cuda").manual_seed(0)
    rows = []
    for m, k, n in SHAPES:
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16, generator=g)
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16, generator=g)
        bf16 = time_ms(torch, lambda: torch.nn.functional.linear(x, w), args.reps)
        xq = torch.randint(-128, 128, (m, k), device="cuda", dtype=torch.int8, generator=g)
        wq = torch.randint(-128, 128, (n, k), device="cuda", dtype=torch.int8, generator=g)
        try:
            int_mm = time_ms(torch, lambda: torch._int_mm(xq, wq.t()), args.reps)
        except RuntimeError as e:  # shapes or builds without the int8 path
            int_mm = None
            print(f"torch._int_mm failed at {m}x{k}x{n}: {e}", file=sys.stderr)
        rows.append({"m": m, "k": k, "n": n, "bf16_ms": bf16, "int_mm_ms": int_mm})
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": torch.cuda.get_device_name(0), "rows": rows}
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"torch {info['torch']} (CUDA {info['cuda']}) on {info['device']}")
    print("| M | K | N | bf16 linear ms | TFLOPS | _int_mm ms | TOPS |\n| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ops = 2 * r["m"] * r["k"] * r["n"]
        im = r["int_mm_ms"]
        print(f"| {r['m']} | {r['k']} | {r['n']} | {r['bf16_ms']:.4f} | {ops / r['bf16_ms'] / 1e9:.0f} | "
              + (f"{im:.4f} | {ops / im / 1e9:.0f} |" if im else "- | - |"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
