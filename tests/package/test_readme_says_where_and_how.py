"""The README says where the real SDSS sample comes from and how a CPU-only machine installs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_README = ROOT.parent / "shared" / "data" / "sdss_sample" / "README.md"


def _readme() -> str:
    return " ".join((ROOT / "README.md").read_text().split())  # sentences may wrap


def test_the_cpu_build_of_torch_comes_before_the_dev_install():
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks[0].strip() == 'pip install -e ".[dev]"'  # the one command CI runs, unchanged
    cpu = [b.splitlines() for b in blocks if "download.pytorch.org/whl/cpu" in b]
    assert cpu, "no CPU-only install of torch"
    lines = cpu[0]
    torch_line = next(i for i, line in enumerate(lines) if "whl/cpu" in line)
    assert lines[torch_line].startswith("pip install torch torchvision --index-url ")
    assert any(line.strip() == 'pip install -e ".[dev]"' for line in lines[torch_line + 1 :])
    assert "CUDA wheels" in _readme()


def test_the_real_sample_s_origin_is_said():
    text = _readme()
    # the sample's own README names the repository its galaxies were published in
    named = ["jwuphysics/convnet-demo"]
    if SAMPLE_README.is_file():
        named = re.findall(r"repository (\S+/\S+?)[\s(]", SAMPLE_README.read_text()) or named
    for repo in named:
        assert repo in text, repo
    for fact in ("SDSS DR14", "MPA-JHU DR7", "Wu & Boada"):
        assert fact in text, fact
