"""Rate-limit buckets: one per client (an IPv6 /64 is one client) and one per token,
however the Authorization header is spelled."""

from __future__ import annotations

from cleancenter.center import Center
from cleancenter.portal.ratelimit import client_key
from tests.portal.test_auth import make_client, new_token


def test_client_keys_group_an_ipv6_lan_and_unmap_ipv4() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == (
        "2001:db8:1:2::/64")
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("192.0.2.7") != client_key("192.0.2.8")
    assert client_key("testclient") == "testclient"  # not an address: as it is


def test_spelling_the_bearer_header_differently_shares_one_bucket(center: Center) -> None:
    token = new_token(center, "analyst")
    spellings = [f"Bearer {token}", f"Bearer  {token}", f"bearer {token}",
                 f"BEARER {token} "]
    with make_client(center, token_per_minute=6) as client:
        codes = [client.get("/api/v1/me", headers={"Authorization": spellings[i % 4]}
                            ).status_code for i in range(12)]
    assert codes[0] == 200 and codes.count(200) <= 2, codes  # burst 1: one bucket, not four
    assert set(codes) <= {200, 429}
