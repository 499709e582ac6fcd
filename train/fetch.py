"""`python -m train.fetch DEST`: assemble the data folder from its sources, every file checked by its sha256.

The committed manifest (train/data_manifest.json, a copy of the data folder's MANIFEST.json) defines what each
file must contain: a file is written into DEST only when its sha256 matches, atomically (a hidden partial file
renamed into place); one that differs is refused, deleted, and the command exits 1. The checksums, not the
addresses below, are the definition of the data: point `--source` at any copy (a mirror, a colleague's data
folder, an archive you were given) and what passes the check is the right data.

Sources, per file: `--source BASE` reads BASE/NAME for every NAME of the manifest (BASE an http(s):// or
file:// URL or a local folder laid out as the data folder). Without it, the defaults below are used: the one
public download known for the file, or none, in which case the command says where the data set is handed out
and exits 1 (the BQ corpus, for one, is given on application to its authors).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .data_home import COMMITTED_MANIFEST, ENV, MANIFEST_NAME, committed_manifest

CHUNK = 1 << 20
TIMEOUT_S = 60


@dataclass(frozen=True)
class Source:
    """Where one data file comes from: a URL (None where no public download is known), the file inside it when
    it is a .tar.gz archive, whether its first line is a header to drop; and, for people, the origin and terms."""

    url: str | None
    origin: str
    member: str | None = None
    drop_header: bool = False


_LCQMC_ORIGIN = ("LCQMC (Liu et al., COLING 2018), Harbin Institute of Technology (Shenzhen); research use under the "
                 "authors' terms. The default URL is Baidu's redistribution in ERNIE's task data (the address "
                 "gluonnlp's BaiduErnieLCQMC uses), not checked from here: the sha256 decides")
_BQ_ORIGIN = ("the BQ corpus (Chen et al., EMNLP 2018), Harbin Institute of Technology (Shenzhen) and WeBank, "
              "handed out on application to its authors: http://icrc.hitsz.edu.cn/Article/show/175.html")
_ATEC_ORIGIN = ("the ATEC 2018 NLP competition (Ant Financial), handed out to registered participants; 39,346 pairs, "
                "the size of its atec_nlp_sim_train.csv, kept here without that file's first column (a line number)")
_CCKS_ORIGIN = ("the CCKS 2018 WeBank question-matching task, handed out to registered participants; 16,137 pairs, "
                "which part of the task's data they are is not recorded here")
_ERNIE_TASK_DATA = "https://ernie.bj.bcebos.com/task_data.tgz"

DEFAULT_SOURCES: dict[str, Source] = {
    "atec/train.tsv": Source(None, _ATEC_ORIGIN),
    "ccks/train.tsv": Source(None, _CCKS_ORIGIN),
    "bq/dev.tsv": Source(None, _BQ_ORIGIN),
    "bq/test.tsv": Source(None, _BQ_ORIGIN),
    "lcqmc/dev.tsv": Source(_ERNIE_TASK_DATA, _LCQMC_ORIGIN, "task_data/lcqmc/dev.tsv", drop_header=True),
    "lcqmc/test.tsv": Source(_ERNIE_TASK_DATA, _LCQMC_ORIGIN, "task_data/lcqmc/test.tsv", drop_header=True),
}


class FetchError(Exception):
    """One file could not be fetched, or did not match its checksum."""


def mirror_sources(base: str, names: list[str]) -> dict[str, Source]:
    """Every file read from BASE/NAME: BASE is an http(s)://, file:// (or other urllib) URL, or a local folder."""
    if "://" not in base:
        base = Path(base).expanduser().resolve().as_uri()
    base = base.rstrip("/") + "/"
    return {name: Source(urllib.parse.urljoin(base, urllib.parse.quote(name)), f"the mirror {base}") for name in names}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def fetch(
    dest: Path, names: list[str], sources: Mapping[str, Source], manifest: Mapping[str, Mapping[str, Any]],
    log=print,
) -> dict[str, str]:
    """Fetch `names` into `dest`, each verified against `manifest`; returns {name: error} for those that failed.

    A file already in `dest` with the right checksum is kept as it is; one with another is replaced by a verified
    download, or else left as it is and reported. Downloads of one URL are shared by the files inside it. Writes
    dest/MANIFEST.json at the end: the manifest's entries for the files of `dest` whose checksum matches (if any).
    """
    dest.mkdir(parents=True, exist_ok=True)
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest) as scratch:
        downloads: dict[str, Path | FetchError] = {}
        for name in names:
            expected = manifest[name]["sha256"]
            target = dest / name
            stale = target.is_file()
            if stale and sha256_file(target) == expected:
                log(f"{name}: already there, sha256 matches")
                continue
            source = sources[name]
            try:
                if source.url is None:
                    raise FetchError(f"no public download is known; it comes from {source.origin}. Get a copy and "
                                     f"pass its folder or URL as --source")
                if source.url not in downloads:
                    try:
                        downloads[source.url] = _download(source.url, Path(scratch) / f"download-{len(downloads)}")
                    except FetchError as error:
                        downloads[source.url] = error  # tried once: the files inside fail alike
                if isinstance(downloaded := downloads[source.url], FetchError):
                    raise downloaded
                _install(downloaded, source, target, expected)
            except (FetchError, OSError, tarfile.TarError) as error:
                failed[name] = str(error) + (f"; the {target} already there differs from the manifest (left as it is, "
                                             "and out of MANIFEST.json)" if stale else "")
                log(f"{name}: not fetched: {failed[name]}")
                continue
            log(f"{name}: written, sha256 matches ({manifest[name]['pairs']:,} pairs)")
    present = {name: entry for name, entry in manifest.items()
               if (dest / name).is_file() and sha256_file(dest / name) == entry["sha256"]}
    if present:
        _write_atomically(dest / MANIFEST_NAME, (json.dumps(present, indent=2) + "\n").encode())
    else:
        (dest / MANIFEST_NAME).unlink(missing_ok=True)
    return failed


def _download(url: str, path: Path) -> Path:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, path.open("wb") as out:
            shutil.copyfileobj(response, out, CHUNK)
    except (OSError, ValueError) as error:  # URLError and HTTPError are OSErrors; ValueError: an unknown URL type
        raise FetchError(f"cannot download {url}: {error}") from None
    return path


def _install(download: Path, source: Source, target: Path, expected: str) -> None:
    """Write the file (from the archive member, less its header, as the source says) beside `target` as a hidden
    partial file, check its sha256, then rename it into place; a file that differs is deleted."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with _opened(download, source) as stream, partial.open("wb") as out:
            if source.drop_header:
                stream.readline()
            shutil.copyfileobj(stream, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        found = sha256_file(partial)
        if found != expected:
            raise FetchError(f"sha256 {found} is not the manifest's {expected}: deleted (from {source.url}"
                             f"{' member ' + source.member if source.member else ''})")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def _opened(download: Path, source: Source) -> Iterator[IO[bytes]]:
    if source.member is None:
        with download.open("rb") as stream:
            yield stream
        return
    with tarfile.open(download, "r:*") as archive:
        try:
            member = archive.extractfile(source.member)
        except KeyError:
            raise FetchError(f"{source.url} has no file {source.member}") from None
        if member is None:
            raise FetchError(f"{source.member} in {source.url} is not a regular file")
        with member:
            yield member


def _write_atomically(path: Path, content: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content)
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    manifest = committed_manifest()
    parser = argparse.ArgumentParser(prog="python -m train.fetch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", type=Path, help=f"data folder to fill; then point {ENV} at it")
    parser.add_argument("--source", metavar="BASE_URL_OR_DIR",
                        help="read every file from BASE/NAME (a mirror or another data folder) instead of the defaults")
    parser.add_argument("--only", nargs="+", choices=sorted(manifest), metavar="NAME",
                        help=f"fetch only these files (default: all of {COMMITTED_MANIFEST.name})")
    args = parser.parse_args(argv)
    names = args.only or list(manifest)
    sources = mirror_sources(args.source, names) if args.source else DEFAULT_SOURCES
    failed = fetch(args.dest, names, sources, manifest)
    if failed:
        print(f"train.fetch: {len(failed)} of {len(names)} files not fetched (above); {args.dest}/{MANIFEST_NAME} "
              "lists the verified ones", file=sys.stderr)
        return 1
    print(f"done: {len(names)} verified files in {args.dest}; point the tools at it with {ENV}={args.dest.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
