import torch, time, latentlm
from latentlm import ELFPipeline
pipe = ELFPipeline.from_pretrained(latentlm.pretrained_path("elf-tiny-prose"))
m = pipe.model
print(m.dtype)
out = pipe(batch_size=64, gen_length=128, num_inference_steps=8, output_type="latent", generator=torch.Generator().manual_seed(0))
lat = out.latents
with torch.inference_mode():
    for _ in range(2):
        s=time.perf_counter(); a = m.decode_latents(lat).argmax(-1); t1=time.perf_counter()-s
        s=time.perf_counter(); b = m.decode_latents_to_ids(lat); t2=time.perf_counter()-s
    print(torch.equal(a,b), (a!=b).sum().item(), t1, t2)
