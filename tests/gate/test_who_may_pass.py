"""Who passes an open gate: everyone, a sticky share of visitors, office networks, user ids."""

from __future__ import annotations

import ipaddress
import math
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import Signer

from server import db
from server.audit.models import Event
from server.errors import Conflict, Invalid
from server.flags import service as flags
from server.flags.schemas import Constraint, StrategyIn
from server.gate import FLAG
from server.gate.decision import VISITOR_SALT, Reason, Visit, decide
from server.gate.history import describe_event
from server.gate.settings import AudienceChoice, set_audience, split_list
from server.gate.state import read_audience
from server.gate.views import VISITOR_COOKIE
from tests.gate.conftest import ADMIN

PROXY = {"TRUSTED_PROXIES": (ipaddress.ip_network("127.0.0.1/32"),)}
STRANGER = {"REMOTE_ADDR": "203.0.113.9"}


def signed_visitor(app: Flask, visitor_id: str) -> str:
    return Signer(str(app.secret_key), salt=VISITOR_SALT).sign(visitor_id).decode()


def test_open_gate_creates_site_open_as_a_permission_flag(app: Flask, gate: Any) -> None:
    state = gate.open()
    assert state.open and state.audience.everyone
    assert state.sentence == "Open to everyone."
    with app.app_context():
        flag = flags.get_flag(db.session(), FLAG)
        assert flag.type == "permission"
        assert "public may pass" in flag.description
        production = flags.flag_environment(flag, "production")
        assert [s.name for s in production.strategies] == ["default"]
        development = flags.flag_environment(flag, "development")
        assert not development.enabled  # only the gate environment is touched


def test_opening_and_closing_is_audited_as_site_open_changes(app: Flask, gate: Any) -> None:
    gate.open()
    gate.close()
    gate.close()  # nothing changes, nothing is recorded
    with app.app_context():
        events = db.session().query(Event).filter(Event.target == FLAG).all()
        assert [(e.action, e.environment) for e in events] == [
            ("flag.created", None),
            ("flag.strategy.added", "production"),
            ("flag.enabled", "production"),
            ("flag.disabled", "production"),
        ]
        assert all(e.actor == ADMIN.label for e in events)
        words = [describe_event(e, "production") for e in events]
        assert words == [
            "Created the site.open flag (closed)",
            "Let in everyone",
            "Opened the gate",
            "Closed the gate",
        ]


def test_archived_site_open_is_revived_when_the_gate_is_opened(app: Flask, gate: Any) -> None:
    gate.close()
    with app.app_context():
        flags.archive_flag(db.session(), ADMIN, FLAG)
    assert not gate.state().exists
    assert gate.open().open


@pytest.mark.parametrize(
    ("passes", "sentence"),
    [
        (0, "Closed: only the team gets in."),
        (1, "Closed: only the team and 1 preview pass get in."),
    ],
)
def test_closed_state_in_one_sentence(gate: Any, passes: int, sentence: str) -> None:
    for _ in range(passes):
        gate.create_pass()
    assert gate.state().sentence == sentence


def test_closed_sentence_counts_only_live_passes(gate: Any) -> None:
    for _ in range(3):
        gate.create_pass()
    gate.revoke(gate.create_pass().preview_pass.id)
    assert gate.state().sentence == "Closed: only the team and 3 preview passes get in."


def test_soft_launch_in_one_sentence(gate: Any) -> None:
    gate.audience(percent=20, networks=["10.0.0.0/8"])
    closed = gate.state()
    assert closed.sentence == "Closed: only the team gets in."
    opened = gate.open()
    assert opened.sentence == "Soft launch: 20% of visitors, plus the office network 10.0.0.0/8."
    more = gate.audience(networks=["10.0.0.0/8", "192.168.1.7"], user_ids=["alice", "bob"])
    assert more.sentence == (
        "Soft launch: the office networks 10.0.0.0/8, 192.168.1.7/32, plus users alice, bob."
    )


def test_narrowing_and_widening_never_leaves_site_open_without_strategies(
    app: Flask, gate: Any
) -> None:
    gate.open()
    gate.audience(percent=20)
    gate.audience(percent=50, user_ids=["alice"])
    gate.audience(everyone=True)
    with app.app_context():
        events = (
            db.session()
            .query(Event)
            .filter(Event.action.startswith("flag.strategy."))
            .order_by(Event.id)
            .all()
        )
    count = 0
    for e in events:
        count += {"flag.strategy.added": 1, "flag.strategy.removed": -1}.get(e.action, 0)
        assert count >= 1, f"site.open had no strategy after {e.action}"
    assert [e.action for e in events] == [
        "flag.strategy.added",  # default (open)
        "flag.strategy.added",  # 20%
        "flag.strategy.removed",  # default
        "flag.strategy.updated",  # 20% -> 50%
        "flag.strategy.added",  # alice
        "flag.strategy.added",  # default
        "flag.strategy.removed",  # 50%
        "flag.strategy.removed",  # alice
    ]
    assert gate.state().sentence == "Open to everyone."


def test_saving_the_same_audience_twice_changes_nothing(app: Flask, gate: Any) -> None:
    gate.audience(percent=30, networks=["10.0.0.0/8"])
    with app.app_context():
        before = db.session().query(Event).count()
    gate.audience(percent=30, networks=["10.0.0.0/8"])
    with app.app_context():
        assert db.session().query(Event).count() == before


def test_stale_audience_edit_is_refused(app: Flask, gate: Any) -> None:
    version = gate.audience(percent=30).version
    gate.audience(percent=40)
    with app.app_context(), pytest.raises(Conflict, match=r"changed by admin@example\.com"):
        set_audience(
            db.session(),
            ADMIN,
            ("development", "production"),
            "production",
            AudienceChoice(everyone=False, percent=10),
            expected_version=version,
        )


@pytest.mark.parametrize(
    ("choice", "field"),
    [
        ({}, "percent"),
        ({"percent": 0}, "percent"),
        ({"percent": 101}, "percent"),
        ({"networks": ["10.0.0.300"]}, "networks"),
        ({"networks": ["office"]}, "networks"),
        ({"user_ids": ["x" * 201]}, "user_ids"),
        ({"user_ids": [f"u{i}" for i in range(101)]}, "user_ids"),
    ],
)
def test_unusable_audience_is_refused_with_the_field_named(
    gate: Any, choice: dict[str, Any], field: str
) -> None:
    with pytest.raises(Invalid) as caught:
        gate.audience(**choice)
    assert field in caught.value.details["fields"]


def test_strategies_set_up_on_the_flag_page_are_shown_and_replaced_on_save(
    app: Flask, gate: Any
) -> None:
    gate.open()
    with app.app_context():
        flags.add_strategy(
            db.session(),
            ADMIN,
            FLAG,
            "production",
            StrategyIn(
                name="flexibleRollout",
                parameters={"rollout": "10", "stickiness": "userId"},
                constraints=[Constraint(contextName="country", operator="IN", values=["NO"])],
            ),
        )
    state = gate.state()
    assert state.audience.everyone  # the default strategy still lets everyone in
    assert state.audience.other == ("on for 10% of users by userId where country is NO",)
    after = gate.audience(percent=25)
    assert after.audience.other == ()
    assert [s["name"] for s in after.strategies] == ["flexibleRollout"]
    assert after.strategies[0]["parameters"]["stickiness"] == "sessionId"


def test_split_list_reads_commas_spaces_and_lines() -> None:
    assert split_list("10.0.0.0/8, 192.168.0.1\n 172.16.0.0/12") == [
        "10.0.0.0/8",
        "192.168.0.1",
        "172.16.0.0/12",
    ]
    assert split_list(["a,b", "c"]) == ["a", "b", "c"]
    assert split_list(None) == []


def test_read_audience_follows_the_engine_for_unusual_strategy_lists(app: Flask) -> None:
    from server.flags.models import Strategy

    def s(name: str, **params: str) -> Strategy:
        return Strategy(
            id=name,
            sort_order=0,
            name=name,
            parameters=params,
            constraints=[],
            segments=[],
            variants=[],
            disabled=False,
        )

    assert read_audience([]).everyone  # on with no strategies is on for everyone
    disabled = s("userWithId", userIds="a")
    disabled.disabled = True
    assert read_audience([disabled]).everyone
    full = read_audience([s("flexibleRollout", rollout="100", stickiness="default")])
    assert full.everyone and full.percent == 100
    odd = read_audience([s("gradualRolloutRandom", percentage="5")])
    assert not odd.everyone and odd.other == ("on for 5% of users by random pick",)


# ---- soft launch -------------------------------------------------------------------------------


def test_soft_launch_answer_is_sticky_per_visitor(app: Flask, gate: Any) -> None:
    gate.audience(percent=50)
    gate.open()
    answers = []
    for i in range(20):
        client = app.test_client()
        client.set_cookie(VISITOR_COOKIE, signed_visitor(app, f"visitor{i:010d}"))
        first = client.get("/changelog", environ_base=STRANGER).status_code
        for _ in range(4):
            assert client.get("/changelog", environ_base=STRANGER).status_code == first
        answers.append(first)
    assert set(answers) == {200, 503}  # both answers occur, each stays put
    newcomer = app.test_client()
    first = newcomer.get("/changelog", environ_base=STRANGER).status_code
    assert newcomer.get_cookie(VISITOR_COOKIE) is not None  # remembered, so reloading
    for _ in range(4):  # is no way in
        assert newcomer.get("/changelog", environ_base=STRANGER).status_code == first


def test_soft_launch_lets_in_close_to_the_chosen_share(app: Flask, gate: Any) -> None:
    n, share = 2000, 0.2
    gate.audience(percent=20)
    gate.open()
    with app.app_context():
        key = str(app.secret_key)
        passed = 0
        for i in range(n):
            visit = Visit(
                path="/",
                visitor_cookie=signed_visitor(app, f"visitor{i:010d}"),
                address="203.0.113.9",
            )
            decision = decide(visit, secret_key=key)
            assert decision.reason in (Reason.OPEN, Reason.CLOSED)
            passed += decision.passed
    sd = math.sqrt(n * share * (1 - share))  # binomial standard deviation: about 17.9
    print(f"{passed} of {n} visitors passed a {share:.0%} soft launch")
    assert abs(passed - n * share) <= 4 * sd, passed


def test_raising_the_share_keeps_everyone_already_in(app: Flask, gate: Any) -> None:
    gate.audience(percent=20)
    gate.open()
    visits = [
        Visit(path="/", visitor_cookie=signed_visitor(app, f"visitor{i:010d}"), address="::1")
        for i in range(300)
    ]
    with app.app_context():
        before = {v.visitor_cookie for v in visits if decide(v).passed}
    gate.audience(percent=60)
    with app.app_context():
        after = {v.visitor_cookie for v in visits if decide(v).passed}
    assert before < after


def test_tampered_visitor_cookie_is_closed_and_replaced(app: Flask, gate: Any) -> None:
    gate.audience(percent=100, networks=["10.0.0.0/8"])  # targeted, but everyone matches
    gate.open()
    client = app.test_client()
    client.set_cookie(VISITOR_COOKIE, "visitor0000000001.forged")
    assert client.get("/changelog", environ_base=STRANGER).status_code == 503
    fresh = client.get_cookie(VISITOR_COOKIE)
    assert fresh is not None and fresh.value != "visitor0000000001.forged"
    assert client.get("/changelog", environ_base=STRANGER).status_code == 200


def test_closed_site_sets_no_cookie_on_strangers(client: FlaskClient, gate: Any) -> None:
    gate.audience(percent=50)
    response = client.get("/changelog")
    assert response.status_code == 503
    assert "Set-Cookie" not in response.headers


# ---- office allowlist and client addresses ------------------------------------------------------


def test_office_network_passes_without_a_proxy(app: Flask, gate: Any) -> None:
    gate.audience(networks=["10.0.0.0/8"])
    gate.open()
    client = app.test_client()
    assert client.get("/changelog", environ_base={"REMOTE_ADDR": "10.20.30.40"}).status_code == 200
    assert client.get("/changelog", environ_base=STRANGER).status_code == 503


def test_spoofed_forwarded_for_from_an_untrusted_address_is_ignored(app: Flask, gate: Any) -> None:
    gate.audience(networks=["10.0.0.0/8"])
    gate.open()
    response = app.test_client().get(
        "/",
        environ_base=STRANGER,
        headers={"X-Forwarded-For": "10.1.1.1", "X-Real-IP": "10.1.1.1"},
    )
    assert response.status_code == 503


@pytest.mark.parametrize("app_config", [PROXY], ids=["trusted-proxy"])
def test_office_network_behind_a_trusted_proxy(app: Flask, gate: Any, app_config: Any) -> None:
    gate.audience(networks=["10.0.0.0/8"])
    gate.open()
    client = app.test_client()
    local = {"REMOTE_ADDR": "127.0.0.1"}

    def status(**headers: str) -> int:
        return client.get("/changelog", environ_base=local, headers=headers).status_code

    assert status(**{"X-Forwarded-For": "10.1.1.1"}) == 200
    assert status(**{"X-Forwarded-For": "203.0.113.5"}) == 503
    # A client that prepends an office address is caught: the proxy appended the real one.
    assert status(**{"X-Forwarded-For": "10.1.1.1, 203.0.113.5"}) == 503
    assert status(**{"X-Real-IP": "10.1.1.1"}) == 200
    # From an address that is not a trusted proxy, the header is not believed.
    spoofed = client.get(
        "/changelog", environ_base=STRANGER, headers={"X-Forwarded-For": "10.1.1.1"}
    )
    assert spoofed.status_code == 503


@pytest.mark.parametrize("app_config", [PROXY], ids=["trusted-proxy"])
@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "10.1.1.1, not-an-address"},
        {"X-Forwarded-For": "999.1.1.1"},
        {"X-Real-IP": "office"},
    ],
)
def test_malformed_forwarded_address_from_the_proxy_means_closed(
    app: Flask, gate: Any, app_config: Any, headers: dict[str, str]
) -> None:
    gate.open()  # open to everyone, and still closed for a request it cannot place
    client = app.test_client()
    response = client.get("/changelog", environ_base={"REMOTE_ADDR": "127.0.0.1"}, headers=headers)
    assert response.status_code == 503
    assert client.get("/changelog", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 200


@pytest.mark.parametrize(
    "app_config", [{**PROXY, "GATE_USER_HEADER": "X-Forwarded-User"}], ids=["trusted-proxy"]
)
def test_user_ids_come_from_the_trusted_proxy_only(app: Flask, gate: Any, app_config: Any) -> None:
    gate.audience(user_ids=["alice@example.com"])
    gate.open()
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    alice = {"X-Forwarded-User": "alice@example.com"}
    assert client.get("/changelog", environ_base=proxy, headers=alice).status_code == 200
    assert (
        client.get(
            "/changelog", environ_base=proxy, headers={"X-Forwarded-User": "eve"}
        ).status_code
        == 503
    )
    assert client.get("/changelog", environ_base=STRANGER, headers=alice).status_code == 503
