"""Conversation scripts: what happens in a call, chat, email, video or task, step by step.

A script is a list of `Step`s (action, time, fields) in time order, plus the `Facts` the script
meant (holds, transfers, wrap-up), which tests hold against the rule-derived truth. Envelope
scripts speak the envelope vocabulary (SPEC 2.1); Genesys scripts speak the notification kinds
(customer / flow / acd / user / acw / wrapup …).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from random import Random
from typing import Any

from simulator.model import WRAPUP_TIMEOUT_CODE, Agent, Facts, Org, Queue, new_uuid
from simulator.timeutil import MINUTE, SECOND

GENESYS_MEDIA = {
    "voice": "VOICE",
    "chat": "CHAT",
    "email": "EMAIL",
    "video": "VIDEO",
    "task": "WORKITEM",
}


@dataclass(slots=True)
class Step:
    """One micro-event as the source emits it, before envelopes and order keys."""

    action: str
    time_ms: int
    fields: dict[str, Any]


@dataclass(slots=True)
class Script:
    """A conversation's steps in time order and what the script meant."""

    steps: list[Step]
    facts: Facts
    media: str


@dataclass(slots=True)
class Intent:
    """Per-conversation decisions taken before the script runs."""

    outbound: bool = False
    holds: int = 0
    transfer: str | None = None  # None, "agent" or "queue"
    wrapup: str = "normal"  # "normal", "late", "timeout" or "none"
    anonymous: bool = False


def decide(
    rng: Random,
    media: str,
    *,
    hold_rate: float,
    transfer_rate: float,
    late_wrapup_rate: float,
    timeout_rate: float,
) -> Intent:
    """Draw the shape of a conversation from the knobs."""
    holds = 0
    if media in ("voice", "video") and rng.random() < hold_rate:
        holds = rng.choice((1, 1, 2, 2, 3))
    transfer = rng.choice(("agent", "queue")) if rng.random() < transfer_rate else None
    roll = rng.random()
    if roll < timeout_rate:
        wrapup = "timeout"
    elif roll < timeout_rate + late_wrapup_rate:
        wrapup = "late"
    elif roll > 0.97:
        wrapup = "none"
    else:
        wrapup = "normal"
    return Intent(
        outbound=media in ("voice", "email") and rng.random() < 0.12,
        holds=holds,
        transfer=transfer,
        wrapup=wrapup,
        anonymous=media == "voice" and rng.random() < 0.03,
    )


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


@dataclass(slots=True)
class Timeline:
    """Appends steps at a moving clock; every step gets a distinct, increasing time."""

    rng: Random
    t: int
    steps: list[Step] = field(default_factory=list)
    side: list[Step] = field(default_factory=list)

    def wait(self, lo_ms: int, hi_ms: int) -> int:
        self.t += self.rng.randint(lo_ms, hi_ms)
        return self.t

    def emit(self, action: str, **fields: Any) -> Step:
        if self.steps and self.t <= self.steps[-1].time_ms:
            self.t = self.steps[-1].time_ms + 1
        step = Step(action, self.t, _present(fields))
        self.steps.append(step)
        return step

    def emit_at(self, time_ms: int, action: str, **fields: Any) -> None:
        """A step beside the main thread (an agent's wrap-up while the customer talks on)."""
        self.side.append(Step(action, time_ms, _present(fields)))

    def finish(self) -> list[Step]:
        """All steps in time order; side steps move by a millisecond to stay distinct."""
        used = {s.time_ms for s in self.steps}
        for step in self.side:
            while step.time_ms in used:
                step.time_ms += 1
            used.add(step.time_ms)
        return sorted(self.steps + self.side, key=lambda s: s.time_ms)


def last_code(steps: list[Step]) -> str | None:
    """The wrap-up code of the last step that carries one."""
    codes = [s.fields.get("wrapUpCode") or s.fields.get("wrapupCode") for s in steps]
    present = [c for c in codes if c]
    return present[-1] if present else None


@dataclass(slots=True)
class _Script:
    """What every script needs: randomness, the org, a clock and the conversation's intent."""

    rng: Random
    org: Org
    media: str
    intent: Intent
    tl: Timeline

    def agent_for(self, queue: Queue, exclude: Agent | None = None) -> Agent:
        skills = set(queue.skill_ids)
        skilled = [a for a in self.org.agents if skills & set(a.skill_ids) and a != exclude]
        return self.rng.choice(skilled or [a for a in self.org.agents if a != exclude])

    def other_queue(self, queue: Queue) -> Queue:
        return self.rng.choice([q for q in self.org.queues if q != queue])

    def acw_ms(self, kind: str) -> int:
        """How long after-call work lasts: quick, slow (past the grace), or timed out."""
        if kind == "timeout":
            return self.org.acw_timeout_ms + self.rng.randint(0, 2 * SECOND)
        if kind == "late":
            return self.rng.randint(70 * SECOND, 10 * MINUTE)
        return self.rng.randint(3 * SECOND, 55 * SECOND)

    def code(self, kind: str, *, by_id: bool) -> str:
        if kind == "timeout":
            return WRAPUP_TIMEOUT_CODE
        code = self.rng.choice(self.org.wrapup_codes)
        return code.id if by_id else code.name

    def duration(self, ms: int) -> float | int:
        """A reported duration in seconds: sometimes whole seconds, else with milliseconds."""
        return ms // 1000 if self.rng.random() < 0.5 else ms / 1000


# ----------------------------------------------------------------------------- envelope


@dataclass(slots=True)
class EnvelopeScript(_Script):
    """A conversation in the envelope vocabulary (SPEC 2.1)."""

    agents: set[str] = field(default_factory=set)
    hold_ms: int = 0
    transfers: int = 0
    messages: int = 0

    def run(self) -> Script:
        if self.media == "chat":
            self.chat()
        elif self.media == "email":
            self.email()
        else:
            self.call()
        steps = self.tl.finish()
        facts = Facts(
            ended=True,
            hold_ms=self.hold_ms,
            hold_count=self.intent.holds,
            transfers=self.transfers,
            wrap_up_code=last_code(steps),
            message_count=self.messages,
            agent_ids=frozenset(self.agents),
        )
        return Script(steps, facts, self.media)

    def state(self, status: str) -> int:
        return self.tl.emit("conversation:state", status=status).time_ms

    def customer(self) -> None:
        self.tl.emit(
            "participant:added",
            participantId=new_uuid(self.rng),
            purpose="customer",
            name=self.rng.choice(self.org.customer_names),
        )

    def routing(self, queue: Queue) -> None:
        self.tl.emit(
            "participant:added",
            participantId=new_uuid(self.rng),
            purpose="acd",
            queueId=queue.id,
            skillIds=list(queue.skill_ids),
        )

    def join(self, agent: Agent, queue: Queue | None) -> None:
        self.agents.add(agent.id)
        self.tl.emit(
            "participant:added",
            participantId=new_uuid(self.rng),
            purpose="agent",
            agentId=agent.id,
            queueId=queue.id if queue else None,
            name=agent.name,
        )

    def transfer(self, agent: Agent, queue: Queue) -> tuple[Agent, Queue]:
        """Hand the customer from `agent` to another agent or queue; the first agent wraps up."""
        name = "voice:call:transferred" if self.media == "voice" else f"{self.media}:transferred"
        target_queue = self.other_queue(queue) if self.intent.transfer == "queue" else queue
        target = self.agent_for(target_queue, exclude=agent)
        if self.intent.transfer == "queue":
            self.tl.emit(name, fromAgentId=agent.id, toQueueId=target_queue.id)
        else:
            self.tl.emit(name, fromAgentId=agent.id, toAgentId=target.id)
        self.transfers += 1
        wrapped = self.tl.t + self.acw_ms("normal")
        code = self.code("normal", by_id=False)
        self.tl.emit_at(wrapped, "agent:wrapup", agentId=agent.id, wrapUpCode=code)
        self.tl.wait(1 * SECOND, 5 * SECOND)
        if self.intent.transfer == "queue":
            self.routing(target_queue)
            self.tl.wait(5 * SECOND, 90 * SECOND)
        self.join(target, target_queue)
        self.state("connected")
        return target, target_queue

    def end(self, agent: Agent, on_hold: int | None = None) -> None:
        """Disconnect (ending a hold still open), report the duration, and wrap up."""
        t0 = self.tl.steps[0].time_ms
        if self.rng.random() < 0.3:
            self.tl.emit("conversation:state:updated", duration=self.duration(self.tl.t - t0))
        self.tl.wait(10 * SECOND, 5 * MINUTE)
        ended = self.state("disconnected")
        if on_hold is not None:
            self.hold_ms += ended - on_hold
        if self.rng.random() < 0.8:
            self.tl.wait(0, 400)
            self.tl.emit("conversation:state:updated", duration=self.duration(self.tl.t - t0))
        if self.intent.wrapup != "none":
            self.tl.t += self.acw_ms(self.intent.wrapup)
            code = self.code(self.intent.wrapup, by_id=False)
            self.tl.emit("agent:wrapup", agentId=agent.id, wrapUpCode=code)

    def call(self) -> None:
        """Voice, video, task, or a media type the vocabulary does not know yet."""
        rng, tl, intent = self.rng, self.tl, self.intent
        queue = rng.choice(self.org.queues)
        agent = self.agent_for(queue)
        self.state("ringing")
        if intent.outbound:
            self.join(agent, None)
            tl.wait(1 * SECOND, 4 * SECOND)
            tl.emit("participant:added", participantId=new_uuid(rng), purpose="customer")
            tl.wait(3 * SECOND, 30 * SECOND)
        else:
            self.customer()
            tl.wait(3 * SECOND, 40 * SECOND)
            self.routing(queue)
            tl.wait(5 * SECOND, 3 * MINUTE)
            self.join(agent, queue)
        tl.wait(200, 3 * SECOND)
        self.state("connected")
        if self.media == "voice":
            customer = "" if intent.anonymous else rng.choice(self.org.customer_numbers)
            did = rng.choice(self.org.dids)
            caller, callee = (did, customer) if intent.outbound else (customer, did)
            tl.emit(
                "voice:call:connected",
                callerNumber=caller,
                calleeNumber=callee,
                direction="outbound" if intent.outbound else "inbound",
                holdDuration=0,
            )
        on_hold: int | None = None
        for n in range(intent.holds):
            tl.wait(20 * SECOND, 4 * MINUTE)
            start = self.state("onhold")
            if rng.random() < 0.15:  # the platform re-announces the hold: still one hold
                tl.wait(2 * SECOND, 20 * SECOND)
                self.state("onhold")
            if n == intent.holds - 1 and not intent.transfer and rng.random() < 0.1:
                on_hold = start  # the customer gives up and hangs up while on hold
                break
            tl.wait(10 * SECOND, 3 * MINUTE)
            self.hold_ms += self.state("connected") - start
        if intent.transfer:
            tl.wait(20 * SECOND, 3 * MINUTE)
            agent, queue = self.transfer(agent, queue)
        self.end(agent, on_hold=on_hold)

    def chat(self) -> None:
        rng, tl = self.rng, self.tl
        queue = rng.choice(self.org.queues)
        agent = self.agent_for(queue)
        self.state("ringing")
        self.customer()
        tl.wait(200, 2 * SECOND)
        self.message("inbound")
        self.routing(queue)
        tl.wait(5 * SECOND, 2 * MINUTE)
        self.join(agent, queue)
        self.state("connected")
        direction = "outbound"
        for _ in range(rng.randint(2, 14)):
            tl.wait(4 * SECOND, 70 * SECOND)
            self.message(direction)
            if rng.random() < 0.7:
                direction = "inbound" if direction == "outbound" else "outbound"
        if self.intent.transfer:
            tl.wait(10 * SECOND, 60 * SECOND)
            agent, queue = self.transfer(agent, queue)
            tl.wait(3 * SECOND, 30 * SECOND)
            self.message("outbound")
        self.end(agent)

    def message(self, direction: str) -> None:
        self.messages += 1
        self.tl.emit("chat:message", direction=direction, messageId=new_uuid(self.rng))

    def email(self) -> None:
        rng, tl, org = self.rng, self.tl, self.org
        queue = rng.choice(org.queues)
        agent = self.agent_for(queue)
        thread = new_uuid(rng)
        subject = rng.choice(org.subjects)
        customer_domain = rng.choice(org.customer_emails).rpartition("@")[2]

        def mail(direction: str, reply_to: str | None) -> str:
            self.messages += 1
            domain = org.mail_domain if direction == "outbound" else customer_domain
            message_id = f"<{new_uuid(rng)}@{domain}>"
            tl.emit(
                "email:message",
                direction=direction,
                messageId=message_id,
                threadId=thread,
                inReplyTo=reply_to,
                subject=subject if reply_to is None else f"Re: {subject}",
            )
            return message_id

        self.state("ringing")
        if self.intent.outbound:
            self.join(agent, None)
            self.state("connected")
            last = mail("outbound", None)
        else:
            tl.emit("participant:added", participantId=new_uuid(rng), purpose="customer")
            last = mail("inbound", None)
            self.routing(queue)
            tl.wait(1 * MINUTE, 20 * MINUTE)
            self.join(agent, queue)
            self.state("connected")
        direction = "inbound" if self.intent.outbound else "outbound"
        for _ in range(rng.randint(1, 4)):
            tl.wait(1 * MINUTE, 12 * MINUTE)
            last = mail(direction, last)
            direction = "inbound" if direction == "outbound" else "outbound"
        if self.intent.transfer:
            agent, queue = self.transfer(agent, queue)
            tl.wait(1 * MINUTE, 8 * MINUTE)
            mail("outbound", last)
        self.end(agent)


# ----------------------------------------------------------------------------- Genesys


@dataclass(slots=True)
class _Session:
    participant_id: str
    session_id: str
    agent: Agent
    held_ms: int = 0


@dataclass(slots=True)
class GenesysScript(_Script):
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


def script(family: str, rng: Random, org: Org, *, media: str, t0: int, intent: Intent) -> Script:
    """Run the script of `family` for one conversation starting at `t0`."""
    tl = Timeline(rng, t0)
    if family == "envelope":
        return EnvelopeScript(rng, org, media, intent, tl).run()
    return GenesysScript(rng, org, media, intent, tl).run()


# ----------------------------------------------------------------------------- never ending


def cut_short(rng: Random, script: Script, family: str) -> Script:
    """Make a conversation never end: stop it before its end, or leave an agent session open."""
    steps = script.steps
    if family == "envelope":
        end = next(i for i, s in enumerate(steps) if s.fields.get("status") == "disconnected")
        keep = steps[: rng.randint(min(2, end), end)]
        reason = "stopped-before-disconnect"
    else:
        user_ends = [s for s in steps if s.action == "user.end"]
        end = next(i for i, s in enumerate(steps) if s.action == "customer.end")
        if user_ends and rng.random() < 0.4:
            last = user_ends[-1]
            session = (last.fields["participantId"], last.fields["sessionId"])
            keep = [
                s
                for s in steps
                if s.action not in ("user.end", "acw", "wrapup")
                or (s.fields.get("participantId"), s.fields.get("sessionId")) != session
            ]
            reason = "user-session-open"
        else:
            keep = steps[: rng.randint(min(2, end), end)]
            reason = "stopped-before-customer-end"
    return Script(list(keep), Facts(ended=False, never_end_reason=reason), script.media)
