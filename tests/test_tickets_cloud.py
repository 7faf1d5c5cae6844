"""Tickets belong to their stall: another stall's claim on an id is refused, the page shows the
registry's market, stall and retailer, a ticket naming another stall is not genuine, and a key
rotation (never silent) leaves every earlier ticket genuine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.collector import Incoming, classify
from cloud.config import CloudConfig
from cloud.provisioning import Registry
from cloud.store import Store
from cloud.tickets import TicketKeys, check_ticket
from cloud.web import Verdict, render_page
from shared.codec import batch_payload
from shared.signing import sign
from tests.support.tickets import signed_ticket
from tests.test_codec import raw_event


@pytest.fixture
def cloud(tmp_path: Path) -> tuple[Registry, Store]:
    cfg = CloudConfig.model_validate(
        {
            "data_dir": str(tmp_path),
            "store": {"path": str(tmp_path / "c.db")},
            "tickets": {"keys_dir": str(tmp_path / "keys")},
            "provisioning": {
                "broker_dir": str(tmp_path / "broker"),
                "bundle_dir": str(tmp_path / "bundles"),
            },
        }
    )
    store = Store(cfg.store.path)
    return Registry(cfg, store), store


def add_stall(registry: Registry, device: str, rotate: bool = False) -> dict[str, Any]:
    stall = {"market": "华信农贸市场", "stall_no": f"A-{device}", "retailer": "李四"}
    return registry.add_device(device, "market-1", "xianan", "stall", stall, rotate)


def sale(bundle: dict[str, Any], **change: Any) -> dict[str, Any]:
    s = bundle["stall"]
    named = {"market": s["market"], "stall": s["stall_no"], "retailer": s["retailer"]}
    key = bytes.fromhex(bundle["ticket_key"])
    return signed_ticket(key, **{**named, "key": bundle["ticket_key_id"], **change})


def sell(store: Store, device: str, *tickets: dict[str, Any]) -> Any:
    bodies = [
        raw_event(n + 1, json.dumps(t), device=device, site="market-1", kind="ticket")
        for n, t in enumerate(tickets)
    ]
    msgs = [Incoming(None, 1, 1, f"shian/v1/dev/{device}/events", batch_payload(bodies))]
    return store.write(*classify(msgs))


def verdict(registry: Registry, store: Store, t: dict[str, Any], sig: str | None = None) -> str:
    v = check_ticket(store.tickets, store.registry, registry.keys, t["ticket_id"], sig or t["sig"])
    return v.status


def test_another_stall_cannot_take_a_ticket_id(cloud: tuple[Registry, Store]) -> None:
    registry, store = cloud
    a, b = add_stall(registry, "s-a"), add_stall(registry, "s-b")
    t = sale(a)
    assert sell(store, "s-a", t).inserted == 1
    forged = sale(b, ticket_id=t["ticket_id"])
    res = sell(store, "s-b", forged)
    assert res.inserted == 0 and res.deadletters == 1 and res.accepted == []
    assert store.dead.list()[0]["reason"].startswith("ticket_conflict")
    assert store.tickets.get(t["ticket_id"])["device"] == "s-a"
    assert verdict(registry, store, t) == "genuine"
    assert verdict(registry, store, forged) == "not_genuine"


def test_a_ticket_naming_another_stall_is_not_genuine(cloud: tuple[Registry, Store]) -> None:
    registry, store = cloud
    a = add_stall(registry, "s-a")
    add_stall(registry, "s-b")
    # signed by s-a's own key, but naming s-b's stall position
    t = sale(a, stall="A-s-b")
    sell(store, "s-a", t)
    v = check_ticket(store.tickets, store.registry, registry.keys, t["ticket_id"], t["sig"])
    assert v.status == "not_genuine" and "another stall" in v.reason


def test_registering_again_keeps_the_key_and_rotation_keeps_old_tickets(
    cloud: tuple[Registry, Store],
) -> None:
    registry, store = cloud
    first = add_stall(registry, "s-a")
    old = sale(first)
    sell(store, "s-a", old)
    again = add_stall(registry, "s-a")
    assert again["ticket_key"] == first["ticket_key"], "registering again is not a rotation"
    rotated = add_stall(registry, "s-a", rotate=True)
    assert rotated["ticket_key"] != first["ticket_key"]
    assert rotated["ticket_key_id"] != first["ticket_key_id"]
    new = sale(rotated)
    sell(store, "s-a", new)
    assert verdict(registry, store, old) == "genuine", "a ticket printed before the rotation"
    assert verdict(registry, store, new) == "genuine"
    assert len(list((registry.keys.folder).glob("s-a.*.key"))) == 2


def test_a_stall_registered_before_key_ids_keeps_its_tickets(
    cloud: tuple[Registry, Store], tmp_path: Path
) -> None:
    """A key written as <device>.key (no id) and tickets without a key id still verify."""
    from cloud.registry import Identity
    from shared.signing import write_key

    registry, store = cloud
    key = bytes(range(32))
    write_key(tmp_path / "keys" / "old.key", key)
    store.registry.put(
        Identity(
            name="old",
            kind="device",
            role="stall",
            site="market-1",
            district="xianan",
            market="m",
            stall_no="1",
            retailer="r",
        )
    )
    bundle = {
        "stall": {"market": "m", "stall_no": "1", "retailer": "r"},
        "ticket_key": key.hex(),
        "ticket_key_id": "",
    }
    t = sale(bundle)
    del t["key"]
    t["sig"] = sign(key, t)
    sell(store, "old", t)
    assert verdict(registry, store, t) == "genuine"
    assert add_stall(registry, "old")["ticket_key"] == key.hex(), "kept when registered again"


def test_the_page_survives_what_a_link_or_a_stored_ticket_holds(
    cloud: tuple[Registry, Store],
) -> None:
    registry, store = cloud
    a = add_stall(registry, "s-a")
    t = sale(a)
    sell(store, "s-a", t)
    for sig in ("é" * 16, "\x00", "", "😀" * 40, t["sig"].upper() + " "):
        assert verdict(registry, store, t, sig) in ("genuine", "not_genuine")
    shown = Verdict("genuine", "ok", {**t, "time": "<script>not a time"})
    page = render_page(shown)
    assert "<script>" not in page and "&lt;script&gt;not a time" in page


@settings(max_examples=60, deadline=None)
@given(ticket_id=st.text(max_size=40), sig=st.text(max_size=40))
def test_any_link_gets_a_verdict(tmp_path_factory: Any, ticket_id: str, sig: str) -> None:
    keys = TicketKeys(tmp_path_factory.mktemp("k"))
    store = Store(tmp_path_factory.mktemp("s") / "c.db")
    v = check_ticket(store.tickets, store.registry, keys, ticket_id, sig)
    assert v.status in ("unknown", "not_genuine")
    store.close()
