"""Carry onnxruntime-gpu to a GPU machine reachable only through small transfers: its wheel unpacked, the CUDA
kernels of other GPU generations zeroed, packed as tar.xz and cut into parts of at most a given size.

onnxruntime-gpu's wheel is about 255 MB; most of it is one library's `.nv_fatbin` section, a cubin per kernel for
each GPU generation it supports (sm_75 ... sm_120). The CUDA driver loads only the cubin built for the device's
generation, so the others' bytes can be zeroed in place (headers kept: every offset and size stays) and then cost
nothing compressed: for sm_90 (H100, H200) the whole package packs to about 67 MiB. On the GPU machine:

    cat onnxruntime-gpu.tar.xz.part* | xz -d | tar -x -C SITE      # then PYTHONPATH=SITE

(benchmarks/cuda_check.sh does that, and checks SHA256SUMS first).

    python -m benchmarks.gpu_wheel_parts WHEEL OUT --keep-sm 90 --part-mib 32 35
"""

from __future__ import annotations

import argparse
import hashlib
import io
import lzma
import struct
import tarfile
import zipfile
from pathlib import Path

FATBIN_MAGIC = 0xBA55ED50
FATBIN_HEADER = struct.Struct("<IHHQ")  # magic, version, header size, size of the entries after the header
ENTRY_HEADER = struct.Struct("<HHIQ")  # kind, version, header size, padded payload size
ENTRY_SM_OFFSET = 28  # uint32: the GPU generation (75, 80, ..., 90, 120) within an entry header


def elf_section(image: bytes | bytearray, wanted: str) -> tuple[int, int] | None:
    """(file offset, size) of a 64-bit little-endian ELF file's section named `wanted`, or None."""
    if image[:4] != b"\x7fELF" or image[4] != 2:
        return None
    table, = struct.unpack_from("<Q", image, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", image, 0x3A)

    def header(index: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", image, table + index * entry_size)
        return name, offset, size

    _, names_offset, _ = header(names_index)
    for index in range(count):
        name, offset, size = header(index)
        end = image.index(b"\0", names_offset + name)
        if image[names_offset + name:end].decode() == wanted:
            return offset, size
    return None


def zero_other_generations(image: bytearray, keep: set[int]) -> dict[int, int]:
    """Zero, in place, the payload of every `.nv_fatbin` entry whose GPU generation is not in `keep`;
    the bytes kept per generation (0 for those zeroed)."""
    section = elf_section(image, ".nv_fatbin")
    kept: dict[int, int] = {}
    if section is None:
        return kept
    position, end = section[0], section[0] + section[1]
    while position + FATBIN_HEADER.size <= end:
        magic, _version, header_size, entries_size = FATBIN_HEADER.unpack_from(image, position)
        if magic != FATBIN_MAGIC:  # alignment padding between fat binaries
            position += 8
            continue
        entry, last = position + header_size, position + header_size + entries_size
        while entry < last:
            _kind, _version, entry_header, payload = ENTRY_HEADER.unpack_from(image, entry)
            generation, = struct.unpack_from("<I", image, entry + ENTRY_SM_OFFSET)
            start = entry + entry_header
            if generation in keep:
                kept[generation] = kept.get(generation, 0) + payload
            else:
                image[start:start + payload] = bytes(payload)
                kept.setdefault(generation, 0)
            entry = start + payload
        position = last
    return kept


def packed_wheel(wheel: Path, keep: set[int]) -> bytes:
    """The wheel's files as tar.xz, with other generations' CUDA kernels zeroed in every shared library."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(wheel) as archive, tarfile.open(fileobj=buffer, mode="w") as tar:
        for info in archive.infolist():
            if info.is_dir():
                continue
            data = bytearray(archive.read(info))
            if ".so" in info.filename:
                kept = zero_other_generations(data, keep)
                if kept:
                    kept_text = ", ".join(f"sm_{g} {n / 2**20:.0f} MiB" for g, n in kept.items() if n)
                    zeroed_text = ", ".join(f"sm_{g}" for g, n in sorted(kept.items()) if not n)
                    print(f"{info.filename}: kept {kept_text}; zeroed {zeroed_text}")
            member = tarfile.TarInfo(info.filename)
            member.size, member.mode = len(data), 0o755 if ".so" in info.filename else 0o644
            tar.addfile(member, io.BytesIO(bytes(data)))
    return lzma.compress(buffer.getvalue(), preset=6)


def write_parts(packed: bytes, out: Path, part_mib: list[float], name: str) -> list[Path]:
    """`packed` cut into parts of the given sizes (the last size repeats), with a SHA256SUMS file."""
    out.mkdir(parents=True, exist_ok=True)
    parts, start, index = [], 0, 0
    while start < len(packed):
        size = int(part_mib[min(index, len(part_mib) - 1)] * 2**20)
        path = out / f"{name}.part{index}"
        path.write_bytes(packed[start:start + size])
        parts.append(path)
        start, index = start + size, index + 1
    sums = [f"{hashlib.sha256(packed).hexdigest()}  {name}"]
    sums += [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in parts]
    (out / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="utf-8")
    return parts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, help="an onnxruntime-gpu wheel")
    parser.add_argument("out", type=Path, help="folder for the parts and SHA256SUMS")
    parser.add_argument("--keep-sm", type=int, nargs="+", default=[90], help="GPU generations kept (default: 90)")
    parser.add_argument("--part-mib", type=float, nargs="+", default=[32.0], help="part sizes (the last repeats)")
    args = parser.parse_args(argv)
    packed = packed_wheel(args.wheel, set(args.keep_sm))
    parts = write_parts(packed, args.out, args.part_mib, "onnxruntime-gpu.tar.xz")
    print(f"{len(packed) / 2**20:.1f} MiB packed in {len(parts)} parts: "
          + ", ".join(f"{p.name} {p.stat().st_size / 2**20:.1f} MiB" for p in parts))


if __name__ == "__main__":
    main()
