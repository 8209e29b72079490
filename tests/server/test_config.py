"""Settings: defaults < environment (the seed's variable names) < flags."""

from __future__ import annotations

import pytest

from mef3lab.server.config import ServerConfig


def test_seed_defaults():
    c = ServerConfig.from_env({})
    assert (c.port, c.n_prefetch, c.cache_capacity_multiplier, c.n_process_workers) == (
        50051,
        3,
        3,
        2,
    )
    assert c.host == "127.0.0.1"


def test_env_then_flags():
    env = {"PORT": "6000", "N_PREFETCH": "5", "N_PROCESS_WORKERS": "0", "CACHE_MB": "64"}
    c = ServerConfig.from_args(["--port", "7000"], environ=env)
    assert (c.port, c.n_prefetch, c.n_process_workers) == (7000, 5, 0)
    assert c.cache_budget_bytes(10**9) == 64 * 2**20


def test_segment_count_sizes_the_cache_without_cache_mb():
    c = ServerConfig.from_env({"N_PREFETCH": "2", "CACHE_CAPACITY_MULTIPLIER": "4"})
    assert (
        c.cache_budget_bytes(1000) == (4 + 3) * 1000
    )  # history + (prefetch + current) of one reader
    assert c.cache_budget_bytes(1000, readers=3) == (4 + 3 * 3) * 1000
    assert c.cache_budget_bytes(2**40, readers=1000) < 2**40  # never more than a share of RAM


def test_bad_env_value_is_named():
    with pytest.raises(ValueError, match="N_PREFETCH"):
        ServerConfig.from_env({"N_PREFETCH": "lots"})


def test_list_and_switch_settings():
    env = {"ROOT": "/a:b=/c", "HUB_AUTH": "yes"}
    c = ServerConfig.from_env(env)
    assert (c.root, c.hub_auth, c.insecure_public) == (("/a", "b=/c"), True, False)
    c = ServerConfig.from_args(
        ["--root", "/x", "--root", "y=/z", "--hub-auth", "false", "--insecure-public"], env
    )
    assert (c.root, c.hub_auth, c.insecure_public) == (("/x", "y=/z"), False, True)
    assert ServerConfig.from_args(["--root="], env).root == ()  # an empty flag clears the variable


def test_serve_command_round_trips_every_setting():
    from mef3lab.server.process import serve_command

    c = ServerConfig(root=("/x", "n=/y"), hub_auth=True, tls_cert="c.pem", port=0)
    assert ServerConfig.from_args(serve_command(c)[4:], {"ROOT": "/elsewhere"}) == c
    assert (
        ServerConfig.from_args(serve_command(ServerConfig())[4:], {"ROOT": "/elsewhere"}).root == ()
    )


def test_read_timeout_and_reader_engines():
    assert ServerConfig.from_env({}).read_timeout_s == 60.0
    env = {"READ_TIMEOUT_S": "5", "READER_ENGINE": "a=pkg.mod.A:b=mod.B"}
    c = ServerConfig.from_env(env)
    assert c.read_timeout_s == 5.0 and c.reader_engines == {"a": "pkg.mod:A", "b": "mod:B"}
    c = ServerConfig.from_args(["--read-timeout-s", "0", "--reader-engine", "x=m.X"], env)
    assert c.read_timeout_s == 0.0 and c.reader_engines == {"x": "m:X"}
    for bad in ("noequals.X", "=m.X", "x=Class", "x=m."):
        with pytest.raises(ValueError, match="NAME=package.module.Class"):
            ServerConfig(reader_engine=(bad,)).reader_engines  # noqa: B018 - the property raises
