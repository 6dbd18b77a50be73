"""Writing a 48 MB result into fresh memory vs into a reused tensor (median of 10 runs, ms; see README.md)."""

import time

import torch


def median_ms(fn, repeats=10):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(sorted(times)[repeats // 2] * 1000, 2)


bias = torch.randn(1364)
out = torch.empty(8960, 1364)
x, weight = torch.randn(8960, 256), torch.randn(1364, 256)
print("fresh expand copy", median_ms(lambda: bias.expand(8960, 1364).clone()))
print("into existing", median_ms(lambda: out.copy_(bias.expand(8960, 1364))))
print("addmm fresh", median_ms(lambda: torch.addmm(bias, x, weight.t())))
print("addmm out", median_ms(lambda: torch.addmm(bias, x, weight.t(), out=out)))
print("mm fresh", median_ms(lambda: torch.mm(x, weight.t())))
