"""Source addresses as plain data: REVIEWBOT_WEBHOOK_ALLOWED_IPS, the allowlist's matching, and the
key each address's share of the unverified bytes is counted under."""

from __future__ import annotations

import logging
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest

from reviewbot.errors import ConfigError
from reviewbot.service.body import UnverifiedBytes
from reviewbot.service.peers import Allowlist, peer_key, proxy_hosts
from reviewbot.service.server import check_trusted_proxies
from reviewbot.settings import Settings, load_settings


def test_the_setting_reads_addresses_networks_and_github_in_any_mix() -> None:
    settings = Settings(webhook_allowed_ips=" github, 192.30.252.0/22 ,2001:db8::1,, 10.1.2.3")
    assert settings.webhook_allowed_ips == [
        "github",
        ip_network("192.30.252.0/22"),
        ip_network("2001:db8::1/128"),
        ip_network("10.1.2.3/32"),
    ]
    # Written as IPv4-mapped, an entry is the IPv4 one: peers like ::ffff:10.1.2.3 are matched as IPv4.
    assert Settings(webhook_allowed_ips="::ffff:10.1.2.0/120").webhook_allowed_ips == [ip_network("10.1.2.0/24")]
    assert Settings().webhook_allowed_ips == []
    assert Settings(webhook_allowed_ips="GitHub").webhook_allowed_ips == ["github"]


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        (
            "REVIEWBOT_WEBHOOK_ALLOWED_IPS",
            "10.0.0.300",
            "'10.0.0.300' is not an address, a network such as 192.30.252.0/22, or github",
        ),
        ("REVIEWBOT_WEBHOOK_ALLOWED_IPS", "10.0.0.1/8", "10.0.0.1/8 has host bits set"),
        ("REVIEWBOT_WEBHOOK_ALLOWED_IPS", "githubb", "'githubb' is not an address"),
        ("FORWARDED_ALLOW_IPS", "10.0.0.1/8", "10.0.0.1/8 has host bits set"),
        ("REVIEWBOT_FORWARDED_ALLOW_IPS", "github", "'github' is not an address, a network such as 10.0.0.0/8, or *"),
        ("FORWARDED_ALLOW_IPS", "/run/proxy.sock", "'/run/proxy.sock' is not an address, a network"),
    ],
)
def test_a_bad_list_of_networks_is_one_line_naming_the_variable_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, says: str
) -> None:
    for name in ("REVIEWBOT_FORWARDED_ALLOW_IPS", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert message.startswith(f"{variable}: ")
    assert says in message
    assert "\n" not in message


def test_an_empty_allowlist_lets_everyone_in() -> None:
    allowlist = Allowlist.from_settings(Settings())
    assert allowlist.open
    assert allowlist.allows("203.0.113.9")
    assert allowlist.allows(None)  # a Unix socket


def test_the_allowlist_matches_ipv4_ipv6_and_ipv4_mapped_peers() -> None:
    allowlist = Allowlist.from_settings(Settings(webhook_allowed_ips="192.30.252.0/22,2606:50c0::/32"))
    assert allowlist.allows("192.30.253.1")
    assert allowlist.allows("::ffff:192.30.253.1")  # an IPv4 client of a server on an IPv6 socket
    assert allowlist.allows("2606:50c0:8000::154")
    assert not allowlist.allows("192.30.256.1")
    assert not allowlist.allows("::ffff:10.0.0.1")
    assert not allowlist.allows("2001:db8::1")
    assert not allowlist.allows(None)
    assert not allowlist.allows("not-an-address")  # what a proxy header might carry


def test_github_allows_nothing_until_its_ranges_are_known_then_adds_them_to_the_fixed_ones() -> None:
    allowlist = Allowlist.from_settings(Settings(webhook_allowed_ips="github,10.0.0.0/8"))
    assert allowlist.wants_github
    assert not allowlist.open
    assert allowlist.allows("10.1.1.1")
    assert not allowlist.allows("192.30.252.1")
    allowlist.use_github_ranges([ip_network("192.30.252.0/22")])
    assert allowlist.allows("192.30.252.1")
    assert allowlist.allows("10.1.1.1")


def test_an_address_is_its_own_key_an_ipv4_mapped_one_its_ipv4_and_ipv6_ones_share_their_48() -> None:
    assert peer_key("203.0.113.9") == "203.0.113.9"
    assert peer_key("::ffff:203.0.113.9") == "203.0.113.9"
    # A tunnel broker hands out a /48 (65,536 /64s) for free and clouds delegate /56s (256): one
    # client's addresses are one peer, or it would have that many shares.
    assert peer_key("2001:db8:1:2::1") == peer_key("2001:db8:1:ffff:ffff::9") == "2001:db8:1::/48"
    assert peer_key("2001:db8:1::1") == peer_key("2001:db8:1:ff00::1")  # two /56s of one site
    assert peer_key("2001:db8:2::1") != peer_key("2001:db8:1::1")
    assert peer_key("fe80::1%eth0") == "fe80::/48"  # a zone is no part of the key
    assert peer_key(None) == peer_key("not-an-address")


def test_each_peer_holds_at_most_its_share_and_the_process_at_most_the_cap() -> None:
    budget = UnverifiedBytes(cap=100)
    assert budget.share == 25
    assert budget.take("a", 20)
    assert not budget.take("a", 6)  # past a's share, though the cap has room
    assert budget.take("b", 25)
    assert budget.take("c", 25)
    assert budget.take("d", 25)
    assert not budget.take("e", 6)  # the cap is full: 95 held
    assert budget.take("e", 5)
    assert (budget.held, budget.held_by("a")) == (100, 20)
    for peer, size in (("a", 20), ("b", 25), ("c", 25), ("d", 25), ("e", 5)):
        budget.give_back(peer, size)
    assert budget.held == 0
    assert budget.peers == 0  # nothing is kept for a peer that holds nothing
    budget.give_back("f", 0)  # a body refused before its first byte
    assert budget.peers == 0


# -- the proxies whose X-Forwarded-For is believed ------------------------------------------------


def test_the_trusted_proxies_are_both_loopbacks_unless_set_whatever_uvicorn_s_own_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.delenv("REVIEWBOT_FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_settings().forwarded_allow_ips == [ip_network("127.0.0.1/32"), ip_network("::1/128")]
    # uvicorn's own variable, read by reviewbot like any setting: from the environment or .env.
    (tmp_path / ".env").write_text("FORWARDED_ALLOW_IPS=10.0.0.0/8, 2001:db8::1\n")
    assert load_settings().forwarded_allow_ips == [ip_network("10.0.0.0/8"), ip_network("2001:db8::1/128")]
    monkeypatch.setenv("REVIEWBOT_FORWARDED_ALLOW_IPS", "192.0.2.7")
    assert load_settings().forwarded_allow_ips == [ip_network("192.0.2.7/32")]
    monkeypatch.setenv("REVIEWBOT_FORWARDED_ALLOW_IPS", "")
    assert load_settings().forwarded_allow_ips == []  # no proxy: every peer is its TCP address


def test_uvicorn_is_given_each_ipv4_proxy_network_also_as_a_server_on_an_ipv6_socket_sees_it() -> None:
    hosts = proxy_hosts(Settings(forwarded_allow_ips="10.0.0.0/8, ::1"))
    assert hosts == ["10.0.0.0/8", "::ffff:a00:0/104", "::1/128"]
    # uvicorn compares the peer as the socket gives it, and ::ffff:10.1.2.3 is in no IPv4 network.
    assert ip_address("::ffff:10.1.2.3") in ip_network(hosts[1])


def test_a_proxy_at_any_address_is_taken_and_warned_of_but_not_beside_an_allowlist(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A container behind a platform's router often sets FORWARDED_ALLOW_IPS=*: uvicorn then believes
    # the X-Forwarded-For of whoever connects, which is sound only where the router alone can connect.
    anywhere = Settings(forwarded_allow_ips="*")
    assert anywhere.forwarded_allow_ips == [ip_network("0.0.0.0/0"), ip_network("::/0")]
    with caplog.at_level(logging.WARNING, "reviewbot"):
        check_trusted_proxies(anywhere)
    assert any("REVIEWBOT_FORWARDED_ALLOW_IPS=* believes" in record.getMessage() for record in caplog.records)
    # An allowlist goes by that address, so any client could name one on it.
    with pytest.raises(ConfigError, match="REVIEWBOT_WEBHOOK_ALLOWED_IPS cannot hold"):
        check_trusted_proxies(Settings(forwarded_allow_ips="*", webhook_allowed_ips="192.30.252.0/22"))
