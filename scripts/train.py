"""Train a config: python scripts/train.py --config configs/recommended.yaml [--run-dir runs/NAME] [--resume]."""
import sys

from cartoon_vae.cli import main

sys.exit(main(["train", *sys.argv[1:]]))
