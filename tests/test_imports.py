"""No import circle: every module of the package imports alone, each in a fresh interpreter."""

import subprocess
import sys

from .conftest import ROOT

MODULES = sorted(p.stem for p in (ROOT / "cartoon_vae").glob("*.py") if p.stem != "__init__")


def test_every_module_imports_alone_in_a_fresh_interpreter():
    procs = {m: subprocess.Popen([sys.executable, "-c", f"import cartoon_vae.{m}"], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for m in MODULES}
    failed = {}
    for m, p in procs.items():
        _, err = p.communicate(timeout=600)
        if p.returncode:
            failed[m] = err.strip().splitlines()[-1:]
    assert len(MODULES) > 30 and not failed, failed
