"""Packs training exports for the trip back from a device call (staged as .gpu/pack_exports.py by prepare.sh):

    python3 .gpu/pack_exports.py OUT RUN_DIR[=NAME] ...

Each run folder's export (every file but its checkpoints, train logs, ``*.out`` and lock files) has its floating-point
weights cast to fp16 in place, is archived as ``OUT/NAME.tar`` (NAME: the folder's name unless given; paths inside
start with the folder's name) and cut into 15 MB parts ``NAME.tar.00``, ``.01``, ... (the device returns files of
at most 16 MiB): ``cat NAME.tar.* | tar x`` restores it.
"""

import sys
import tarfile
from pathlib import Path

from safetensors.torch import load_file, save_file


PART_BYTES = 15_000_000


def export_files(run: Path) -> list[Path]:
    return [
        path
        for path in sorted(run.rglob("*"))
        if path.is_file()
        and "checkpoints" not in path.relative_to(run).parts
        and path.suffix not in (".jsonl", ".out", ".lock")
    ]


def pack(run: Path, name: str, out: Path) -> None:
    files = export_files(run)
    if not any(path.suffix == ".safetensors" for path in files):
        print(f"no export in {run}")
        return
    for path in files:
        if path.suffix == ".safetensors":
            weights = {k: v.half() if v.is_floating_point() else v for k, v in load_file(path).items()}
            save_file(weights, path, metadata={"format": "pt"})
    archive = out / f"{name}.tar"
    with tarfile.open(archive, "w") as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(run.parent)))
    data = archive.read_bytes()
    archive.unlink()
    for i in range(0, len(data), PART_BYTES):
        (out / f"{name}.tar.{i // PART_BYTES:02d}").write_bytes(data[i : i + PART_BYTES])
    print(f"{name}: {len(data):,} bytes from {run}")


def main(out: str, *runs: str) -> None:
    for spec in runs:
        folder, _, name = spec.partition("=")
        pack(Path(folder), name or Path(folder).name, Path(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
