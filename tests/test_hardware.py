"""CPU flags, the precision `auto` picks, and CPU steal."""

from cartoon_vae.hardware import FLAGS, cpu_flags, resolve_precision, steal_fraction


def test_steal_fraction_reads_the_share_of_stolen_ticks():
    assert steal_fraction((1000, 10), (2000, 310)) == 0.3
    assert steal_fraction(None, (2000, 310)) is None and steal_fraction((1000, 10), (1000, 10)) is None


def test_auto_precision_follows_the_cpu_flags(monkeypatch):
    from cartoon_vae import hardware

    assert set(cpu_flags()) == set(FLAGS)
    monkeypatch.setattr(hardware, "_gpu_bf16", lambda: False)
    for flags, expected in (({"avx512_bf16": True}, "mixed_bfloat16"), ({"amx_bf16": True}, "mixed_bfloat16"),
                            ({"avx2": True, "avx512f": True}, "float32")):
        monkeypatch.setattr(hardware, "cpu_flags", lambda f=flags: {k: f.get(k, False) for k in FLAGS})
        assert resolve_precision("auto") == expected
        assert resolve_precision("float32") == "float32"
