"""benchmarks/gpu_wheel_parts.py on a small ELF file built here: the cubins of other GPU generations are zeroed
in place, the device's own and every header are kept, and the parts join back to the packed bytes."""

from __future__ import annotations

import struct
from pathlib import Path

from benchmarks.gpu_wheel_parts import (
    ENTRY_HEADER,
    ENTRY_SM_OFFSET,
    FATBIN_HEADER,
    FATBIN_MAGIC,
    elf_section,
    write_parts,
    zero_other_generations,
)

ENTRY_HEADER_SIZE = 64


def fatbin(payloads: dict[int, bytes]) -> bytes:
    """One fat binary holding an ELF entry per GPU generation."""
    entries = b""
    for generation, payload in payloads.items():
        header = bytearray(ENTRY_HEADER_SIZE)
        ENTRY_HEADER.pack_into(header, 0, 2, 0x101, ENTRY_HEADER_SIZE, len(payload))
        struct.pack_into("<I", header, ENTRY_SM_OFFSET, generation)
        entries += bytes(header) + payload
    return FATBIN_HEADER.pack(FATBIN_MAGIC, 1, FATBIN_HEADER.size, len(entries)) + entries


def elf_with(sections: dict[str, bytes]) -> bytearray:
    """A 64-bit little-endian ELF image with these sections (and the names table) and nothing else."""
    names = b"\0" + b"".join(name.encode() + b"\0" for name in [*sections, ".shstrtab"])
    body, offsets = bytearray(64), {}
    for name, data in [*sections.items(), (".shstrtab", names)]:
        offsets[name] = (len(body), len(data))
        body += data
    table = len(body)
    headers = [bytes(64)]  # section 0 is empty
    for name, (offset, size) in offsets.items():
        headers.append(struct.pack("<IIQQQQIIQQ", names.index(name.encode() + b"\0"), 1, 0, 0, offset, size,
                                   0, 0, 1, 0))
    body += b"".join(headers)
    body[:4], body[4] = b"\x7fELF", 2
    struct.pack_into("<Q", body, 0x28, table)
    struct.pack_into("<HHH", body, 0x3A, 64, len(headers), len(headers) - 1)
    return body


def test_other_generations_are_zeroed_and_the_kept_one_and_all_headers_stay() -> None:
    kept, other = b"\x90" * 40, b"\x80" * 24
    image = elf_with({".text": b"code", ".nv_fatbin": fatbin({80: other, 90: kept})})
    before = bytes(image)
    assert zero_other_generations(image, {90}) == {80: 0, 90: len(kept)}
    start, size = elf_section(image, ".nv_fatbin") or (0, 0)
    section = bytes(image[start:start + size])
    assert kept in section and other not in section and bytes(len(other)) in section
    assert len(image) == len(before) and section.count(b"\x80") == 0
    changed = [i for i, (a, b) in enumerate(zip(before, image)) if a != b]
    other_payload = before.index(other)
    assert changed == list(range(other_payload, other_payload + len(other)))


def test_a_library_without_cuda_kernels_is_left_alone() -> None:
    image = elf_with({".text": b"code"})
    assert zero_other_generations(image, {90}) == {} and elf_section(image, ".nv_fatbin") is None
    assert zero_other_generations(bytearray(b"not an elf"), {90}) == {}


def test_parts_join_back_to_the_packed_bytes(tmp_path: Path) -> None:
    packed = bytes(range(256)) * 50
    parts = write_parts(packed, tmp_path, [0.004, 0.005], "pack")
    assert b"".join(part.read_bytes() for part in parts) == packed
    assert [part.stat().st_size for part in parts[:2]] == [int(0.004 * 2**20), int(0.005 * 2**20)]
    sums = (tmp_path / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    assert len(sums) == len(parts) + 1 and sums[0].endswith("  pack")
