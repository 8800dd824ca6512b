"""Conversations as Genesys notification kinds: customer, flow, acd, user, acw, wrapup sessions;
every body names its participant and session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.generate.model import Agent, Facts, Queue, new_uuid
from simulator.generate.steps import Script, ScriptBase, last_code
from simulator.timeutil import MINUTE, SECOND

GENESYS_MEDIA = {
    "voice": "VOICE",
    "chat": "CHAT",
    "email": "EMAIL",
    "video": "VIDEO",
    "task": "WORKITEM",
}


@dataclass(slots=True)
class _Session:
    participant_id: str
    session_id: str
    agent: Agent
    held_ms: int = 0


@dataclass(slots=True)
class GenesysScript(ScriptBase):
    """A conversation as Genesys notification kinds; every body names participant and session."""

    direction: str = "INBOUND"
    sessions: list[_Session] = field(default_factory=list)
    transfers: int = 0

    def run(self) -> Script:
        self.direction = "OUTBOUND" if self.intent.outbound else "INBOUND"
        self.call()
        steps = self.tl.finish()
        facts = Facts(
            ended=True,
            hold_ms=sum(s.held_ms for s in self.sessions),
            hold_count=sum(1 for s in self.sessions if s.held_ms > 0),
            transfers=self.transfers,
            wrap_up_code=last_code(steps),
            agent_ids=frozenset(s.agent.id for s in self.sessions),
        )
        return Script(steps, facts, self.media)

    def ev(self, kind: str, who: tuple[str, str], **fields: Any) -> int:
        step = self.tl.emit(
            kind, participantId=who[0], sessionId=who[1], direction=self.direction, **fields
        )
        return step.time_ms

    def acd(self, queue: Queue, answered: Agent | None) -> None:
        routing = (new_uuid(self.rng), new_uuid(self.rng))
        skills = list(queue.skill_ids)
        self.ev("acd.start", routing, queueId=queue.id, requestedRoutingSkillIds=skills)
        self.tl.wait(4 * SECOND, 3 * MINUTE)
        self.ev(
            "acd.end",
            routing,
            queueId=queue.id,
            disconnectType="transfer" if answered else "peer",
            acdOutcome="ANSWERED" if answered else "ABANDON",
            answeredUserId=answered.id if answered else None,
        )

    def user_start(self, session: _Session, queue: Queue | None) -> None:
        self.sessions.append(session)
        who = (session.participant_id, session.session_id)
        self.ev("user.start", who, userId=session.agent.id, queueId=queue.id if queue else None)

    def user_end(self, session: _Session, disconnect: str) -> int:
        held = session.held_ms if session.held_ms or self.rng.random() < 0.5 else None
        who = (session.participant_id, session.session_id)
        return self.ev(
            "user.end",
            who,
            userId=session.agent.id,
            disconnectType=disconnect,
            heldDurationMs=held,
        )

    def wrapup(self, session: _Session, ended_ms: int, kind: str) -> None:
        """After-call work beside the main thread: `acw` (sometimes), then `wrapup`."""
        if kind == "none":
            return
        acw_ms = self.acw_ms(kind)
        fields = {
            "participantId": session.participant_id,
            "sessionId": session.session_id,
            "direction": self.direction,
            "userId": session.agent.id,
            "wrapupDurationMs": acw_ms,
        }
        if self.rng.random() < 0.7:
            self.tl.emit_at(ended_ms + acw_ms, "acw", **fields)
        code = self.code(kind, by_id=True)
        at = ended_ms + acw_ms + self.rng.randint(5, 60)
        self.tl.emit_at(at, "wrapup", **fields, wrapupCode=code)

    def call(self) -> None:
        rng, tl, intent, org = self.rng, self.tl, self.intent, self.org
        ani: str | None = None
        dnis: str | None = None
        if self.media == "voice":
            customer_number = rng.choice(org.customer_numbers)
            did = rng.choice(org.dids)
            ani, dnis = (did, customer_number) if intent.outbound else (customer_number, did)
            ani, dnis = (None if intent.anonymous else f"tel:{ani}"), f"tel:{dnis}"
        elif self.media == "email":
            ani, dnis = rng.choice(org.customer_emails), f"support@{org.mail_domain}"
        customer = (new_uuid(rng), new_uuid(rng))
        queue = rng.choice(org.queues)
        self.ev("customer.start", customer, ani=ani, dnis=dnis)
        if not intent.outbound and self.media in ("voice", "chat"):
            self.flow(customer)
        if self.media == "voice" and not intent.outbound and rng.random() < 0.08:
            self.unanswered(queue, customer)
            return
        agent = self.agent_for(queue)
        if intent.outbound:
            tl.wait(1 * SECOND, 3 * SECOND)
        else:
            self.acd(queue, agent)
        session = _Session(new_uuid(rng), new_uuid(rng), agent)
        self.user_start(session, None if intent.outbound else queue)
        for _ in range(intent.holds):
            tl.wait(20 * SECOND, 4 * MINUTE)
            held = rng.randint(10 * SECOND, 3 * MINUTE)
            session.held_ms += held
            tl.t += held
        if rng.random() < 0.1:  # the agent's leg drops and reconnects: a second session
            tl.wait(20 * SECOND, 2 * MINUTE)
            self.user_end(session, "endpoint")
            session = _Session(session.participant_id, new_uuid(rng), agent)
            tl.wait(1 * SECOND, 10 * SECOND)
            self.user_start(session, None)
        if intent.transfer:
            tl.wait(20 * SECOND, 3 * MINUTE)
            how = rng.choice(("transfer", "transfer.forward", "transfer.consult"))
            self.wrapup(session, self.user_end(session, how), "normal")
            self.transfers += 1
            target_queue = self.other_queue(queue) if intent.transfer == "queue" else queue
            target = self.agent_for(target_queue, exclude=agent)
            if intent.transfer == "queue":
                self.acd(target_queue, target)
            else:
                tl.wait(2 * SECOND, 15 * SECOND)
            session = _Session(new_uuid(rng), new_uuid(rng), target)
            self.user_start(session, target_queue)
        tl.wait(15 * SECOND, 5 * MINUTE)
        if rng.random() < 0.6:  # the customer hangs up first
            self.ev("customer.end", customer, disconnectType="client")
            tl.wait(1, 400)
            ended = self.user_end(session, "peer")
        else:
            ended = self.user_end(session, "client")
            tl.wait(1, 400)
            self.ev("customer.end", customer, disconnectType="peer")
        self.wrapup(session, ended, intent.wrapup)

    def flow(self, customer: tuple[str, str]) -> None:
        """The IVR: its end hands the call to a queue, which is routing, not a transfer."""
        rng, tl = self.rng, self.tl
        flow = (new_uuid(rng), new_uuid(rng))
        tl.wait(200, 2 * SECOND)
        self.ev("flow.start", flow, flowId=rng.choice(self.org.flow_ids))
        if rng.random() < 0.3:
            tl.wait(1 * SECOND, 5 * SECOND)
            language = rng.choice(("en", "de", "fr"))
            self.ev("attributes", customer, attributes={"language": language})
        tl.wait(3 * SECOND, 40 * SECOND)
        if rng.random() < 0.5:
            self.ev("flow.outcome", flow, flowOutcomeId=new_uuid(rng), flowOutcomeValue="SUCCESS")
        self.ev("flow.end", flow, disconnectType="transfer")

    def unanswered(self, queue: Queue, customer: tuple[str, str]) -> None:
        """The caller leaves a voicemail, or gives up in the queue."""
        self.acd(queue, None)
        if self.rng.random() < 0.5:
            voicemail = (new_uuid(self.rng), new_uuid(self.rng))
            self.ev("voicemail.start", voicemail, queueId=queue.id)
            self.tl.wait(10 * SECOND, 90 * SECOND)
            self.ev("voicemail.end", voicemail, queueId=queue.id, disconnectType="peer")
        self.tl.wait(100, 2 * SECOND)
        self.ev("customer.end", customer, disconnectType="client")
