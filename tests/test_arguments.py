"""Argument types: what each accepts and the one line it gives for what it refuses."""

import argparse
import os

import pytest

from cartoon_vae.arguments import attribute, count, integer, names, path, probability, seed, strengths


@pytest.mark.parametrize("parse,good,bad", [
    (count, {"1": 1, "1000000": 1_000_000}, ["0", "-1", "1000001", "1.5", "x", "", "nan"]),
    (seed, {"0": 0, "2147483647": 2 ** 31 - 1}, ["-1", "2147483648", "1e3"]),
    (integer(2, 4), {"2": 2, "4": 4}, ["1", "5"]),
    (probability, {"0.9": 0.9}, ["0.5", "1", "nan", "inf", "x"]),
    (strengths, {"1,2": [1.0, 2.0], "": [], "-3": [-3.0]}, ["x", "nan", "inf", "101", ",".join(["1"] * 101)]),
    (names, {"a,b": ["a", "b"], " a ": ["a"]}, ["", ",", "x" * 201]),
    (attribute, {"glasses": "glasses"}, ["a,b", ""]),
    (path, {"runs/demo": "runs/demo"}, ["", "a\0b", "x" * 4097, os.fsdecode(b"caf\xe9")]),
])
def test_types_accept_and_refuse(parse, good, bad):
    for text, value in good.items():
        assert parse(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError) as e:
            parse(text)
        assert "\n" not in str(e.value) and "must" in str(e.value)
