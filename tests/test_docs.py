"""The documentation covers the registry and the command line (as sqlite-utils checks its docs)."""

from __future__ import annotations

import re
from pathlib import Path

from curation.cli import main
from curation.rules import REGISTRY

ROOT = Path(__file__).resolve().parent.parent


def test_every_rule_is_documented():
    text = (ROOT / "docs" / "rules.md").read_text()
    documented = set(re.findall(r"^### `([a-z0-9-]+)`", text, flags=re.M))
    assert set(REGISTRY) - documented == set(), "rules missing from docs/rules.md"
    assert documented - set(REGISTRY) == set(), "docs/rules.md documents rules that do not exist"


def test_every_command_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for name in main.commands:
        assert f"curate {name}" in readme, f"README does not document `curate {name}`"


def test_every_option_is_in_the_help():
    """Each command's --help lists each of its options (click keeps them in sync; this guards renames)."""
    from click.testing import CliRunner

    runner = CliRunner()
    for name, cmd in main.commands.items():
        out = runner.invoke(main, [name, "--help"]).output
        for param in cmd.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    assert opt in out, (name, opt)


def test_quick_start_has_exactly_two_commands():
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", quick, flags=re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_help_is_quick_to_import():
    """`curate --help` must not import the heavy libraries (measured by the benchmark, not timed here)."""
    import subprocess
    import sys

    code = ("import sys, curation.cli; heavy = [m for m in ('pandas', 'pandera', 'scipy', 'matplotlib', 'openpyxl', "
            "'numpy') if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_python_api_names_survive_submodule_imports():
    """``curation.validate`` stays the function even after every submodule has been imported."""
    import importlib

    import curation

    for mod in ("validation", "run", "reconcile", "handoff", "analyses", "report", "template", "cli"):
        importlib.import_module(f"curation.{mod}")
    result = curation.validate(ROOT / "extraction_forms" / "example_reviewer_a.xlsx")
    assert list(result.findings.columns)[:6] == ["file", "sheet", "row", "column", "cell", "field"]
    assert len(result.clean) == result.summary.by_sheet["outcomes"]["passed"]
    assert set(curation.pandera_schemas(curation.load_schema())) == {"studies", "outcomes", "adverse_events"}
