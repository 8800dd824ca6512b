"""The simulator's vocabulary and the transform's agree.

They are deliberately two implementations (the simulator's truth checks the transform's
derivation, docs/record-rules.md), so neither imports the other's lists; this test holds them
to the same words: micro-event names and kinds, payload formats, topic prefix, record fields.
"""

from __future__ import annotations

import typing

from schemas import wire
from schemas.record import RECORD_SCHEMA_VERSION, ConversationRecord
from simulator.generate import model, truth
from transform import derive, vocabulary


def test_envelope_names_are_the_same() -> None:
    assert truth.ENVELOPE_NAMES == vocabulary.ENVELOPE_NAMES


def test_genesys_kinds_are_the_same() -> None:
    assert truth.GENESYS_KINDS == vocabulary.GENESYS_KINDS


def test_payload_formats_and_topics_are_the_same() -> None:
    assert set(model.FORMATS) == set(typing.get_args(wire.PayloadFormat))
    assert model.TOPIC_PREFIX == wire.TOPIC_PREFIX
    assert wire.TOPIC_PREFIX.rstrip(".") == model.ENVELOPE_TYPE


def test_record_fields_and_schema_version_are_the_same() -> None:
    assert list(truth.RECORD_FIELDS) == list(ConversationRecord.model_fields)
    assert truth.SCHEMA_VERSION == RECORD_SCHEMA_VERSION


def test_what_the_truth_cannot_predict_covers_what_processing_decides() -> None:
    # The transform's processing fields stay out of its revision fingerprint; the truth cannot
    # predict them either (and, besides, not when a conversation was first seen).
    assert set(truth.PROCESSING_FIELDS) >= derive.PROCESSING_FIELDS
    assert set(truth.PROCESSING_FIELDS) <= set(truth.RECORD_FIELDS)
