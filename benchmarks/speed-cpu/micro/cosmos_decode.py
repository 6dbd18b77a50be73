import torch, time
from latentlm.models.heads import greedy_token_ids, FactoredLMHead
from latentlm.models.cosmos_lm import CosmosLMAutoencoder
torch.manual_seed(0)
ae = CosmosLMAutoencoder.from_pretrained("runs/cosmos-codec-b16/r/N16-published+all3").eval()
lat = torch.randn(64, 16, 384)
with torch.inference_mode():
    for _ in range(2):
        s=time.perf_counter(); a = ae.decode(lat).argmax(-1); t1=time.perf_counter()-s
        s=time.perf_counter(); b = ae.decode_to_ids(lat); t2=time.perf_counter()-s
    print("equal", torch.equal(a,b), t1, t2)
    # fallback rate
    from latentlm.models import heads
    h = ae._token_head_input(ae.decompress(lat)).flatten(0,1)
    print(h.norm(dim=-1).mean(), ae.lm_head.weight.norm(dim=-1).max())
    lin = torch.nn.Linear(384, 30522); 
    x = torch.randn(4096, 384)

    approx = torch.nn.functional.linear(h.bfloat16(), ae.lm_head.weight.bfloat16()).float()
    top = approx.topk(8,-1).values
    ex = torch.nn.functional.linear(h, ae.lm_head.weight)
    best = ex.max(-1).values
    rel = 3*2**-8 + 2**-16 + 384*2**-23
    bound = rel*h.norm(dim=-1)*ae.lm_head.weight.norm(dim=-1).max()
    print("bound mean", bound.mean().item(), "gap top1-top8 mean", (top[:,0]-top[:,-1]).mean().item(), "proven frac", (best > top[:,-1]+1.01*bound).float().mean().item())
