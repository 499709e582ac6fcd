"""`python -m train.fetch DEST`: assemble the data folder from its sources, every file checked by its sha256.

The committed manifest (train/data_manifest.json: the data folder's MANIFEST.json with each file's size) defines
what each file must contain: a file is written into DEST only when its size and sha256 match, atomically (a hidden
partial file, created exclusively and never through a link, renamed into place, as the scoring job writes); a
download stops as soon as it is larger than the file can be; one that differs is refused, deleted, and the command
exits 1. DEST is checked before anything is downloaded. The checksums, not the
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
import os
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from siamese_runtime.cli.exits import run_command
from siamese_runtime.errors import SiameseRuntimeError, UnsafeOutputError
from siamese_runtime.io import safe_output

from .data_home import COMMITTED_MANIFEST, ENV, MANIFEST_NAME, committed_manifest

CHUNK = 1 << 20
TIMEOUT_S = 60
HEADER_BYTES = 4096  # the most a dropped header line may take
ARCHIVE_BYTES = 2 << 30  # the most an archive download may take (its files are capped by their own sizes)


@dataclass(frozen=True)
class Source:
    """Where one data file comes from: a URL (None where no public download is known), the file inside it when
    it is a .tar.gz archive, whether its first line is a header to drop; and, for people, the origin and terms."""

    url: str | None
    origin: str
    member: str | None = None
    drop_header: bool = False

    def download_limit(self, entry: Mapping[str, Any]) -> int:
        """The most bytes the download of the file `entry` describes may take: its size (and a header line)."""
        if self.member is not None:
            return ARCHIVE_BYTES
        return entry["bytes"] + (HEADER_BYTES if self.drop_header else 0)


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
    """One file could not be fetched, or did not match its size and checksum."""


class DestinationError(SiameseRuntimeError):
    """DEST cannot hold the data folder; nothing was fetched."""


def mirror_sources(base: str, names: list[str]) -> dict[str, Source]:
    """Every file read from BASE/NAME: BASE is an http(s)://, file:// (or other urllib) URL, or a local folder."""
    if "://" not in base:
        base = Path(base).expanduser().resolve().as_uri()
    base = base.rstrip("/") + "/"
    return {name: Source(urllib.parse.urljoin(base, urllib.parse.quote(name)), f"the mirror {base}") for name in names}


def fetch(
    dest: Path, names: list[str], sources: Mapping[str, Source], manifest: Mapping[str, Mapping[str, Any]],
    log=print,
) -> dict[str, str]:
    """Fetch `names` into `dest`, each verified against `manifest`; returns {name: error} for those that failed.

    A file already in `dest` with the right checksum is kept as it is; one with another is replaced by a verified
    download, or else left as it is and reported. Downloads of one URL are shared by the files inside it. Writes
    dest/MANIFEST.json at the end: the manifest's entries for the files of `dest` whose checksum matches (if any).
    Raises DestinationError, before any download, when `dest` or a folder of a file in it cannot be used.
    """
    check_destination(dest, names)
    dest.mkdir(parents=True, exist_ok=True)
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest) as scratch:
        downloads: dict[str, Path | FetchError] = {}
        for name in names:
            entry = manifest[name]
            target = dest / name
            stale = target.is_file()
            if stale and _matches(target, entry):
                log(f"{name}: already there, sha256 matches")
                continue
            source = sources[name]
            try:
                if source.url is None:
                    raise FetchError(f"no public download is known; it comes from {source.origin}. Get a copy and "
                                     f"pass its folder or URL as --source")
                if source.url not in downloads:
                    try:
                        downloads[source.url] = _download(source.url, Path(scratch) / f"download-{len(downloads)}",
                                                          source.download_limit(entry))
                    except FetchError as error:
                        downloads[source.url] = error  # tried once: the files inside fail alike
                if isinstance(downloaded := downloads[source.url], FetchError):
                    raise downloaded
                _install(downloaded, source, target, entry)
            except (FetchError, OSError, UnsafeOutputError, tarfile.TarError) as error:
                failed[name] = str(error) + (f"; the {target} already there differs from the manifest (left as it is, "
                                             "and out of MANIFEST.json)" if stale else "")
                log(f"{name}: not fetched: {failed[name]}")
                continue
            log(f"{name}: written, sha256 matches ({entry['pairs']:,} pairs)")
    present = {name: dict(entry) for name, entry in manifest.items()
               if (dest / name).is_file() and _matches(dest / name, entry)}
    listing = dest / MANIFEST_NAME
    if present:
        safe_output.write_json_atomically(listing, safe_output.sidecar_path(listing, "tmp"), present)
    else:
        listing.unlink(missing_ok=True)
    return failed


def check_destination(dest: Path, names: list[str]) -> None:
    """Refuse a DEST that is not a folder (or cannot become one), or where a file's folder is not a folder."""
    for folder in [dest, *sorted({(dest / name).parent for name in names} - {dest})]:
        if folder.exists() and not folder.is_dir():
            raise DestinationError(f"{folder} is not a folder; give DEST as a folder (it is created if missing)")
    existing = next(parent for parent in [dest, *dest.parents] if parent.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DestinationError(f"{existing} is not writable; cannot create the data folder {dest} there")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _matches(path: Path, entry: Mapping[str, Any]) -> bool:
    return path.stat().st_size == entry["bytes"] and sha256_file(path) == entry["sha256"]


def _download(url: str, path: Path, limit: int) -> Path:
    """`url`'s bytes into `path` (created exclusively), stopped as soon as there are more than `limit`."""
    try:
        with (urllib.request.urlopen(url, timeout=TIMEOUT_S) as response,
              os.fdopen(safe_output.create_exclusively(path), "wb") as out):
            announced = response.headers.get("Content-Length")
            if announced is not None and announced.isdigit() and int(announced) > limit:
                raise FetchError(f"{url} is {int(announced):,} bytes, more than the {limit:,} the manifest allows")
            _copy_at_most(response, out, limit, url)
    except (OSError, ValueError) as error:  # URLError and HTTPError are OSErrors; ValueError: an unknown URL type
        raise FetchError(f"cannot download {url}: {error}") from None
    return path


def _copy_at_most(source: IO[bytes], out: IO[bytes], limit: int, origin: str) -> None:
    """Copy `source` into `out`; FetchError as soon as it has more than `limit` bytes (nothing more is read)."""
    copied = 0
    while block := source.read(min(CHUNK, limit - copied + 1)):
        copied += len(block)
        if copied > limit:
            raise FetchError(f"{origin} is larger than the {limit:,} bytes the manifest allows: stopped there")
        out.write(block)


def _install(download: Path, source: Source, target: Path, entry: Mapping[str, Any]) -> None:
    """Write the file (from the archive member, less its header, as the source says) beside `target` as a hidden
    partial file, created exclusively, check its size and sha256, then publish it; a file that differs is deleted."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = safe_output.partial_path(target)
    origin = f"{source.url}{' member ' + source.member if source.member else ''}"
    try:
        with _opened(download, source) as stream, os.fdopen(safe_output.create_exclusively(partial), "wb") as out:
            if source.drop_header:
                stream.readline(HEADER_BYTES)
            _copy_at_most(stream, out, entry["bytes"], origin)
            out.flush()
            os.fsync(out.fileno())
        size = partial.stat().st_size
        found = sha256_file(partial)
        if (size, found) != (entry["bytes"], entry["sha256"]):
            raise FetchError(f"{size:,} bytes with sha256 {found} are not the manifest's {entry['bytes']:,} bytes "
                             f"with sha256 {entry['sha256']}: deleted (from {origin})")
        safe_output.publish(partial, str(target))
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
    return run_command("train.fetch", lambda: _fetched(args.dest, names, sources, manifest), verbose=True)


def _fetched(dest: Path, names: list[str], sources: Mapping[str, Source],
             manifest: Mapping[str, Mapping[str, Any]]) -> int:
    """The command after its arguments: fetch, then say what was verified; exit 1 when a file was not."""
    failed = fetch(dest, names, sources, manifest)
    if failed:
        print(f"train.fetch: {len(failed)} of {len(names)} files not fetched (above); {dest}/{MANIFEST_NAME} "
              "lists the verified ones", file=sys.stderr)
        return 1
    print(f"done: {len(names)} verified files in {dest}; point the tools at it with {ENV}={dest.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
