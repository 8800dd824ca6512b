"""Timer triggers: NCRONTAB schedules, runOnStartup, past-due catch-up and one runner per app.

As in the runtime, a timer runs on one instance only (a blob lease under `azure-webjobs-hosts/
locks/` held by the instance that runs it), and with `useMonitor` (default when occurrences are
at least a minute apart) the schedule status is kept in `azure-webjobs-hosts/timers/`, so a
restart after a missed occurrence fires once with `past_due` set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob.aio import BlobLeaseClient, BlobServiceClient

from devstack.host.app_settings import resolve_setting_expression
from devstack.host.connections import StorageConnection
from devstack.host.indexing import FunctionDefinition
from devstack.host.invocation import FunctionInvoker
from devstack.host.timer_schedule import TimerSchedule, parse_schedule, schedule_time_zone
from devstack.host.trigger_data import timer_input

logger = logging.getLogger(__name__)

HOSTS_CONTAINER = "azure-webjobs-hosts"
LEASE_SECONDS = 15
LOCK_RETRY_S = 5.0
MONITOR_MIN_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class TimerTriggerConfig:
    """A function's timerTrigger binding with its schedule parsed."""

    function_name: str
    schedule: TimerSchedule
    run_on_startup: bool
    use_monitor: bool


def timer_trigger_config(
    definition: FunctionDefinition, settings: Mapping[str, str]
) -> TimerTriggerConfig:
    """Resolve and parse a timer trigger binding."""
    trigger = definition.trigger
    text = resolve_setting_expression(
        str(trigger.get("schedule", "")), settings, where=f"function {definition.name}"
    )
    schedule = parse_schedule(text, schedule_time_zone(settings))
    use_monitor = trigger.get("useMonitor")
    if use_monitor is None:
        use_monitor = schedule.typical_interval(datetime.now(UTC)) >= MONITOR_MIN_INTERVAL
    return TimerTriggerConfig(
        function_name=definition.name,
        schedule=schedule,
        run_on_startup=bool(trigger.get("runOnStartup", False)),
        use_monitor=bool(use_monitor),
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


class TimerTriggerListener:
    """Fires one timer-triggered function while this instance holds its singleton lease."""

    def __init__(
        self,
        invoker: FunctionInvoker,
        config: TimerTriggerConfig,
        storage: StorageConnection,
        host_id: str,
    ) -> None:
        self._invoker = invoker
        self._config = config
        self._storage = storage
        self._host_id = host_id
        self._stopping = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._running_invocation: asyncio.Task[Any] | None = None
        self.invocations = 0
        self.holds_lock = False

    @property
    def function_name(self) -> str:
        return self._config.function_name

    @property
    def _lock_blob(self) -> str:
        return f"locks/{self._host_id}/Host.Functions.{self.function_name}.Listener"

    @property
    def _status_blob(self) -> str:
        return f"timers/{self._host_id}/Host.Functions.{self.function_name}/status"

    def status(self) -> dict[str, Any]:
        return {
            "function": self.function_name,
            "schedule": self._config.schedule.expression,
            "holds_lock": self.holds_lock,
            "invocations": self.invocations,
        }

    async def start(self) -> None:
        self._runner = asyncio.create_task(self._run(), name=f"timer:{self.function_name}")

    async def stop(self, grace_s: float) -> None:
        self._stopping.set()
        if self._running_invocation is not None and not self._running_invocation.done():
            await asyncio.wait({self._running_invocation}, timeout=grace_s)
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)

    async def _sleep_until(self, moment: datetime) -> bool:
        """Sleep until `moment`; False if stopped first."""
        delay = (moment - datetime.now(UTC)).total_seconds()
        if delay <= 0:
            return not self._stopping.is_set()
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        except TimeoutError:
            return True
        return False

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                async with self._storage.blob_service_client() as service:
                    await self._run_with_lock(service)
            except asyncio.CancelledError:
                raise
            except AzureError as e:
                logger.warning(
                    "timer storage unavailable function=%s error=%r; retrying in %ss",
                    self.function_name,
                    e,
                    LOCK_RETRY_S,
                )
            self.holds_lock = False
            if not self._stopping.is_set():
                await asyncio.sleep(LOCK_RETRY_S)

    async def _run_with_lock(self, service: BlobServiceClient) -> None:
        container = service.get_container_client(HOSTS_CONTAINER)
        with contextlib.suppress(ResourceExistsError):
            await container.create_container()
        blob = container.get_blob_client(self._lock_blob)
        with contextlib.suppress(ResourceExistsError):
            await blob.upload_blob(b"", overwrite=False)
        lease = BlobLeaseClient(blob)
        while not self._stopping.is_set():
            try:
                await lease.acquire(lease_duration=LEASE_SECONDS)
                break
            except ResourceExistsError:
                # Another instance runs this timer; check again later.
                if not await self._sleep_until(datetime.now(UTC) + timedelta(seconds=LOCK_RETRY_S)):
                    return
            except AzureError as e:
                if getattr(e, "status_code", None) != 409:
                    raise
                if not await self._sleep_until(datetime.now(UTC) + timedelta(seconds=LOCK_RETRY_S)):
                    return
        if self._stopping.is_set():
            return
        self.holds_lock = True
        logger.info("timer lock acquired function=%s host_id=%s", self.function_name, self._host_id)
        renewer = asyncio.create_task(self._renew(lease))
        scheduler = asyncio.create_task(self._schedule_loop(container))
        try:
            # Losing the lease (storage down, lease stolen) ends scheduling on this instance.
            await asyncio.wait({renewer, scheduler}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (renewer, scheduler):
                task.cancel()
            results = await asyncio.gather(renewer, scheduler, return_exceptions=True)
            self.holds_lock = False
            logger.info("timer lock released function=%s", self.function_name)
            with contextlib.suppress(AzureError):
                await lease.release()
        for result in results:
            if isinstance(result, AzureError):
                raise result

    async def _renew(self, lease: BlobLeaseClient) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            await lease.renew()

    async def _load_status(self, container: Any) -> dict[str, Any] | None:
        if not self._config.use_monitor:
            return None
        try:
            downloader = await container.get_blob_client(self._status_blob).download_blob()
            document = json.loads(await downloader.readall())
        except ResourceNotFoundError:
            return None
        return document if isinstance(document, dict) else None

    async def _save_status(self, container: Any, status: dict[str, Any]) -> None:
        if not self._config.use_monitor:
            return
        try:
            await container.get_blob_client(self._status_blob).upload_blob(
                json.dumps(status).encode("utf-8"), overwrite=True
            )
        except AzureError as e:
            logger.warning("timer status not saved function=%s error=%r", self.function_name, e)

    async def _schedule_loop(self, container: Any) -> None:
        schedule = self._config.schedule
        status = await self._load_status(container)
        now = datetime.now(UTC)
        recorded_next = status.get("Next") if status else None
        if recorded_next and datetime.fromisoformat(recorded_next.replace("Z", "+00:00")) < now:
            await self._fire(container, past_due=True, last=now, status=status)
        elif self._config.run_on_startup:
            await self._fire(container, past_due=False, last=now, status=status)
        while not self._stopping.is_set():
            due = schedule.next_after(datetime.now(UTC))
            if status is None or status.get("Next") != _iso(due):
                status = {"Last": status.get("Last") if status else None, "Next": _iso(due)}
                status["LastUpdated"] = _iso(datetime.now(UTC))
                await self._save_status(container, status)
            if not await self._sleep_until(due):
                return
            status = await self._fire(container, past_due=False, last=due, status=status)

    async def _fire(
        self,
        container: Any,
        *,
        past_due: bool,
        last: datetime,
        status: dict[str, Any] | None,
    ) -> dict[str, Any]:
        request = timer_input(self._invoker.definition.trigger_argument, past_due, status)
        self.invocations += 1
        self._running_invocation = asyncio.ensure_future(
            self._invoke_with_retries(request, past_due)
        )
        await asyncio.shield(self._running_invocation)
        next_due = self._config.schedule.next_after(datetime.now(UTC))
        updated = {
            "Last": _iso(last),
            "Next": _iso(next_due),
            "LastUpdated": _iso(datetime.now(UTC)),
        }
        await self._save_status(container, updated)
        return updated

    async def _invoke_with_retries(self, request: Any, past_due: bool) -> None:
        policy = self._invoker.definition.retry
        retries = 0
        previous: BaseException | None = None
        while True:
            outcome = await self._invoker.invoke(
                [request],
                retry_count=retries,
                previous_error=previous,
                log_context={"past_due": past_due},
            )
            if outcome.succeeded or policy is None or not policy.allows_retry(retries):
                return
            retries += 1
            delay = policy.delay_before_retry(retries)
            logger.warning(
                "retrying function=%s retry=%s delay_s=%.1f",
                self.function_name,
                retries,
                delay.total_seconds(),
            )
            if not await self._sleep_until(datetime.now(UTC) + delay):
                return
            previous = outcome.error
