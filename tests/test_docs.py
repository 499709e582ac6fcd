"""The documentation cannot rot (docs/architecture.md, Tests): README.md stays short and links every page of
docs/, every relative link and #anchor in them resolves, and every bash or python block says whether it runs.

A block's marker is the HTML comment on the last non-blank line before its opening fence:

    <!-- run -->                 run here, in a fresh folder holding a copy of examples/, and must exit 0
    <!-- run: slow -->           the same, marked slow (left out of the fast loop)
    <!-- run: ray -->            the same, marked ray and slow; skipped where the [ray] extra is not installed
    <!-- not run: REASON -->     shown only: it needs data, a GPU, a cluster, a download or minutes
    <!-- quickstart:NAME -->     README.md only: run by .ci/run, which reads these blocks from the README

bash blocks run with `bash -euo pipefail` (as .ci/run runs the quickstart), python blocks with this
interpreter; the folder of this interpreter (the dev venv's bin/, which holds `siamese-runtime` and `python`)
comes first on PATH, and PYTHONPATH points at the checkout, so the commands run the code under test.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 160
COMMAND_LANGUAGES = {"bash", "sh", "shell", "console", "python", "py", "python3"}
PYTHON_LANGUAGES = {"python", "py", "python3"}
TIMEOUT_S = {"run": 120, "slow": 300, "ray": 300}

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
MARKER = re.compile(r"^<!--\s*(?:(run)(?::\s*(slow|ray))?|(not run):\s*(\S.*?)|quickstart:(\w+))\s*-->$")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # https:, mailto:, s3:, ...


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # the opening fence's line, counted from 1
    language: str
    marker: str  # the comment before the fence, or "" where there is none
    text: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def run_kind(self) -> str | None:
        """'run', 'slow' or 'ray' for a block the test runs, else None."""
        match = MARKER.match(self.marker)
        if match is None or match.group(1) is None:
            return None
        return match.group(2) or "run"


@dataclass(frozen=True)
class Page:
    blocks: list[Block]
    prose: list[tuple[int, str]]  # (line number, text) of every line outside fenced blocks


def read_page(page: Path) -> Page:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    prose: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            prose.append((index + 1, lines[index]))
            index += 1
            continue
        fence = opening.group(1)
        end = index + 1
        while end < len(lines) and not re.match(rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}\s*$", lines[end]):
            end += 1
        before = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
        marker = before if before.startswith("<!--") else ""
        text = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(page, index + 1, opening.group(2).lower(), marker, text))
        index = end + 1
    return Page(blocks, prose)


PARSED = {page: read_page(page) for page in PAGES}
ALL_BLOCKS = [block for page in PAGES for block in PARSED[page].blocks]
COMMAND_BLOCKS = [block for block in ALL_BLOCKS if block.language in COMMAND_LANGUAGES]
RUN_BLOCKS = [block for block in COMMAND_BLOCKS if block.run_kind is not None]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (word characters, '-' and ' ' kept),
    spaces to '-'; markdown links in it keep their text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor on `page`, a repeated one numbered as GitHub does (-1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in PARSED[page].prose if page in PARSED else read_page(page).prose:
        heading = HEADING.match(line)
        if heading is None:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of every inline or reference link and image on `page`, outside code."""
    found = []
    for number, line in PARSED[page].prose:
        text = INLINE_CODE.sub("", line)
        found += [(number, match.group(1)) for match in LINK.finditer(text)]
        reference = REFERENCE.match(text)
        if reference is not None:
            found.append((number, reference.group(1)))
    return found


def broken(page: Path, target: str) -> str | None:
    """Why the relative link `target` on `page` does not resolve, or None if it does (external: None)."""
    if EXTERNAL.match(target):
        return None
    path, _, anchor = target.partition("#")
    destination = (page.parent / path).resolve() if path else page
    if not destination.exists():
        return f"{path} does not exist"
    if anchor and destination.suffix == ".md" and anchor not in anchors(destination):
        return f"no heading in {destination.relative_to(ROOT)} has the anchor #{anchor}"
    return None


def test_readme_is_short_and_links_every_docs_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; the most is {MAX_README_LINES}"
    assert DOCS, "docs/ has no pages"
    linked = {(README.parent / target.partition("#")[0]).resolve() for _, target in links(README)
              if not EXTERNAL.match(target)}
    unlinked = [page.name for page in DOCS if page.resolve() not in linked]
    assert not unlinked, f"README.md does not link {unlinked}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    problems = [f"{page.relative_to(ROOT)}:{number}: ({target}) {why}" for number, target in links(page)
                if (why := broken(page, target)) is not None]
    assert not problems, "\n".join(problems)


def test_every_command_block_says_whether_it_runs() -> None:
    problems = []
    for block in COMMAND_BLOCKS:
        match = MARKER.match(block.marker)
        if match is None:
            problems.append(f"{block.name}: a {block.language} block needs <!-- run -->, <!-- run: slow -->, "
                            f"<!-- run: ray --> or <!-- not run: REASON --> on the line before it"
                            + (f" (found {block.marker})" if block.marker else ""))
        elif match.group(5) is not None and block.page != README:
            problems.append(f"{block.name}: only README.md has quickstart blocks (.ci/run reads them there)")
    assert not problems, "\n".join(problems)
    assert RUN_BLOCKS, "no block is marked <!-- run -->"


def test_the_quickstart_blocks_are_the_ones_ci_reads() -> None:
    """.ci/run takes the fenced block after each tag line; both tags must be there, once, before a bash block."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for name in ("score", "test"):
        assert f"quickstart {name}" in ci
        tagged = [block for block in PARSED[README].blocks if block.marker == f"<!-- quickstart:{name} -->"]
        lines = README.read_text(encoding="utf-8").splitlines()
        assert lines.count(f"<!-- quickstart:{name} -->") == 1
        assert len(tagged) == 1 and tagged[0].language == "bash" and tagged[0].text.strip()
        assert lines[tagged[0].line - 2] == f"<!-- quickstart:{name} -->", "the tag must be right above the fence"


def _marks(block: Block) -> list[pytest.MarkDecorator]:
    kind = block.run_kind
    return [pytest.mark.slow] if kind == "slow" else [pytest.mark.ray, pytest.mark.slow] if kind == "ray" else []


@pytest.mark.parametrize("block", [pytest.param(block, id=block.name, marks=_marks(block)) for block in RUN_BLOCKS])
def test_marked_block_runs(block: Block, tmp_path: Path) -> None:
    if block.run_kind == "ray":
        pytest.importorskip("ray", reason="the [ray] extra is not installed")
    bin_dir = Path(sys.executable).parent  # not resolved: a venv's bin/ holds its console scripts
    if block.language not in PYTHON_LANGUAGES:
        assert shutil.which("siamese-runtime", path=str(bin_dir)), (
            f"{bin_dir} has no siamese-runtime: run the suite with the dev venv's python (pip install -e '.[test]')")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {**os.environ,
           "PATH": os.pathsep.join(filter(None, [str(bin_dir), os.environ.get("PATH")])),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if block.language in PYTHON_LANGUAGES:
        command = [sys.executable, "-c", block.text]
    else:
        command = ["bash", "-euo", "pipefail", "-c", block.text]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    timeout = TIMEOUT_S[block.run_kind or "run"]
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the block's background jobs too
        output, _ = process.communicate()
        pytest.fail(f"{block.name} ran past {timeout} s:\n{output.decode(errors='replace')[-4000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):  # anything the block left running in the background
            os.killpg(process.pid, signal.SIGKILL)
    tail = output.decode(errors="replace")[-4000:]
    assert process.returncode == 0, f"{block.name} exited {process.returncode}:\n{block.text}\n--- output ---\n{tail}"
