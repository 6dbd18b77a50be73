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
        from ..hub import check_local_path, reraise_naming_file
        from . import __dict__ as pipelines

        check_local_path(pretrained_model_name_or_path)
        if os.path.exists(pretrained_model_name_or_path) and not os.path.isdir(pretrained_model_name_or_path):
            raise ValueError(
                f"`pretrained_model_name_or_path` ({pretrained_model_name_or_path}) is a file; give the folder of a "
                "saved pipeline."
            )
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
            try:
                index_file = hf_hub_download(pretrained_model_name_or_path, "model_index.json", **hub_kwargs)
            except Exception as err:  # noqa: BLE001  (offline, unknown repo, malformed id: one message)
                raise OSError(
                    f"{pretrained_model_name_or_path!r} is neither a local pipeline folder nor a Hub repo that could be "
                    f"reached ({type(err).__name__})."
                ) from err
        try:
            with open(index_file, encoding="utf-8") as f:
                class_name = json.load(f)["_class_name"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{index_file} is not a valid model_index.json ({type(err).__name__}: {err}).") from err
        pipeline_class = pipelines.get(class_name) if isinstance(class_name, str) else None
        if pipeline_class is None:
            raise ValueError(f"`{class_name}` in {index_file} is not a latentlm pipeline.")
        with reraise_naming_file(pretrained_model_name_or_path):
            return pipeline_class.from_pretrained(pretrained_model_name_or_path, **kwargs)
