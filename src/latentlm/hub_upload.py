"""Uploading latentlm folders and objects to the Hub with latentlm's model card (see `latentlm.hub` for the cards).

`push_to_hub` uploads a saved folder; `PushToHubMixin.push_to_hub` (on pipelines, models and autoencoders) saves the
object first. Both create the repository and upload in one commit with `huggingface_hub.HfApi`.
"""

import os
import shutil
import tempfile
from pathlib import Path

from huggingface_hub import ModelCard

from .hub import ADAPTER_FILES, CARD_NAME, card_from_folder


# What a training run's folder holds besides the export: Accelerate checkpoints (pickles, optimizer state) and
# TensorBoard logs. None of it belongs on the Hub; `push_to_hub(..., ignore_patterns=[])` uploads everything.
DEFAULT_IGNORE_PATTERNS = ("checkpoints/", "logs/", "*.pkl", "*.pt", "*.bin")


def push_to_hub(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    commit_message: str = "Upload latentlm model",
    ignore_patterns: list[str] | tuple[str, ...] | None = DEFAULT_IGNORE_PATTERNS,
    revision: str | None = None,
    create_pr: bool = False,
):
    """Uploads a saved pipeline, model or LoRA adapter folder to the Hub repository ``repo_id`` (created if
    needed), in one commit (`huggingface_hub.HfApi.create_repo` + ``upload_folder``).

    A folder without ``README.md`` first gets one (`card_from_folder`). A card written by latentlm loads the model
    from its folder name in the usage snippet; that name is replaced by ``repo_id`` (in the folder's ``README.md``
    too, so the folder and the repository match).

    Args:
        folder: the saved folder (``model_index.json`` for a pipeline, ``config.json`` for a model).
        repo_id: ``"user/name"`` (or ``"name"`` for the token's user).
        private: create the repository as private (no effect on an existing one).
        token: Hub token; None uses the stored login or ``HF_TOKEN``.
        commit_message: message of the upload commit.
        ignore_patterns: files not uploaded; the default skips a training run's checkpoints, logs and pickles.
        revision: the branch to commit to (created from the default branch if missing).
        create_pr: open a pull request with the commit instead of committing to the branch.

    Returns:
        the `huggingface_hub.CommitInfo` of the upload.

    Raises:
        huggingface_hub.errors.OfflineModeIsEnabled: when ``HF_HUB_OFFLINE`` is set, before any network call.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import OfflineModeIsEnabled

    folder = Path(folder)
    if not (any((folder / name).is_file() for name in ("model_index.json", "config.json", *ADAPTER_FILES))):
        raise ValueError(
            f"`folder` ({folder}) holds no saved pipeline (model_index.json), model (config.json) or LoRA adapter "
            f"({' / '.join(ADAPTER_FILES)})."
        )
    if _offline():
        raise OfflineModeIsEnabled(
            f"Cannot push {folder} to the Hub repository {repo_id!r}: offline mode is on (HF_HUB_OFFLINE=1). "
            "Unset HF_HUB_OFFLINE to upload; `save_model_card` writes the card locally."
        )
    _ensure_card(folder, repo_id)
    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if revision is not None and not create_pr:
        api.create_branch(repo_url.repo_id, branch=revision, exist_ok=True, repo_type="model")
    return api.upload_folder(
        repo_id=repo_url.repo_id,
        folder_path=str(folder),
        repo_type="model",
        commit_message=commit_message,
        ignore_patterns=list(ignore_patterns) if ignore_patterns else None,
        **({"revision": revision} if revision is not None else {}),
        **({"create_pr": True} if create_pr else {}),
    )


class PushToHubMixin:
    """``push_to_hub`` for latentlm pipelines, models and autoencoders: `save_pretrained` into a temporary folder,
    latentlm's card (the one of the folder the object was loaded from when it has one, else `card_from_folder`),
    then `push_to_hub` in one commit. Replaces the inherited diffusers / transformers methods, whose cards name
    their own library."""

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        private: bool = False,
        token: str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        **save_kwargs,
    ):
        """Uploads this object to ``repo_id``; returns the `huggingface_hub.CommitInfo`. ``save_kwargs`` go to
        ``save_pretrained``. Raises `OfflineModeIsEnabled` under ``HF_HUB_OFFLINE=1``, before saving anything."""
        from huggingface_hub.errors import OfflineModeIsEnabled

        if _offline():
            raise OfflineModeIsEnabled(f"Cannot push to {repo_id!r}: offline mode is on (HF_HUB_OFFLINE=1).")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / repo_id.split("/")[-1]
            self.save_pretrained(folder, **save_kwargs)
            source_card = Path(str(getattr(self, "name_or_path", "") or ""), CARD_NAME)
            if source_card.is_file() and ModelCard.load(source_card).data.library_name in ("latentlm", "transformers"):
                shutil.copyfile(source_card, folder / CARD_NAME)
            return push_to_hub(
                folder,
                repo_id,
                private=private,
                token=token,
                commit_message=commit_message or f"Upload {type(self).__name__}",
                revision=revision,
                create_pr=create_pr,
            )


def _offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub reads it (tests lift it for uploads to a substitute `HfApi` only)."""
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE


def _ensure_card(folder: Path, repo_id: str) -> None:
    """Writes a card when the folder has none, and points a latentlm card's usage snippet at ``repo_id``."""
    path = folder / CARD_NAME
    if not path.is_file():
        card_from_folder(folder, repo_id=repo_id).save(path)
        return
    card = ModelCard.load(path)
    name = getattr(card.data, "model_name", None)
    if card.data.library_name in ("latentlm", "transformers") and name and name != repo_id:
        text = path.read_text(encoding="utf-8")
        updated = text.replace(f'from_pretrained("{name}")', f'from_pretrained("{repo_id}")')
        updated = updated.replace(f'load_lora_weights("{name}"', f'load_lora_weights("{repo_id}"')
        if updated != text:
            path.write_text(updated, encoding="utf-8")
