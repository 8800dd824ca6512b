"""The simulated contact center: agents, queues, skills, wrap-up codes and number pools.

Faker supplies the human-looking values. One Faker per locale, each seeded with
`seed_instance`, so that nothing depends on Faker's shared module-level generator.
"""

from __future__ import annotations

from functools import lru_cache
from random import Random

from faker import Faker

from simulator.generate.model import Agent, Org, Queue, WrapupCode, new_uuid

# (locale, E.164 country code, national number pattern)
LOCALES = (
    ("en_US", "+1", "##########"),
    ("en_GB", "+44", "7#########"),
    ("de_DE", "+49", "15#########"),
    ("fr_FR", "+33", "6########"),
    ("es_ES", "+34", "6########"),
    ("ja_JP", "+81", "90########"),
)

QUEUE_NAMES = (
    "Billing",
    "Technical Support",
    "Sales",
    "Retention",
    "Claims",
    "Onboarding",
    "Premium Care",
    "Collections",
)
SKILL_NAMES = (
    "english",
    "german",
    "french",
    "spanish",
    "japanese",
    "billing",
    "broadband",
    "mobile",
    "escalations",
    "vip",
)
WRAPUP_NAMES = (
    "Resolved",
    "Callback requested",
    "Escalated",
    "Sale completed",
    "Information provided",
    "Complaint logged",
    "Wrong number",
    "No answer",
)


def _fakers(seed: int) -> list[tuple[Faker, str, str]]:
    fakers = []
    for locale, country, pattern in LOCALES:
        fake = Faker(locale)
        fake.seed_instance(f"{seed}:{locale}")
        fakers.append((fake, country, pattern))
    return fakers


@lru_cache(maxsize=8)
def build_org(seed: int, *, agents: int = 60, pool: int = 400) -> Org:
    """A reproducible organisation for `seed` (cached: it is a frozen value of the seed)."""
    rng = Random(f"{seed}:org")
    fakers = _fakers(seed)
    skills = {new_uuid(rng): name for name in SKILL_NAMES}
    skill_ids = sorted(skills)
    queues = tuple(
        Queue(new_uuid(rng), name, tuple(sorted(rng.sample(skill_ids, rng.randint(1, 3)))))
        for name in QUEUE_NAMES
    )
    people = []
    for _ in range(agents):
        fake = rng.choice(fakers)[0]
        name = fake.name()
        people.append(
            Agent(
                id=new_uuid(rng),
                name=name,
                email=fake.company_email(),
                skill_ids=tuple(sorted(rng.sample(skill_ids, rng.randint(1, 4)))),
            )
        )
    numbers: list[str] = []
    names: list[str] = []
    emails: list[str] = []
    subjects: list[str] = []
    for _ in range(pool):
        fake, country, pattern = rng.choice(fakers)
        numbers.append(country + fake.numerify(pattern))
        names.append(fake.name())
        emails.append(fake.free_email())
        subjects.append(fake.sentence(nb_words=rng.randint(3, 7)).rstrip("."))
    us = fakers[0][0]
    return Org(
        org_id=new_uuid(rng),
        agents=tuple(people),
        queues=queues,
        skills=skills,
        wrapup_codes=tuple(WrapupCode(new_uuid(rng), name) for name in WRAPUP_NAMES),
        flow_ids=tuple(new_uuid(rng) for _ in range(4)),
        dids=tuple("+1" + us.numerify("800#######") for _ in range(8)),
        customer_numbers=tuple(numbers),
        customer_names=tuple(names),
        customer_emails=tuple(emails),
        subjects=tuple(subjects),
        mail_domain=us.domain_name(),
    )
