"""File formats: which one a path means, the optional pyarrow import for Parquet, and which encoding a text
file that is not UTF-8 seems to be in."""

from __future__ import annotations

import codecs
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..errors import MissingExtraError, UsageError

log = logging.getLogger(__name__)

FORMATS = ("tsv", "csv", "jsonl", "parquet")
_EXTENSIONS = {
    ".tsv": "tsv", ".txt": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
}


def format_of(path: str, explicit: str | None = None, *, output: bool = False) -> str:
    """The explicit format, else the one the extension names; stdin/stdout, streams (a FIFO, a device) and files
    without an extension are TSV, and so is an input's unknown extension; a file output's is refused
    (`-o scores.xlsx` would get TSV)."""
    if explicit is not None:
        if explicit not in FORMATS:
            raise UsageError(f"unknown format {explicit!r}; use one of {', '.join(FORMATS)}")
        return explicit
    suffix = Path(path).suffix.lower() if path != "-" else ""
    if output and suffix and suffix not in _EXTENSIONS and not _is_stream(path):
        raise UsageError(f"{path}: {suffix} names no output format ({', '.join(_EXTENSIONS)}); give "
                         "--output-format to write it anyway")
    if not output and suffix and suffix not in _EXTENSIONS:
        log.warning("%s: %s names no format this job reads (%s); read as TSV (--input-format says otherwise)", path,
                    suffix, ", ".join(_EXTENSIONS))
    return _EXTENSIONS.get(suffix, "tsv")


# The first bytes of files that are not text, whatever their name: what they are, and how to read them.
_NOT_TEXT = {
    b"\x1f\x8b": "gzip-compressed: decompress it first (zcat FILE | siamese-runtime score -)",
    b"BZh": "bzip2-compressed: decompress it first (bzcat FILE | siamese-runtime score -)",
    b"\xfd7zXZ\x00": "xz-compressed: decompress it first (xzcat FILE | siamese-runtime score -)",
    b"\x28\xb5\x2f\xfd": "zstd-compressed: decompress it first (zstdcat FILE | siamese-runtime score -)",
    b"PK\x03\x04": "a zip archive (or a spreadsheet): extract the file, or save the sheet as CSV",
    b"PAR1": "a Parquet file: name it .parquet, or give --input-format parquet",
}


TAR = "a tar archive: extract the file first (tar xf FILE)"


def not_text(sample: bytes) -> str | None:
    """What a file whose first bytes are `sample` is, and what to do, where it is no text file at all."""
    if sample[257:262] == b"ustar":  # a tar header's magic, after the member's name and modes
        return TAR
    return next((what for magic, what in _NOT_TEXT.items() if sample.startswith(magic)), None)


def _is_stream(path: str) -> bool:
    """Whether the path is something other than a regular file or nothing: a FIFO, a device, a socket."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def pyarrow_parquet() -> ModuleType:
    """pyarrow.parquet, or an error naming the extra that installs it."""
    try:
        import pyarrow.parquet
    except ImportError:
        raise MissingExtraError(
            "Parquet needs pyarrow, which is not installed: pip install 'siamese-runtime[parquet]'"
        ) from None
    return pyarrow.parquet


SAMPLE_BYTES = 1 << 16  # how much of a text file's start its encoding is judged by
LATIN_ISOLATED = 0.5  # in Latin-1 text most non-ASCII bytes stand alone; CJK encodings pair them
LEGACY_SHARE = 0.8  # of the non-ASCII characters a legacy CJK decoding must make plausible
_MARKS = {  # longest first: UTF-32's little-endian mark starts like UTF-16's
    b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16",
}
_WIDE = {"UTF-32LE": "utf-32-le", "UTF-32BE": "utf-32-be", "UTF-16LE": "utf-16-le", "UTF-16BE": "utf-16-be"}


@dataclass(frozen=True)
class Encoding:
    """An encoding other than UTF-8 that a text file seems to be in: its name, iconv's name, and why."""

    name: str
    iconv: str
    evidence: str


def foreign_encoding(sample: bytes) -> Encoding | None:
    """The encoding of a text file whose first bytes are not UTF-8; None when they are.

    UTF-16 and UTF-32 show by a byte-order mark, or by NUL bytes that decode as such text; a legacy encoding
    by at least two, and at least half, of the sample's whole lines failing as UTF-8 (one bad line in a UTF-8
    file is a bad row, not an encoding; the sample's last line, which it may cut inside a character, is not
    counted), told apart by what the bytes decode to.
    """
    return _marked(sample) or _wide(sample) or _legacy(sample)


def _marked(sample: bytes) -> Encoding | None:
    mark = next((mark for mark in _MARKS if sample.startswith(mark)), None)
    if mark is None:
        return None
    name = _MARKS[mark]
    return Encoding(name, name, f"it starts with a {name} byte-order mark")


def _wide(sample: bytes) -> Encoding | None:
    """UTF-16 or UTF-32 without a mark: most of the line-break bytes pair with NULs into line breaks."""
    breaks = sample.count(b"\n") + sample.count(b"\r")
    if b"\x00" not in sample or not breaks:
        return None
    for name, codec in _WIDE.items():
        text = _decoded(sample, codec)
        if text is not None and "\x00" not in text and 2 * (text.count("\n") + text.count("\r")) > breaks:
            return Encoding(name, name, f"its NUL bytes and line breaks pair up as {name} characters")
    return None


def _legacy(sample: bytes) -> Encoding | None:
    lines = sample.splitlines()
    if not sample.endswith((b"\n", b"\r")):
        lines = lines[:-1]
    bad = sum(_decoded(line, "utf-8") is None for line in lines)
    if bad < 2 or 2 * bad < len(lines):
        return None
    evidence = f"{bad} of its first {len(lines)} lines are not UTF-8"
    if _isolated_share(sample) >= LATIN_ISOLATED:
        return Encoding("Latin-1 or Windows-1252", "WINDOWS-1252", f"{evidence}, and their accented bytes stand alone")
    for name, codec, plausible in _CJK:
        text = _decoded(sample, codec)
        characters = [c for c in text or "" if not c.isascii()]
        if characters and sum(map(plausible, characters)) >= LEGACY_SHARE * len(characters):
            return Encoding(name, codec.upper(), f"{evidence}, and they decode as {name} text")
    return Encoding("a legacy encoding", "ENCODING", f"{evidence}, and no common encoding reads them")


def _decoded(data: bytes, codec: str) -> str | None:
    """`data` decoded, a character cut off at its end aside; None where it does not decode."""
    try:
        return codecs.getincrementaldecoder(codec)().decode(data, final=False)
    except UnicodeDecodeError:
        return None


def _isolated_share(sample: bytes) -> float:
    """The share of non-ASCII bytes between two ASCII bytes (or the sample's ends)."""
    padded = b" " + sample + b" "
    high = [i for i in range(1, len(padded) - 1) if padded[i] >= 0x80]
    alone = sum(padded[i - 1] < 0x80 and padded[i + 1] < 0x80 for i in high)
    return alone / len(high) if high else 0.0


def _in_gb2312(character: str) -> bool:
    """GB2312, the common core of GBK and GB18030: where a real GB18030 file's characters fall."""
    try:
        character.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def _in_ranges(*ranges: tuple[int, int]) -> Callable[[str], bool]:
    return lambda character: any(low <= ord(character) <= high for low, high in ranges)


_HAN, _CJK_PUNCTUATION, _FULL_WIDTH, _KANA = (0x4E00, 0x9FFF), (0x3000, 0x303F), (0xFF00, 0xFFEF), (0x3040, 0x30FF)
_CJK = (  # tried in order: GB18030 decodes nearly any bytes, so it must put them in GB2312
    ("GB18030 or GBK", "gb18030", _in_gb2312),
    ("Big5", "big5", _in_ranges(_HAN, _CJK_PUNCTUATION, _FULL_WIDTH)),
    ("Shift-JIS", "shift_jis", _in_ranges(_KANA, _HAN, _CJK_PUNCTUATION, _FULL_WIDTH)),
)
