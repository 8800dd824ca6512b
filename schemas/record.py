"""The conversation record (SPEC 4) and the dead-letter record (SPEC 7)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RECORD_SCHEMA_VERSION: Literal["1"] = "1"


class LifecycleEntry(BaseModel):
    """One distinct micro-event, in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order: list[str | int] = Field(description="[time, sequence] or [time, kind]")
    timestamp: str
    action: str


class ConversationRecord(BaseModel):
    """One finished conversation, as written to Blob Storage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal["1"] = RECORD_SCHEMA_VERSION
    conversation_id: str
    media_type: str | None
    direction: str | None
    status: Literal["final", "partial"]
    finalized_reason: Literal["ended", "idle-timeout"]
    revision: int = Field(ge=1)
    final_state: str | None
    started_at: str
    ended_at: str | None
    duration_seconds: float | None
    reported_duration_seconds: float | None
    hold_seconds: float
    hold_count: int
    transfers: int
    wrap_up_code: str | None
    wrap_up_seconds: float | None
    caller: str | None
    callee: str | None
    queue_ids: list[str]
    agent_ids: list[str]
    skill_ids: list[str]
    message_count: int
    lifecycle: list[LifecycleEntry]
    event_count: int
    duplicate_count: int
    late_event_count: int
    unknown_events: list[str]
    source_formats: list[Literal["envelope", "eventbridge", "notification"]]
    first_seen_at: str
    finalized_at: str


class DeadLetterSource(BaseModel):
    """Where a dead letter came from: an Event Hubs position, HTTP headers, or a file line."""

    model_config = ConfigDict(extra="allow", frozen=True)

    partition: str | None = None
    sequence_number: int | None = None
    offset: str | None = None
    headers: dict[str, str] | None = None
    line: int | None = None


class DeadLetter(BaseModel):
    """Input that could not be applied, kept whole so it can be inspected and replayed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    stage: Literal["ingest", "transform"]
    reason: str
    error: str
    received_at: str
    source: DeadLetterSource
    raw: str
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"
