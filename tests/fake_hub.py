"""A Hub without a network, for tests: uploads are captured by a substitute `HfApi`, and "published" into a temporary
Hub cache in the snapshot layout, from which `from_pretrained("user/repo")` loads with ``HF_HUB_OFFLINE=1`` through
the libraries' real resolution code."""

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import huggingface_hub
from huggingface_hub import RepoUrl, constants
from huggingface_hub.utils import filter_repo_objects


def populate_hub_cache(cache_dir: Path, repo_id: str, folder: Path, revision: str = "main") -> Path:
    """Copies ``folder`` into ``cache_dir`` as the snapshot of ``repo_id`` at ``revision``; returns the snapshot."""
    commit = hashlib.sha1(f"{repo_id}@{revision}:{sorted(p.name for p in folder.rglob('*'))}".encode()).hexdigest()
    repo_dir = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    shutil.copytree(folder, snapshot, dirs_exist_ok=True)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / revision).write_text(commit)
    return snapshot


@dataclass
class FakeHub:
    """What the substitute `HfApi` saw: one record per call, and the uploaded files of each commit."""

    root: Path
    cache_dir: Path
    calls: list = field(default_factory=list)
    uploads: list = field(default_factory=list)  # (repo_id, revision, folder with the uploaded files)

    def api_class(hub):  # noqa: N805  (the fake's methods close over the hub)
        class FakeHfApi:
            def __init__(self, token=None, **kwargs):
                self.token = token

            def create_repo(self, repo_id, **kwargs):
                hub.calls.append(("create_repo", repo_id, kwargs))
                return RepoUrl(f"https://huggingface.co/{repo_id}")

            def create_branch(self, repo_id, *, branch, **kwargs):
                hub.calls.append(("create_branch", repo_id, branch))

            def upload_folder(self, *, repo_id, folder_path, ignore_patterns=None, revision=None, **kwargs):
                hub.calls.append(("upload_folder", repo_id, {"revision": revision, **kwargs}))
                folder = Path(folder_path)
                files = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
                kept = list(filter_repo_objects(files, ignore_patterns=ignore_patterns))
                target = hub.root / f"upload-{len(hub.uploads)}"
                for name in kept:
                    (target / name).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(folder / name, target / name)
                hub.uploads.append((repo_id, revision or "main", target))
                return f"https://huggingface.co/{repo_id}/commit/{len(hub.uploads)}"

        return FakeHfApi

    def publish(self, index: int = -1) -> Path:
        """Puts an uploaded commit into the Hub cache, as a download would; returns the snapshot folder."""
        repo_id, revision, folder = self.uploads[index]
        return populate_hub_cache(self.cache_dir, repo_id, folder, revision)


def install_fake_hub(monkeypatch, tmp_path: Path) -> FakeHub:
    """Substitutes `huggingface_hub.HfApi`, lifts latentlm's offline guard for uploads, and points the Hub cache at
    a temporary folder (downloads stay offline: ``HF_HUB_OFFLINE=1`` for the loading libraries)."""
    hub = FakeHub(root=tmp_path / "fake-hub", cache_dir=tmp_path / "hub-cache")
    hub.cache_dir.mkdir(parents=True)
    monkeypatch.setattr(huggingface_hub, "HfApi", hub.api_class())
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub.cache_dir))
    return hub


def allow_uploads(monkeypatch) -> None:
    """latentlm refuses to push under HF_HUB_OFFLINE=1; the fake Hub needs no network."""
    import latentlm.hub_upload

    monkeypatch.setattr(latentlm.hub_upload, "_offline", lambda: False)
