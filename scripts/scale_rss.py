"""Peak memory of training and min-max statistics on a 100k-image prepared set.

Builds a prepared set of ``--n`` training images by repeating the prepared images of
``--source`` (each record gets its own index; 2,000 generated faces x 50 = 100,000),
then measures, in this process, the peak RSS of (1) training ``--steps`` steps (long
enough for the shuffle buffer to fill) and (2) the min-max latent statistics over all
``--n`` images, both streaming from the shards.

    python scripts/scale_rss.py --config configs/demo-paper.yaml --source data/synthetic --n 100000 --work /tmp/scale
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cartoon_vae import load_config  # noqa: E402


def repeat_prepared(small, big, n, shard_images=4096):
    """A prepared folder with ``n`` training records cycling through ``small``'s (validation kept as is)."""
    import tensorflow as tf

    from cartoon_vae.data import PREPARED

    manifest = json.loads((small / PREPARED).read_text())
    records = [r.numpy() for name in manifest["train"] for r in tf.data.TFRecordDataset(str(small / name))]
    big.mkdir(parents=True)
    shards = []
    for i in range(n):
        if i % shard_images == 0:
            if shards:
                writer.close()
            shards.append(f"train-{len(shards):05d}.tfrecord")
            writer = tf.io.TFRecordWriter(str(big / shards[-1]))
        example = tf.train.Example.FromString(records[i % len(records)])
        example.features.feature["index"].int64_list.value[:] = [i]
        writer.write(example.SerializeToString())
    writer.close()
    for name in manifest["val"]:
        shutil.copy(small / name, big / name)
    paths = manifest["paths"]
    manifest.update(train=shards, n_train=n, paths=[paths[i % len(paths)] for i in range(n + manifest["n_val"])])
    (big / PREPARED).write_text(json.dumps(manifest))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/demo-paper.yaml")
    p.add_argument("--source", default="data/synthetic")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--work", required=True, help="scratch folder (created; removed with --clean)")
    p.add_argument("--clean", action="store_true")
    args = p.parse_args()

    from cartoon_vae.bench_measure import phase
    from cartoon_vae.data import make_datasets, prepare
    from cartoon_vae.inference import encode_means
    from cartoon_vae.samplers import MinMax
    from cartoon_vae.train import train

    work = Path(args.work)
    config = load_config(args.config, [f"data.dir={args.source}"])
    small, big = work / "small", work / "big"
    if not small.exists():
        prepare(config, small, log=None)
    if not big.exists():
        repeat_prepared(small, big, args.n)
    config = config.replace(data={"dir": str(big)}, train={"epochs": 1, "steps_per_epoch": args.steps})
    record = {}
    with phase(record, "train"):
        vae = train(config, work / "run", verbose=0) if not (work / "run").exists() else None
    if vae is None:
        import keras
        vae = keras.models.load_model(work / "run" / "model.keras")
    with phase(record, "minmax_stats"):
        train_ds, _ = make_datasets(config, shuffle_train=False)
        stats = MinMax(vae.latent_dim).fit(encode_means(vae, train_ds))  # streamed: memory stays flat
    record["minmax_images"] = stats.count
    record["n_train"] = args.n
    record["shuffle_buffer"] = config.data.shuffle_buffer
    record["image_size"] = config.data.image_size
    record["bytes_on_disk"] = sum(f.stat().st_size for f in big.iterdir())
    print(json.dumps(record, indent=1))
    if args.clean:
        shutil.rmtree(work)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
