"""The command line: one parser per subcommand, and every argument typed and ranged (a wrong type,
empty, NaN, inf, negative and huge value each exit 2 with one line naming the argument)."""

import pytest

from cartoon_vae.cli import SUBCOMMANDS, build_parser

from .conftest import ROOT, exit_code, one_line_error

PAPER = str(ROOT / "configs" / "paper.yaml")





def test_every_subcommand_has_help_and_a_function(capsys):
    parser = build_parser()
    for name, _, command, help_text in SUBCOMMANDS:
        assert help_text and callable(command)
        with pytest.raises(SystemExit) as e:
            parser.parse_args([name, "--help"])
        assert e.value.code == 0 and f"usage: cartoon-vae {name}" in capsys.readouterr().out


def test_an_unknown_command_is_one_line(capsys):
    assert exit_code(["fly"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'fly'" in err


BAD_VALUES = {"count": ["x", "", "nan", "inf", "-1", "0", "1e400", "99999999999999999999"],
              "seed": ["x", "", "nan", "inf", "-1", "1e400", "99999999999999999999"],
              "index": ["x", "", "nan", "inf", "-1", "1e400", "99999999999999999999"],
              "path": [""],
              "strengths": ["x", "nan", "inf", "-inf", "1e400", "1,,x", "-1000"],
              "probability": ["x", "", "nan", "inf", "-1", "0.5", "1", "1e400"],
              "names": ["", ",", "x" * 300],
              "choice": ["x", "", "nan", "-1"],
              "port": ["x", "", "nan", "-1", "65536", "1e400"],
              "host": ["", "a b", "x" * 300],
              "samples": ["x", "", "nan", "-1", "1", "3", "9", "1e400"],  # the scores need at least 10
              "origin": ["", "evil.example", "ftp://a.example", "http://", "http://a.example/page", "http://a b"]}

ARGUMENTS = [  # (command and its other required arguments, the argument, the kind of value it takes)
    (["make-data"], "--n", "count"), (["make-data"], "--seed", "seed"), (["make-data"], "--workers", "count"),
    (["make-data"], "--out", "path"),
    (["check-data"], "--data", "path"),
    (["download-cartoonset"], "--variant", "choice"), (["download-cartoonset"], "--out", "path"),
    (["train", "--config", PAPER], "--run-dir", "path"), (["train", "--run-dir", "x"], "--config", "path"),
    (["train", "--config", PAPER], "--data", "path"),
    (["prepare", "--config", PAPER, "--out", "x"], "--shard-images", "count"),
    (["prepare", "--config", PAPER], "--out", "path"),
    (["figures"], "--run", "path"),
    (["sample", "--out", "x"], "--run", "path"), (["sample", "--run", "x", "--out", "x"], "--n", "count"),
    (["sample", "--run", "x", "--out", "x"], "--stats-images", "count"),
    (["sample", "--run", "x", "--out", "x"], "--seed", "seed"), (["sample", "--run", "x", "--out", "x"], "--mode", "choice"),
    (["sample", "--run", "x"], "--out", "path"),
    (["train-probe", "--out", "x"], "--epochs", "count"), (["train-probe"], "--out", "path"),
    (["train-probe", "--out", "x"], "--mix-run", "path"),
    (["evaluate", "--run", "x", "--probe", "x"], "--samples", "samples"),
    (["evaluate", "--run", "x", "--probe", "x"], "--fid-images", "count"),
    (["evaluate", "--run", "x", "--probe", "x"], "--bootstrap", "count"), (["evaluate", "--probe", "x"], "--run", "path"),
    (["edit", "--run", "x", "--attribute", "a", "--out", "x"], "--to", "index"),
    (["edit", "--run", "x", "--attribute", "a", "--to", "1", "--out", "x"], "--from", "index"),
    (["edit", "--run", "x", "--attribute", "a", "--to", "1", "--out", "x"], "--strengths", "strengths"),
    (["edit", "--run", "x", "--attribute", "a", "--to", "1", "--out", "x"], "--p", "probability"),
    (["edit", "--run", "x", "--attribute", "a", "--to", "1", "--out", "x"], "--hold", "names"),
    (["edit", "--run", "x", "--to", "1", "--out", "x"], "--attribute", "names"),
    (["edit", "--run", "x", "--attribute", "a", "--to", "1", "--out", "x"], "--faces", "count"),
    (["ablate"], "--config", "path"), (["benchmark"], "--out", "path"), (["benchmark"], "--data", "path"), (["benchmark"], "--only", "choice"),
    (["prepare", "--out", "x"], "--config", "path"), (["prepare", "--config", PAPER, "--out", "x"], "--data", "path"),
    (["figures", "--run", "x"], "--data", "path"), (["sample", "--run", "x", "--out", "x"], "--data", "path"),
    (["train-probe", "--out", "x"], "--config", "path"), (["train-probe", "--out", "x"], "--data", "path"),
    (["evaluate", "--run", "x"], "--probe", "path"),
    (["edit", "--attribute", "a", "--to", "1", "--out", "x"], "--run", "path"),
    (["edit", "--run", "x", "--attribute", "a", "--to", "1", "--out", "x"], "--probe", "path"),
    (["edit", "--run", "x", "--attribute", "a", "--to", "1"], "--out", "path"),
    (["edit", "--run", "x", "--attribute", "a", "--to", "1", "--out", "x"], "--data", "path"),
    (["explore"], "--run", "path"), (["explore", "--run", "x"], "--probe", "path"),
    (["explore", "--run", "x"], "--port", "port"), (["explore", "--run", "x"], "--host", "host"),
    (["explore", "--run", "x"], "--faces", "count"), (["explore", "--run", "x"], "--allow-origin", "origin"),
    (["compare-edits", "--attribute", "a", "--to", "1", "--out", "x.png"], "--runs", "path"),
    (["compare-edits", "--runs", "x", "--to", "1", "--out", "x.png"], "--attribute", "names"),
    (["compare-edits", "--runs", "x", "--attribute", "a", "--out", "x.png"], "--to", "index"),
    (["compare-edits", "--runs", "x", "--attribute", "a", "--to", "1", "--out", "x.png"], "--faces", "count"),
    (["compare-edits", "--runs", "x", "--attribute", "a", "--to", "1"], "--out", "path"),
]


@pytest.mark.parametrize("base,arg,kind", ARGUMENTS, ids=[f"{b[0]} {a}" for b, a, _ in ARGUMENTS])
def test_every_argument_refuses_bad_values_in_one_line(capsys, base, arg, kind):
    for value in BAD_VALUES[kind]:
        argv = [*base, f"{arg}={value}"]
        assert exit_code(argv) == 2, argv
        one_line_error(capsys, arg)


def test_every_argument_of_every_subcommand_is_in_the_table():
    parser = build_parser()
    covered = {(base[0], arg) for base, arg, _ in ARGUMENTS}
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        for action in p._actions:
            flag = action.option_strings[-1] if action.option_strings else None
            if flag in (None, "--help") or action.nargs == 0 or flag == "--set" or (name, flag) in UNTYPED:
                continue
            assert (name, flag) in covered, (name, flag)


UNTYPED = {("download-cartoonset", "--url")}  # any text; the download checks it (http/https only), tested there


def test_a_disk_that_fills_under_tensorflow_is_one_line_naming_the_way_out(monkeypatch, capsys, tmp_path):
    import tensorflow as tf

    import cartoon_vae.train

    def full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, f"{tmp_path}/c/train.data-00000-of-00001; No space left "
                                               "on device\n\t [[{{node CacheDatasetV2}}]]")

    monkeypatch.setattr(cartoon_vae.train, "train", full)
    assert exit_code(["train", "--config", ROOT / "configs" / "recommended.yaml", "--run-dir", tmp_path / "r"]) == 2
    one_line_error(capsys, "the disk is full", "No space left on device", "data.cache: memory")
