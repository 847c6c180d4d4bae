"""Sample faces: python scripts/sample.py --run runs/NAME --n 10 --mode minmax --out DIR."""
import sys

from cartoon_vae.cli import main

sys.exit(main(["sample", *sys.argv[1:]]))
