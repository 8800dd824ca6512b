"""Conversation scripts: what happens in a call, chat, email, video or task, step by step.

A script is a list of `Step`s (action, time, fields) in time order, plus the `Facts` the script
meant (holds, transfers, wrap-up), which tests hold against the rule-derived truth. Envelope
scripts speak the envelope vocabulary (SPEC 2.1); Genesys scripts speak the notification kinds
(customer / flow / acd / user / acw / wrapup …).
"""

from __future__ import annotations

from random import Random

from simulator.generate.envelope_scripts import EnvelopeScript
from simulator.generate.genesys_scripts import GenesysScript
from simulator.generate.model import Facts, Org
from simulator.generate.steps import Intent, Script, Timeline


def script(family: str, rng: Random, org: Org, *, media: str, t0: int, intent: Intent) -> Script:
    """Run the script of `family` for one conversation starting at `t0`."""
    tl = Timeline(rng, t0)
    if family == "envelope":
        return EnvelopeScript(rng, org, media, intent, tl).run()
    return GenesysScript(rng, org, media, intent, tl).run()


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
