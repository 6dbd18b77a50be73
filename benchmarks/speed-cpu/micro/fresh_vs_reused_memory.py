import torch, time
b = torch.randn(1364)
def t(f, n=10):
    f(); ts=[]
    for _ in range(n):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    return round(sorted(ts)[n//2]*1000,2)
out = torch.empty(8960,1364)
print("fresh expand copy", t(lambda: b.expand(8960,1364).clone()))
print("into existing", t(lambda: out.copy_(b.expand(8960,1364))))
x = torch.randn(8960,256); W = torch.randn(1364,256)
print("addmm fresh", t(lambda: torch.addmm(b, x, W.t())))
print("addmm out", t(lambda: torch.addmm(b, x, W.t(), out=out)))
print("mm fresh", t(lambda: torch.mm(x, W.t())))
