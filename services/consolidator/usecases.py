"""The consolidator's use cases: load what a decision needs, let the domain decide, save it in one unit of work."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from shared import db
from shared.contracts import (
    WIB,
    ConsolidationRunRequested,
    EnrolmentVerdict,
    PacketStatusChanged,
    PersonLinkRequested,
    RunState,
    SdpRecordsChecked,
    SubmissionProcessed,
)
from shared.runtime import Clock

from . import messages
from .consolidation import Announce, ConsolidationStore, RunRow
from .domain import ektp, links, report, runs, sdp
from .domain.codes import RUN_FAILED
from .store import LinkFields, Stores, UnitOfWork

log = logging.getLogger("simpul.consolidator")

PARTS, CHECKED, CAPTURES, VERDICTS, LINKS = (
    "consolidator.submissions",
    "consolidator.sdp",
    "consolidator.ektp-status",
    "consolidator.ektp",
    "consolidator.links",
)


class Consolidator:
    """Every use case of the centre's side, with what they share."""

    def __init__(
        self, unit_of_work: UnitOfWork, runs_store: ConsolidationStore, policy: runs.RunPolicy, clock: Clock
    ) -> None:
        self.unit_of_work = unit_of_work
        self.runs = runs_store
        self.policy = policy
        self.clock = clock

    # --- SDP parts, staged until a run applies them ----------------------------------------------------------

    async def record_part_status(self, event: SubmissionProcessed) -> None:
        status = sdp.decide_part_status(event)
        async with self.unit_of_work() as tx:
            if await tx.claim(PARTS, event.message_id) and status is not None:
                await tx.save_part_status(status)

    async def stage_checked_part(self, checked: SdpRecordsChecked) -> None:
        staged = sdp.decide_staging(checked)
        async with self.unit_of_work() as tx:
            if await tx.claim(CHECKED, checked.message_id):
                await tx.stage_part(staged)

    # --- e-KTP captures ----------------------------------------------------------------------------------------

    async def record_capture_change(self, change: PacketStatusChanged) -> None:
        if change.packet_id is None:
            return  # an unreadable message: the registry answered it; there is no capture to follow
        await self._capture(
            CAPTURES, change.message_id, change.kabkota, change.packet_id,
            lambda state: ektp.decide_status_change(state, change),
        )  # fmt: skip

    async def record_verdict(self, verdict: EnrolmentVerdict) -> None:
        await self._capture(
            VERDICTS, verdict.message_id, verdict.kabkota, verdict.packet_id,
            lambda state: ektp.decide_verdict(state, verdict),
        )  # fmt: skip

    async def _capture(
        self,
        consumer: str,
        message_id: str,
        kabkota: str,
        packet_id: str,
        decide: Callable[[ektp.CaptureState | None], ektp.CaptureDecision | None],
    ) -> None:
        async with self.unit_of_work() as tx:
            if not await tx.claim(consumer, message_id):
                return
            decision = decide(await tx.load_capture(kabkota, packet_id))
            if decision is None:
                return
            person = await self._person_of(tx, decision)
            decision = replace(decision, state=replace(decision.state, person_id=person))
            await tx.save_capture(decision, message_id)
            if person is not None:
                await tx.person_changed(person, ["ektp"], message_id)

    @staticmethod
    async def _person_of(tx: Stores, decision: ektp.CaptureDecision) -> int | None:
        state = decision.state
        if state.person_id is not None or state.nik is None:
            return state.person_id
        return await tx.person_with_nik(state.nik, create=decision.needs_person)

    # --- the centre's confirmation of a person's NIK -------------------------------------------------------------

    async def link_person(self, command: PersonLinkRequested, *, publisher: str, centre: str) -> None:
        person_id = int(command.central_id[1:])
        async with self.unit_of_work() as tx:
            if not await tx.claim(LINKS, command.message_id):
                return
            target = await tx.load_link_target(person_id)
            holder = await tx.person_with_nik(command.nik, create=False)
            decision = links.decide_link(target, holder, command.nik, from_centre=publisher == centre)
            outcome = decision.problem.code if isinstance(decision, runs.Refusal) else decision.kind
            fields = LinkFields(command.nik, command.operator, command.reason, outcome)
            await tx.record_link(command.message_id, publisher, target.person_id if target else None, fields)
            if isinstance(decision, runs.Refusal):
                log.warning("person link refused", extra={"code": outcome, "user": publisher})
                return
            if decision.kind == "set_nik":
                await tx.set_nik(decision.person, command.nik)
                await tx.person_changed(decision.person, ["identity"], command.message_id)
            elif decision.kind == "merge" and decision.into is not None:
                await tx.merge_persons(
                    decision.person, decision.into, reason="probable_nik_confirmed", cause=command.message_id,
                    confirmed_by=command.operator,
                )  # fmt: skip
                await tx.person_changed(decision.person, ["merged"], command.message_id)
                await tx.person_changed(decision.into, ["episodes", "merged"], command.message_id)

    # --- consolidation runs ------------------------------------------------------------------------------------

    async def request_run(
        self, command: ConsolidationRunRequested, *, publisher: str, centre: str
    ) -> str | None:
        """Record the command; the run to execute, or None (refused, or consumed before)."""
        now = self.clock()
        decision = runs.decide_run_request(
            command, from_centre=publisher == centre, today=now.astimezone(WIB).date(), policy=self.policy
        )
        if isinstance(decision, runs.Refusal):
            event = messages.run_event(
                f"refused-{command.message_id}", command.day, RunState.FAILED, now=now,
                requested_by=command.requested_by, problem=decision.problem, detail=decision.detail,
            )  # fmt: skip
            fields = {"day": command.day, "requested_by": command.requested_by, "reason": command.reason}
            await self.runs.record_request(
                command.message_id, publisher, fields | {"refused": decision.problem.code}, [event]
            )
            log.warning(
                "consolidation command refused", extra={"code": decision.problem.code, "user": publisher}
            )
            return None
        fields = {"day": decision.day, "requested_by": decision.requested_by, "reason": decision.reason}
        await self.runs.record_request(
            command.message_id, publisher, fields | {"run_id": decision.run_id}, []
        )
        await self._open(decision, now)
        return decision.run_id

    async def scheduled(self) -> str | None:
        """The day's scheduled run, if it is due and has not run yet."""
        now = self.clock()
        day = now.astimezone(WIB).date()
        due = runs.decide_scheduled_run(now, self.policy, ran_today=await self.runs.ran(day, "schedule"))
        if due is None:
            return None
        await self._open(due, now)
        return due.run_id

    async def _open(self, request: runs.RunRequest, now: datetime) -> RunRow:
        started = messages.run_event(
            request.run_id, request.day, RunState.STARTED, now=now, trigger=request.trigger,
            requested_by=request.requested_by,
        )  # fmt: skip
        return await self.runs.open_run(request, [started])

    async def execute(self, run_id: str) -> bool:
        """Run (or resume) every step not yet committed; False if another process is executing that day."""
        async with self.runs.exclusive(run_id) as mine:
            if not mine:
                return False
            run = await self.runs.run(run_id)
            if run is None or run.state != "running":
                return True
            log.info(
                "consolidation run", extra={"run_id": run_id, "day": str(run.day), "from_step": run.step}
            )
            began = time.monotonic()
            try:
                for index in range(run.step, len(runs.STEPS)):
                    step_began = time.monotonic()
                    summary, extra = await self._after_report(run, runs.STEPS[index])
                    await self.runs.execute_step(run, index, self.policy, self._announcer(summary, extra))
                    log.info(
                        "consolidation step done",
                        extra={"run_id": run_id, "step": runs.STEPS[index],
                               "seconds": round(time.monotonic() - step_began, 3)},
                    )  # fmt: skip
            except Exception as exc:
                failed = messages.run_event(
                    run_id, run.day, RunState.FAILED, now=self.clock(), trigger=run.trigger,
                    requested_by=run.requested_by, problem=RUN_FAILED, detail=type(exc).__name__,
                    discriminator=str(self.clock().timestamp()),
                )  # fmt: skip
                await self.runs.fail(run_id, repr(exc), [failed])
                raise
            log.info(
                "consolidation run finished",
                extra={"run_id": run_id, "seconds": round(time.monotonic() - began, 3)},
            )
        # The day's writes in the planner's statistics now rather than when autovacuum gets to them: the next
        # run (and the feed written after this one) is planned from what the tables hold.
        await self.runs.refresh_statistics()
        return True

    async def _after_report(
        self, run: RunRow, step: str
    ) -> tuple[dict[str, object] | None, list[db.Outgoing]]:
        """For the last step: the national summary (for `finished`) and the monitor's per-UPT totals, read
        once the report step has committed."""
        if step != "finish":
            return None, []
        # three reads of what the report step committed, side by side (the run waits for the longest alone)
        lines, central, breakdowns = await asyncio.gather(
            self.runs.load_lines(run.run_id),
            self.runs.central_totals(run.run_id),
            self.runs.line_breakdowns(run.run_id),
        )
        summary: dict[str, object] = report.totals(lines).as_dict() if lines else {}
        now = self.clock()
        upserted = {line.upt_id: line.inmates for line in lines}
        totals = messages.central_totals(
            run.run_id, run.day, central, upserted, version=int(now.timestamp() * 1000), now=now
        )
        return summary, [*totals, *messages.run_lines(run.run_id, run.day, lines, breakdowns, now=now)]

    def _announcer(self, summary: dict[str, object] | None, extra: list[db.Outgoing]) -> Announce:
        """What a step sends as it commits: its progress (or `finished`, with the summary), and `extra`."""

        def announce(run: RunRow, step: str, done: int) -> list[db.Outgoing]:
            state = RunState.FINISHED if done == len(runs.STEPS) else RunState.PROGRESS
            event = messages.run_event(
                run.run_id, run.day, state, now=self.clock(), trigger=run.trigger, requested_by=run.requested_by,
                step=step, steps_done=done, summary=summary,
            )  # fmt: skip
            return [event, *extra]

        return announce
