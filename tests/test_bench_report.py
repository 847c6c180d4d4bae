"""The benchmark's tables are rendered from its JSON: docs/performance.md's tables come from docs/benchmark.json."""

import json

from cartoon_vae.bench_report import format_table

from .conftest import ROOT


def test_the_performance_page_tables_render_from_the_committed_benchmark():
    results = json.loads((ROOT / "docs" / "benchmark.json").read_text())
    table = format_table(results)
    page = (ROOT / "docs" / "performance.md").read_text()
    first = table.splitlines()[2]  # the first training row
    assert first.startswith(f"| {results['training'][0]['image_size']} |") and first in page
    assert results["machine"]["cpu"] in table
