"""Captions of the HTML report (`snakemake --report`): every report item has a caption of its
own that renders as reStructuredText, and every figure of the DAG gets a caption that says
what it shows (none falls back to the generic text)."""

from __future__ import annotations

import re
import subprocess
from types import SimpleNamespace

import pytest
from docutils.core import publish_parts
from jinja2 import Environment

from workflow_slice import ROOT, job_env, snakemake_exe

REPORT = ROOT / "workflow" / "report"
GENERIC = "regenerated from code and the"       # the fallback sentence of figure.rst


def _render(caption: str, config: dict, **wildcards: str) -> str:
    """HTML of a caption, rendered as Snakemake does (Jinja2, then docutils; warnings fail)."""
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    snakemake = SimpleNamespace(wildcards=SimpleNamespace(**wildcards), config=config)
    text = env.from_string((REPORT / caption).read_text()).render(snakemake=snakemake)
    return publish_parts(text, writer="html",
                         settings_overrides={"halt_level": 2, "report_level": 5})["body"]


def _declared_captions() -> list[str]:
    """Caption files named by the report(...) items of the rules."""
    text = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    return re.findall(r'caption="\.\./report/([\w.-]+)"', text)


def test_every_report_item_has_its_own_caption():
    captions = _declared_captions()
    assert len(captions) == len(set(captions)) >= 7, captions
    assert all((REPORT / c).is_file() for c in captions)


@pytest.fixture(scope="module")
def smoke_figures() -> list[str]:
    result = subprocess.run([snakemake_exe(), "-n", "--forceall", "--config", "preset=smoke"],
                            cwd=ROOT, capture_output=True, text=True, env=job_env(), timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    names = re.findall(r"wildcards: figure=([a-z0-9-]+)", result.stdout)
    assert names
    return sorted(set(names))


def test_every_figure_has_a_caption_of_its_own(cfg, smoke_figures):
    config = dict(cfg, preset="smoke")
    captions = {name: _render("figure.rst", config, figure=name) for name in smoke_figures}
    for name, html in captions.items():
        assert GENERIC not in html, name
        table = name.partition("-")[2]
        if table in cfg["tables"]:                  # samples-, curves-, bars-<table>
            assert table in html and cfg["tables"][table]["title"][:20] in html, name
    assert len(set(captions.values())) == len(captions)


def test_table_and_other_captions_render(cfg):
    config = dict(cfg, preset="smoke")
    for table, spec in cfg["tables"].items():
        html = _render("table.rst", config, table=table)
        assert table in html and spec["title"].split(":")[0] in html
    for caption in _declared_captions():
        if caption not in ("table.rst", "figure.rst"):
            assert "smoke" in _render(caption, config), caption
