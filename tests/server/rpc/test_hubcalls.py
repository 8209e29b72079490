"""The hub's answers kept by `HubCalls`: a token in use is renewed before its answer runs out,
in the background, and no answer is ever used longer than it is valid."""

from __future__ import annotations

import threading
import time

from mef3lab.server.rpc.hubcalls import RENEW_PART, HubCalls

VALID_S = 1.0


class Hub:
    """Answers `ask(token)` from a list, one per question (the last one from then on)."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.asked = 0
        self.done = threading.Event()

    def __call__(self, token: str):
        self.asked += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        self.done.set()
        if isinstance(answer, Exception):
            raise answer
        return answer


def until_renewal_is_due(t0: float) -> None:
    time.sleep(max(0.0, t0 + VALID_S * (1 - RENEW_PART / 2) - time.monotonic()))


def renewed(hub: Hub, calls: HubCalls, token: str) -> tuple[bool, object]:
    """Use the token when its renewal is due; the answer it got, once the hub was asked."""
    hub.done.clear()
    got = calls.known(token)
    assert hub.done.wait(10), "the answer was not renewed"
    time.sleep(0.05)  # the renewal's answer is kept just after the hub answered
    return got


def test_a_token_in_use_is_renewed_before_its_answer_runs_out():
    hub = Hub("alice", "alice")
    calls = HubCalls(hub, VALID_S)
    t0 = time.monotonic()
    assert calls("tok") == "alice" and hub.asked == 1
    assert calls.known("tok") == (True, "alice") and hub.asked == 1  # early on: nothing asked
    until_renewal_is_due(t0)
    assert renewed(hub, calls, "tok") == (True, "alice")  # answered at once meanwhile
    time.sleep(max(0.0, t0 + VALID_S + 0.3 - time.monotonic()))
    assert calls.known("tok") == (True, "alice")  # past the first answer's time: the renewed
    assert hub.asked == 2


def test_a_renewal_that_finds_the_token_revoked_refuses_it_at_once():
    hub = Hub("alice", None)
    calls = HubCalls(hub, VALID_S)
    t0 = time.monotonic()
    calls("tok")
    until_renewal_is_due(t0)
    renewed(hub, calls, "tok")
    assert calls.known("tok") == (True, None)  # refused before the old answer ran out


def test_an_answer_that_could_not_be_renewed_is_used_only_while_it_is_valid():
    hub = Hub("alice", RuntimeError("hub down"))
    calls = HubCalls(hub, VALID_S)
    t0 = time.monotonic()
    calls("tok")
    until_renewal_is_due(t0)
    assert renewed(hub, calls, "tok") == (True, "alice")
    assert calls.known("tok") == (True, "alice")  # still valid
    time.sleep(max(0.0, t0 + VALID_S + 0.1 - time.monotonic()))
    assert calls.known("tok") == (False, None)  # run out: the hub must be asked
