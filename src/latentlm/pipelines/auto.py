"""Load any latentlm pipeline folder without knowing its class."""

import json
import os

from huggingface_hub import hf_hub_download


class AutoPipelineForTextGeneration:
    """`AutoPipelineForTextGeneration.from_pretrained(path)` returns the latentlm pipeline saved in `path`.

    `diffusers.DiffusionPipeline.from_pretrained` looks the pipeline class up in the diffusers namespace only, so it
    cannot load ours; this reads `model_index.json` and dispatches to the class in `latentlm.pipelines`.
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, **kwargs):
        from . import __dict__ as pipelines

        if os.path.isdir(pretrained_model_name_or_path):
            index_file = os.path.join(pretrained_model_name_or_path, "model_index.json")
            if not os.path.isfile(index_file):
                raise ValueError(
                    f"`pretrained_model_name_or_path` ({pretrained_model_name_or_path}) has no model_index.json: "
                    "it is not a saved pipeline."
                )
        else:
            hub_kwargs = {
                key: kwargs[key] for key in ("revision", "cache_dir", "token", "local_files_only") if key in kwargs
            }
            index_file = hf_hub_download(pretrained_model_name_or_path, "model_index.json", **hub_kwargs)
        with open(index_file) as f:
            class_name = json.load(f)["_class_name"]
        pipeline_class = pipelines.get(class_name)
        if pipeline_class is None:
            raise ValueError(f"`{class_name}` in {index_file} is not a latentlm pipeline.")
        return pipeline_class.from_pretrained(pretrained_model_name_or_path, **kwargs)
