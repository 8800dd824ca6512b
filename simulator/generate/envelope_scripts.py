"""Conversations in the envelope vocabulary (SPEC 2.1): voice, video and task calls with holds
and transfers, chat, email threads."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.generate.model import Agent, Facts, Queue, new_uuid
from simulator.generate.steps import Script, ScriptBase, last_code
from simulator.timeutil import MINUTE, SECOND


@dataclass(slots=True)
class EnvelopeScript(ScriptBase):
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
