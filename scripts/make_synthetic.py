"""Draw Cartoon Set-format faces: python scripts/make_synthetic.py --out data/synthetic --n 2000 --seed 0."""
import sys

from cartoon_vae.cli import main

sys.exit(main(["make-data", *sys.argv[1:]]))
