"""Write a run's figures: python scripts/figures.py --run runs/NAME."""
import sys

from cartoon_vae.cli import main

sys.exit(main(["figures", *sys.argv[1:]]))
