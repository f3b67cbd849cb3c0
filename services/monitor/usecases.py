"""The monitor's use cases: each status event kept in one transaction with the live events it causes."""

from __future__ import annotations

from datetime import date, datetime

from shared.contracts import (
    WIB,
    AdjudicationCaseChanged,
    CentralInmatesUpdated,
    ConsolidationRunReported,
    NikCollisionsFound,
    PacketStatusChanged,
    RunLineReported,
    SubmissionProcessed,
)
from shared.runtime import Clock

from . import messages
from .domain import alerts, cases, runs, status, views
from .domain.live import LiveEvent
from .journal import Stores, UnitOfWork
from .store import DeadLetterSeen


class Monitor:
    def __init__(self, unit_of_work: UnitOfWork, clock: Clock, *, seen_every: float = 5.0) -> None:
        self.unit_of_work = unit_of_work
        self.clock = clock
        self.seen_every = seen_every
        self._seen: dict[str, datetime] = {}

    async def heard_from(self, service: str) -> None:
        """A service's message arrived: remembered for the operations view (written at most every few seconds per
        service and instance: every status event would otherwise cost a write)."""
        now = self.clock()
        last = self._seen.get(service)
        if last is not None and (now - last).total_seconds() < self.seen_every:
            return
        self._seen[service] = now
        async with self.unit_of_work() as tx:
            await tx.save_service_seen(service, now)

    async def record_submission(self, event: SubmissionProcessed) -> None:
        seen = status.decide_submission(event)
        async with self.unit_of_work() as tx:
            if not await tx.claim(event.message_id):
                return
            if isinstance(seen, status.RefusalSeen):
                await tx.count_refusal(seen)
            else:
                await tx.save_part(seen)
            await self._unit_changed(tx, event.upt_id, seen.day)

    async def record_central_totals(self, event: CentralInmatesUpdated) -> None:
        async with self.unit_of_work() as tx:
            if not await tx.claim(event.message_id):
                return
            await tx.save_central(event)
            today = views.today_wib(self.clock())
            await self._unit_changed(
                tx, event.upt_id, today
            )  # the total is the UPT's now, on every day shown
            if event.as_of != today:
                await self._unit_changed(tx, event.upt_id, event.as_of)

    async def record_capture_change(self, event: PacketStatusChanged) -> None:
        decision = status.decide_capture(event)
        async with self.unit_of_work() as tx:
            if not await tx.claim(event.message_id):
                return
            if decision.refused is not None:
                await tx.count_ektp_refusal(decision.refused)
            if decision.capture is not None:
                await tx.save_capture(decision.capture)
            await tx.take_live_turn()
            found = await tx.office_row(event.kabkota, decision.day)
            if found is not None:
                office, counts, refused = found
                row = views.office_row(office, counts, refused)
                tx.live(
                    LiveEvent("ektp", {"day": decision.day.isoformat(), "row": row}, unit_id=row["unit_id"])
                )

    async def record_collisions(self, event: NikCollisionsFound) -> None:
        async with self.unit_of_work() as tx:
            if not await tx.claim(event.message_id):
                return
            payload = {"upt_id": event.upt_id, "flagged_records": event.flagged_records}
            tx.live(
                LiveEvent(
                    "collisions", payload, unit_id=event.upt_id, kanwil_id=await tx.kanwil_of(event.upt_id)
                )
            )

    async def record_dead_letter(self, letter: DeadLetterSeen) -> None:
        async with self.unit_of_work() as tx:
            if not await tx.save_dead_letter(letter):
                return
            await tx.take_live_turn()
            today = await tx.dead_letters_since(start_of_day_wib(self.clock()))
            tx.live(LiveEvent("dead_letters", {"today": today, "reason": letter.reason}, centre_only=True))

    async def record_run(self, event: ConsolidationRunReported) -> None:
        seen = runs.decide_run(event)
        async with self.unit_of_work() as tx:
            if not await tx.claim(event.message_id):
                return
            kept = await tx.save_run(seen)
            if kept is not None:
                await tx.take_live_turn()
                tx.live(LiveEvent("run", runs.run_view(kept)))

    async def record_run_line(self, event: RunLineReported) -> None:
        async with self.unit_of_work() as tx:
            if await tx.claim(event.message_id):
                await tx.save_run_line(runs.decide_line(event))

    async def record_case(self, event: AdjudicationCaseChanged) -> None:
        async with self.unit_of_work() as tx:
            if not await tx.claim(event.message_id) or not await tx.save_case(event):
                return
            await tx.take_live_turn()
            payload = {"kabkota": event.kabkota, "packet_id": event.packet_id, "state": event.state}
            tx.live(LiveEvent("case", payload, centre_only=True))

    async def request_decision(
        self, operator: str, kabkota: str, packet_id: str, decision: str, reason: str
    ) -> cases.DecisionRequest | cases.Refusal:
        """A centre operator's decision on a case, sent to dedup as `command.adjudication.decide` in the operator's
        own name; dedup applies it (or says why not) and publishes the outcome, which closes the case here."""
        now = self.clock()
        async with self.unit_of_work() as tx:
            found = cases.decide_request(
                await tx.load_case(kabkota, packet_id), kabkota, packet_id, decision, reason, operator
            )
            if isinstance(found, cases.DecisionRequest):
                await tx.save_request(found, now)
                tx.send(messages.decision_command(found, now))
        return found

    async def watch(self, watched: alerts.Watched, policy: alerts.AlertPolicy) -> tuple[int, int]:
        """Open the alerts whose condition now holds, close those whose condition passed; (opened, closed)."""
        current = alerts.decide_alerts(watched, policy)
        async with self.unit_of_work() as tx:
            opening, closing = alerts.decide_changes(await tx.open_alert_keys(), current)
            opened = [a for a in opening if await tx.open_alert(a, watched.now)]
            closed = [a for key in closing if (a := await tx.close_alert(key, watched.now)) is not None]
            if opened or closed:
                await tx.take_live_turn()
            for alert, state in [*((a, "opened") for a in opened), *((a, "closed") for a in closed)]:
                tx.live(messages.alert_event(alert, state))
                tx.send(messages.alert_message(alert, state, watched.now))
        return len(opened), len(closed)

    @staticmethod
    async def _unit_changed(tx: Stores, upt_id: str, day: date) -> None:
        await tx.take_live_turn()
        row = await tx.unit_row(upt_id, day)
        if row is not None:
            payload = {"day": day.isoformat(), "row": views.unit_row(row)}
            tx.live(LiveEvent("unit", payload, unit_id=upt_id, kanwil_id=row["kanwil_id"]))


def start_of_day_wib(now: datetime) -> datetime:
    return datetime.combine(views.today_wib(now), datetime.min.time(), tzinfo=WIB)
