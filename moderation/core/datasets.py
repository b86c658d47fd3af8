"""Download the two public corpora from their publisher (UCI) and verify every file's SHA-256.

`fetch(dest)` leaves `dest/youtube-spam-collection/` and `dest/sms-spam-collection/` laid out as
`corpora.load_folder` expects. Each archive is downloaded to a temporary file, only the expected members
are read from it (by base name, so no path inside the zip decides where we write), each is checked against
the SHA-256 recorded below before it is moved into place, and a corpus whose files already verify is not
downloaded again. Any failure raises `DatasetFetchError` with one line saying what went wrong.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from moderation.errors import DatasetFetchError

# Neither archive is larger than 1 MB; the caps keep a hostile or broken mirror from filling the disk.
MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
MAX_MEMBER_BYTES = 20 * 1024 * 1024
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Dataset:
    """A public corpus: the folder it lives in, the archive's URL and each file's expected SHA-256."""

    name: str
    url: str
    files: Mapping[str, str]


# The hashes were computed (sha256sum) from the unmodified files in ../shared/datasets/.
YOUTUBE = Dataset(
    name="youtube-spam-collection",
    url="https://archive.ics.uci.edu/static/public/380/youtube+spam+collection.zip",
    files={
        "Youtube01-Psy.csv": "19797e6c77690e3c8809cfd2853ae7341390636367ba66cf5d4f4083f0b88535",
        "Youtube02-KatyPerry.csv": "902c614f8ef24f987d6f614d7e6111aa5160b89a0646b68e007bd6044a3d123b",
        "Youtube03-LMFAO.csv": "702ef589860a1831956f527760a3d9737ef8a07ab36c7de35b92b8898b8c3928",
        "Youtube04-Eminem.csv": "92f54eb6b22fdf3b7ae85e1f500e5aa7442edd025e504b988a97078756187e76",
        "Youtube05-Shakira.csv": "1d8ab47b71e8037c51183b2fc62f0591a48a4b54f3a4f5d9d3043113b274e98e",
    },
)
SMS = Dataset(
    name="sms-spam-collection",
    url="https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip",
    files={
        "SMSSpamCollection": "7d039a24a6083ed9ef0f806ebad56bbb976e3aeb8de05669173bfdc4996c239d",
        "readme": "656da9ff765ddeb69841ef429e3ad65f2207a9f410892a6f04f06542426fb75c",
    },
)
DATASETS: tuple[Dataset, ...] = (YOUTUBE, SMS)


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _already_verified(folder: Path, dataset: Dataset) -> bool:
    return all(
        (folder / name).is_file() and sha256_file(folder / name) == digest for name, digest in dataset.files.items()
    )


def _download(url: str, target: Path, timeout: float) -> None:
    """Stream `url` into `target`, or raise DatasetFetchError("cannot download URL: reason")."""
    import httpx

    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as response:
            if response.status_code != 200:
                raise DatasetFetchError(f"cannot download {url}: HTTP {response.status_code}")
            size = 0
            with target.open("wb") as handle:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise DatasetFetchError(f"cannot download {url}: larger than {MAX_DOWNLOAD_BYTES} bytes")
                    handle.write(chunk)
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise DatasetFetchError(f"cannot download {url}: {reason}") from exc


def _extract_verified(archive: Path, dataset: Dataset, staging: Path) -> None:
    """Copy each expected member (matched by base name) into `staging` and check its SHA-256."""
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = {
                PurePosixPath(info.filename).name: info
                for info in bundle.infolist()
                if not info.is_dir() and not info.filename.startswith("__MACOSX/")
            }
            for name, expected in dataset.files.items():
                info = members.get(name)
                if info is None:
                    raise DatasetFetchError(f"{dataset.url}: archive has no file named {name}")
                if info.file_size > MAX_MEMBER_BYTES:
                    raise DatasetFetchError(f"{dataset.url}: {name} is {info.file_size} bytes, more than expected")
                data = bundle.read(info)
                found = hashlib.sha256(data).hexdigest()
                if found != expected:
                    raise DatasetFetchError(
                        f"{dataset.url}: {name} failed verification: expected SHA-256 {expected}, found {found}"
                    )
                (staging / name).write_bytes(data)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise DatasetFetchError(f"{dataset.url}: expected a zip archive, found something else ({exc})") from exc


def fetch(
    dest: Path,
    *,
    datasets: Sequence[Dataset] = DATASETS,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Path]:
    """Download, verify and lay out each dataset under `dest`; return the paths of the verified files.

    Files are moved into `dest/<dataset.name>/` only once every file of that dataset verified. Raises
    DatasetFetchError on network failure, a non-200 answer, a bad archive or a hash mismatch.
    """
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetFetchError(f"cannot create {dest}: {exc.strerror or exc}") from exc
    written: list[Path] = []
    for dataset in datasets:
        folder = dest / dataset.name
        if not _already_verified(folder, dataset):
            with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as scratch:
                archive = Path(scratch) / "archive.zip"
                staging = Path(scratch) / "files"
                staging.mkdir()
                _download(dataset.url, archive, timeout)
                _extract_verified(archive, dataset, staging)
                folder.mkdir(exist_ok=True)
                for name in dataset.files:
                    os.replace(staging / name, folder / name)
        written += [folder / name for name in dataset.files]
    return written
