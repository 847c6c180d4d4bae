"""Generated faces beside real Cartoon Set faces (the README's figure).

python scripts/compare_data.py --synthetic data/synthetic --real ../shared/cartoonset_real --out docs/figures/synthetic_vs_real.png
"""
import argparse

from cartoon_vae.data import list_images
from cartoon_vae.figures import compare_sets, load_faces

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--synthetic", default="data/synthetic")
p.add_argument("--real", default="tests/fixtures/cartoonset_real")
p.add_argument("--n", type=int, default=16)
p.add_argument("--out", default="docs/figures/synthetic_vs_real.png")
a = p.parse_args()
compare_sets(load_faces(list_images(a.synthetic)[: a.n]), load_faces(list_images(a.real)[: a.n]), a.out,
             ["embedded generator (cartoon-vae make-data)", "real Cartoon Set (Google, CC BY 4.0)"])
print(a.out)
