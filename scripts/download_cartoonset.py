"""Download Cartoon Set: python scripts/download_cartoonset.py --variant 10k --out data/."""
import sys

from cartoon_vae.cli import main

sys.exit(main(["download-cartoonset", *sys.argv[1:]]))
