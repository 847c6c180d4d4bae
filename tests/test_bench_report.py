"""The benchmark's tables are rendered from its JSON: the README's performance tables come from docs/benchmark.json."""

import json

from cartoon_vae.bench_report import format_table

from .conftest import ROOT


def test_the_readme_tables_render_from_the_committed_benchmark():
    results = json.loads((ROOT / "docs" / "benchmark.json").read_text())
    table = format_table(results)
    readme = (ROOT / "README.md").read_text()
    first = table.splitlines()[2]  # the first training row
    assert first.startswith(f"| {results['training'][0]['image_size']} |") and first in readme
    assert results["machine"]["cpu"] in table
