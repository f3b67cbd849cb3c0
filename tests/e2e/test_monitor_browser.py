"""The monitor in a real headless Chromium: login, scoped table, counts that change live over SSE."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from deploy import credentials as creds
from shared.contracts import AdjudicationCaseChanged, CaseCandidate
from shared.nik import mask
from shared.settings import PROJECT_ROOT
from sim.publisher import UnitClient
from tests.builders import inmate, submission
from tests.e2e.conftest import Suite, consolidate, wait_staged
from tests.e2e.test_sdp_day import LIVE_UPT, OPTIONS
from tests.integration.helpers import eventually, publish_as

pytestmark = pytest.mark.e2e
CHROMIUM = "/usr/bin/chromium"
# Flags for a machine without a display or outside network (Chromium would otherwise try Google's hosts).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        await browser.close()


async def login(browser: Browser, suite: Suite, unit: str) -> tuple[Page, list[str]]:
    cred = creds.find(suite.installation.credentials, "monitor", unit)
    page = await (await browser.new_context()).new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(suite.monitor_url + "/")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.fill("input[name=username]", cred.username)
    await page.fill("input[name=password]", cred.password)
    await page.click("button[type=submit]")
    await expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    return page, requests


async def test_a_wrong_password_stays_on_the_login_page(browser: Browser, suite: Suite) -> None:
    page = await (await browser.new_context()).new_page()
    await page.goto(suite.monitor_url + "/login")
    await page.fill("input[name=username]", "pusat")
    await page.fill("input[name=password]", "not-the-password")
    await page.click("button[type=submit]")
    await expect(page.locator("#failed")).to_be_visible()
    await shot(page, "login-failed")


async def test_a_kanwil_sees_its_own_upts_and_their_counts_change_live(
    browser: Browser, suite: Suite
) -> None:
    page, requests = await login(browser, suite, "kanwil-32")
    own = sorted(u.upt_id for u in suite.installation.units.upts if u.kanwil_id == "kanwil-32")
    await expect(page.locator("#units tbody tr")).to_have_count(len(own))
    assert (
        sorted(await page.locator("#units tbody tr").evaluate_all("rows => rows.map(r => r.dataset.unit)"))
        == own
    )
    await expect(page.locator("#live.online")).to_have_count(1)
    row = page.locator(f"tr[data-unit='{LIVE_UPT}']")
    before = int((await row.locator("td.accepted").inner_text()).replace(".", ""))
    await page.evaluate("window.__sameDocument = true")

    records = [inmate() for _ in range(7)] + [inmate(sex="X")]
    cred = creds.find(suite.installation.credentials, "upt", LIVE_UPT)
    async with UnitClient(suite.installation.url_for("upt", LIVE_UPT), cred.username, LIVE_UPT) as client:
        await client.publish_part(submission(records, upt_id=LIVE_UPT, as_of=OPTIONS.as_of, snapshot=90))

    await expect(row.locator("td.accepted")).to_have_text(str(7), timeout=20_000)
    await expect(row.locator("td.rejected")).to_have_text("1")
    await expect(row.locator("td.rate")).to_have_text("12,5%")  # 1 of 8 refused
    await expect(row.locator("td.state")).to_have_text("Lengkap")
    # worst first: no UPT that sent nothing is listed below one whose day is complete
    states = await page.locator("#units tbody tr td.state").all_inner_texts()
    assert "Belum kirim" not in states[states.index("Lengkap") :]
    await wait_staged(suite, LIVE_UPT, snapshot=90)
    await consolidate(suite, OPTIONS.as_of)  # the centre's run makes them central records
    await expect(row.locator("td.central")).to_have_text(str(7), timeout=20_000)
    assert before != 7
    assert await page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
    assert all(url.startswith(suite.monitor_url) for url in requests)  # nothing from any other host
    text = await page.locator("body").inner_text()
    assert not re.search(r"\d{16}", text)  # no NIK on screen


async def test_the_centre_sees_every_upt_and_the_dead_letter_count(browser: Browser, suite: Suite) -> None:
    page, _ = await login(browser, suite, "pusat")
    await expect(page.locator("#units tbody tr")).to_have_count(len(suite.installation.units.upts))
    await expect(page.locator("#dead-box")).to_be_visible()
    await expect(page.locator("#sum-dead")).to_have_text(re.compile(r"^\d+$"))


async def test_a_kanwil_does_not_see_the_dead_letter_count(browser: Browser, suite: Suite) -> None:
    page, _ = await login(browser, suite, "kanwil-11")
    await expect(page.locator("#dead-box")).to_be_hidden()
    rows = await page.locator("#units tbody tr").evaluate_all("rows => rows.map(r => r.dataset.unit)")
    assert rows
    assert all(
        u in {x.upt_id for x in suite.installation.units.upts if x.kanwil_id == "kanwil-11"} for u in rows
    )


async def test_a_dukcapil_office_watches_its_e_ktp_pipeline_change_live(
    browser: Browser, suite: Suite
) -> None:
    from sim.ektp import CaptureStations, PacketOptions
    from sim.publisher import packet_message

    page, requests = await login(browser, suite, "dukcapil-1101")
    await expect(page.locator("#view-ektp")).to_be_visible()
    await expect(page.locator("#tab-sdp")).to_be_hidden()
    row = page.locator("tr[data-unit='dukcapil-1101']")
    await expect(row).to_have_count(1)
    before = int((await row.locator("td.printing").inner_text()).replace(".", ""))
    await expect(page.locator("#pipeline")).to_be_visible()
    backlog = int((await page.locator("#print-backlog").inner_text()).replace(".", ""))
    await expect(page.locator("#sum-accepted")).to_be_hidden()  # the prisons' figures are not an office's
    office = next(d for d in suite.installation.units.dukcapil if d.unit_id == "dukcapil-1101")
    fresh = CaptureStations(
        (office,),
        PacketOptions(
            as_of=OPTIONS.as_of,
            total=3,
            seed=99,
            declared_exception_share=0,
            region_fault_share=0,
            template_fault_share=0,
        ),
    ).day()
    for p in fresh:
        p.body["packet_id"] += "-live"
    cred = creds.find(suite.installation.credentials, "dukcapil", "dukcapil-1101")
    async with UnitClient(
        suite.installation.url_for("dukcapil", "dukcapil-1101"), cred.username, "dukcapil-1101"
    ) as client:
        for p in fresh:
            body = packet_message(p.body)
            await client.publish_body(
                json.dumps(body).encode(), message_id=body["message_id"], routing_key="ektp.1101.packet"
            )
    # received, checked, searched by dedup (unique people), ready to print: live, without a reload
    await expect(row.locator("td.printing")).to_have_text(str(before + 3), timeout=30_000)
    assert all(url.startswith(suite.monitor_url) for url in requests)
    await expect(page.locator("#print-backlog")).to_have_text(str(backlog + 3))  # the pipeline follows live
    await shot(page, "ektp-dukcapil")
    # the monitor keeps each capture's NIK only as the registry's status events carry it: masked
    conn = await asyncpg.connect(suite.installation.database_url)
    try:
        kept = await conn.fetch(
            "SELECT packet_id, nik_masked FROM monitor.ektp_captures WHERE packet_id = ANY($1::text[])",
            [p.body["packet_id"] for p in fresh],
        )
    finally:
        await conn.close()
    assert {r["packet_id"]: r["nik_masked"] for r in kept} == {
        p.body["packet_id"]: mask(p.body["nik"]) for p in fresh
    }


SCREENSHOTS = PROJECT_ROOT / "screenshots"  # git-ignored: look at them after a run


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def test_login_then_logout_ends_the_session(browser: Browser, suite: Suite) -> None:
    page, _ = await login(browser, suite, "pusat")
    await expect(page.locator("#sdp-charts[data-loaded=true]")).to_have_count(1)
    drawn = await page.evaluate("['chart-hours', 'chart-kanwil'].map((id) => Boolean(Chart.getChart(id)))")
    assert drawn == [True, True]
    await shot(page, "overview-pusat")
    await page.click("form[action='/logout'] button")
    await expect(page).to_have_url(re.compile(r"/login$"))
    assert (await page.request.get(suite.monitor_url + "/api/units")).status == 401


async def test_a_kanwil_gets_403_for_another_kanwils_upt_api_and_csv(browser: Browser, suite: Suite) -> None:
    page, _ = await login(browser, suite, "kanwil-32")
    other = next(u.upt_id for u in suite.installation.units.upts if u.kanwil_id != "kanwil-32")
    own = sorted(u.upt_id for u in suite.installation.units.upts if u.kanwil_id == "kanwil-32")
    assert (await page.request.get(f"{suite.monitor_url}/api/units/{other}")).status == 403
    assert (await page.request.get(f"{suite.monitor_url}/units.csv?upt={other}")).status == 403
    assert (await page.request.get(f"{suite.monitor_url}/api/units/{own[0]}")).status == 200
    table = await (await page.request.get(f"{suite.monitor_url}/units.csv")).text()
    assert sorted(line.split(",")[0] for line in table.splitlines()[1:]) == own
    assert not re.search(r"\d{16}", table)
    await shot(page, "overview-kanwil")


async def test_a_upt_login_sees_only_its_own_upt(browser: Browser, suite: Suite) -> None:
    page, _ = await login(browser, suite, LIVE_UPT)
    await expect(page.locator("#units tbody tr")).to_have_count(1)
    await expect(page.locator(f"tr[data-unit='{LIVE_UPT}']")).to_have_count(1)
    await expect(page.locator("#dead-box")).to_be_hidden()
    await shot(page, "overview-upt")


async def test_a_upt_name_holding_markup_is_shown_as_text(browser: Browser, suite: Suite) -> None:
    hostile = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    conn = await asyncpg.connect(suite.installation.database_url)
    try:
        name = await conn.fetchval("SELECT name FROM monitor.units WHERE upt_id = $1", LIVE_UPT)
        await conn.execute("UPDATE monitor.units SET name = $2 WHERE upt_id = $1", LIVE_UPT, hostile)
        page, _ = await login(browser, suite, "pusat")
        cell = page.locator(f"tr[data-unit='{LIVE_UPT}'] td").nth(1)
        await expect(cell).to_have_text(hostile)
        assert await page.evaluate("window.__xss") is None
        assert (
            await page.locator(f"tr[data-unit='{LIVE_UPT}'] img, tr[data-unit='{LIVE_UPT}'] script").count()
            == 0
        )
    finally:
        await conn.execute("UPDATE monitor.units SET name = $2 WHERE upt_id = $1", LIVE_UPT, name)
        await conn.close()


async def test_a_name_coming_in_a_message_holding_markup_is_shown_as_text(
    browser: Browser, suite: Suite
) -> None:
    """A capture's name reaches the desk in dedup's message (it came from a Dukcapil office's packet)."""
    hostile = '<img src=x onerror="window.__xss = 3"><script>window.__xss = 4</script>'
    inst = suite.installation
    case = AdjudicationCaseChanged(
        message_id=str(uuid.uuid4()), produced_at=datetime.now(UTC), kabkota="3273", packet_id="markup-case",
        nik_masked="3273********0001", full_name=hostile, sex="F", state="opened",
        candidates=[CaseCandidate(person_id=1, nik_masked="3273********0002", llr=3.0, modalities=1,
                                  iris_hd=[None, None], face_cosine=0.7, finger_cosines=[None] * 10)],
    )  # fmt: skip
    await publish_as(inst, "dedup", case)
    page, _ = await login(browser, suite, "pusat")
    await page.click("#tab-cases")
    row = page.locator("#cases tr[data-case='3273/markup-case']")
    await expect(row).to_have_count(1, timeout=20_000)
    await row.click()
    await expect(page.locator("#case-person")).to_contain_text(hostile)
    assert await page.evaluate("window.__xss") is None
    assert await page.locator("#case img, #case script").count() == 0


async def test_a_page_that_lost_its_connection_resumes_without_losing_an_update(
    browser: Browser, suite: Suite
) -> None:
    page, _ = await login(browser, suite, "pusat")
    await expect(page.locator("#live.online")).to_have_count(1)
    await page.evaluate("window.__sameDocument = true")
    row = page.locator(f"tr[data-unit='{LIVE_UPT}']")
    suite.stop("monitor")  # every open page loses its connection
    await expect(page.locator("#live.offline")).to_have_count(1)
    records = [inmate() for _ in range(4)]
    cred = creds.find(suite.installation.credentials, "upt", LIVE_UPT)
    async with UnitClient(suite.installation.url_for("upt", LIVE_UPT), cred.username, LIVE_UPT) as client:
        await client.publish_part(submission(records, upt_id=LIVE_UPT, as_of=OPTIONS.as_of, snapshot=91))
    suite.start("monitor")  # consumes what arrived meanwhile; the page reconnects with its Last-Event-ID
    await expect(page.locator("#live.online")).to_have_count(1, timeout=20_000)
    await expect(row.locator("td.accepted")).to_have_text("4", timeout=20_000)
    await expect(row.locator("td.parts")).to_have_text("1/1")
    assert await page.evaluate("window.__sameDocument") is True  # resumed in place, not reloaded


async def test_the_centre_sees_the_e_ktp_pipeline_charts_and_a_stuck_capture(
    browser: Browser, suite: Suite
) -> None:
    conn = await asyncpg.connect(suite.installation.database_url)
    try:
        await conn.execute(
            "INSERT INTO monitor.ektp_captures (kabkota, packet_id, status, changed_at, sent_at, nik_masked) "
            "VALUES ('1101', 'stuck-e2e', 'SENT_FOR_ENROLLMENT', now() - interval '2 days', now() - interval '2 days', "
            "'1101********0042')"
        )
        page, requests = await login(browser, suite, "pusat")
        await page.click("#tab-ektp")
        await expect(page.locator("#pipeline[data-loaded=true]")).to_have_count(1)
        stuck = page.locator("#stuck tbody tr", has_text="stuck-e2e")
        await expect(stuck).to_have_count(1)
        await expect(stuck.locator("td").nth(2)).to_have_text("1101********0042")  # to find it by, masked
        await expect(stuck.locator("td").nth(4)).to_have_text("I")
        # Chart.js (from npm, served by the monitor) drew the three charts.
        drawn = await page.evaluate(
            "['chart-status', 'chart-i', 'chart-ii'].map((id) => Boolean(Chart.getChart(id)))"
        )
        assert drawn == [True, True, True]
        assert all(url.startswith(suite.monitor_url) for url in requests)
        assert not re.search(r"\d{16}", await page.locator("body").inner_text())
        await shot(page, "ektp-pipeline-pusat")
    finally:
        await conn.execute("DELETE FROM monitor.ektp_captures WHERE packet_id = 'stuck-e2e'")
        await conn.close()


async def test_a_run_and_its_report_appear_for_the_centre_and_a_kanwil_its_own_upts(
    browser: Browser, suite: Suite
) -> None:
    run_id = await consolidate(suite, OPTIONS.as_of)
    upts = suite.installation.units.upts
    for login_unit, expected in (
        ("pusat", sorted(u.upt_id for u in upts)),
        ("kanwil-32", sorted(u.upt_id for u in upts if u.kanwil_id == "kanwil-32")),
    ):
        page, requests = await login(browser, suite, login_unit)
        await page.click("#tab-runs")
        run = page.locator(f"#run-list .run[data-run='{run_id}']")
        await expect(run).to_have_count(1)
        await expect(run).to_have_class(re.compile(r"\bfinished\b"))
        await expect(page.locator("#view-runs[data-loaded=true]")).to_have_count(1)
        shown = await page.locator("#run-lines tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.runUnit)"
        )
        assert sorted(shown) == expected
        csv = await (await page.request.get(f"{suite.monitor_url}/runs/{run_id}.csv")).text()
        assert sorted(line.split(",")[0] for line in csv.splitlines()[1:]) == expected
        # The work list counted by reason and by the UPTs' kab/kota adds up to the run's without-e-KTP figure.
        report = await (await page.request.get(f"{suite.monitor_url}/api/runs/{run_id}")).json()
        without = report["totals"]["without_ektp"]
        for table in ("without_ektp_by_reason", "without_ektp_by_upt_kabkota"):
            counts = await page.locator(f"#bd-{table} tbody td.num").all_inner_texts()
            assert sum(int(c.replace(".", "")) for c in counts) == without, table
        assert sum(r["count"] for r in report["breakdowns"]["without_ektp_by_nik_kabkota"]) == without
        await expect(page.locator("#view-runs[data-trend]")).to_have_count(1)
        assert await page.evaluate(
            "['chart-run-trend', 'chart-run-moves'].every((id) => Boolean(Chart.getChart(id)))"
        )
        rows = (
            await (await page.request.get(f"{suite.monitor_url}/runs/{run_id}/breakdowns.csv")).text()
        ).splitlines()
        assert rows[0] == "breakdown,key,label,count"
        assert all(url.startswith(suite.monitor_url) for url in requests)
        await shot(page, f"runs-{login_unit}")
        # the printable report opens beside the view: the same UPTs, laid out for A4 (its own print stylesheet)
        async with page.context.expect_page() as opened:
            await page.click("#run-print")
        printed = await opened.value
        await expect(printed.locator("h1")).to_have_text("Laporan Konsolidasi Harian SDP")
        listed = await printed.locator("section.lebar tbody tr td:first-child").all_inner_texts()
        assert sorted(re.sub(r".*\((upt-[^)]+)\)$", r"\1", t) for t in listed) == expected
        assert await printed.evaluate("getComputedStyle(document.querySelector('th')).backgroundColor") == (
            "rgb(232, 232, 232)"
        )  # the inline stylesheet applied: its hash is in the page's policy
        await shot(printed, f"runs-print-{login_unit}")
        await printed.emulate_media(media="print")
        await printed.pdf(path=str(SCREENSHOTS / f"runs-print-{login_unit}.pdf"), format="A4")
        await printed.close()


async def test_the_centre_sees_services_queues_and_a_dead_letter_with_its_reason(
    browser: Browser, suite: Suite
) -> None:
    # A dead letter as the monitor records one (written here, not sent: the suite's other tests count on a day
    # without any; the path from the broker is tested in test_hostile_input and the unit tests).
    conn = await asyncpg.connect(suite.installation.database_url)
    try:
        await conn.execute(
            "INSERT INTO monitor.dead_letters (message_id, reason, detail, service, queue, routing_key, sender) "
            "VALUES ('e2e-dead', 'MESSAGE_NOT_JSON', 'line 1 column 1', 'registry', 'registry.sdp', $1, $2)",
            f"sdp.{LIVE_UPT}.submission",
            LIVE_UPT,
        )
        page, _ = await login(browser, suite, "pusat")
        await page.click("#tab-ops")
        await expect(page.locator("#view-ops[data-loaded=true]")).to_have_count(1)
        await expect(page.locator("#services tr[data-service='registry'] td").nth(1)).to_have_text("ya")
        sdp = page.locator("#queues tr[data-queue='registry.sdp'] td")
        await expect(sdp.nth(4)).not_to_have_text("0", timeout=20_000)  # the registry consumes it
        # read from the broker's management API (the test servers have it): messages in delivery are counted
        await expect(sdp.nth(3)).to_have_text(re.compile(r"^\d[\d.]*$"))
        letter = page.locator("#dead-letters tbody tr", has_text=f"sdp.{LIVE_UPT}.submission").first
        await expect(letter).to_contain_text("MESSAGE_NOT_JSON")
        # Each service's own figures, scraped from its /metrics, and its readiness: every one answers, ready.
        for service in ("registry", "dedup", "consolidator"):
            await expect(page.locator(f"#metrics tr[data-service='{service}'] td")).to_have_count(11)
            await expect(page.locator(f"#metrics tr[data-service='{service}'] td").nth(1)).to_have_text(
                "siap"
            )
        ops = await (await page.request.get(f"{suite.monitor_url}/api/operations")).json()
        assert {m["service"]: (m["up"], m["ready"]) for m in ops["metrics"]} == {
            "registry": (True, True),
            "dedup": (True, True),
            "consolidator": (True, True),
        }
        assert ops["queue_source"] == "management"
        assert all(isinstance(q["unacked"], int) for q in ops["queues"] if q["state"] != "missing")
        await shot(page, "operations-pusat")
        kanwil, _ = await login(browser, suite, "kanwil-32")
        await expect(kanwil.locator("#tab-ops")).to_be_hidden()
        assert (await kanwil.request.get(f"{suite.monitor_url}/api/operations")).status == 403
    finally:
        await conn.execute("DELETE FROM monitor.dead_letters WHERE message_id = 'e2e-dead'")
        await conn.close()


async def test_a_service_without_consumers_raises_an_alert_the_centre_sees_live(
    browser: Browser, suite: Suite
) -> None:
    # The monitor restarted to sample queues and check alerts every second (the defaults are 15 and 30 s).
    suite.stop("monitor")
    suite.start("monitor", QUEUE_POLL_SECONDS="1", ALERT_SECONDS="1")
    page, _ = await login(browser, suite, "pusat")
    kanwil, _ = await login(browser, suite, "kanwil-32")
    suite.stop("dedup")
    try:
        alert = page.locator(".alert[data-kind='service_quiet']", has_text="dedup")
        await expect(alert).to_be_visible(timeout=20_000)
        await expect(alert).to_have_class(re.compile(r"\bcritical\b"))
        await shot(page, "alerts-pusat")
        assert await kanwil.locator(".alert[data-kind='service_quiet']").count() == 0  # the centre's alone
    finally:
        suite.start("dedup")
    await expect(page.locator(".alert[data-kind='service_quiet']")).to_have_count(
        0, timeout=20_000
    )  # closed live
    suite.stop("monitor")
    suite.start("monitor")


async def test_no_full_nik_in_any_page_api_answer_or_csv(browser: Browser, suite: Suite) -> None:
    nik = re.compile(r"(?<!\d)\d{16}(?!\d)")
    page, _ = await login(browser, suite, "pusat")
    run = (await (await page.request.get(f"{suite.monitor_url}/api/runs")).json())["runs"]
    cases = (await (await page.request.get(f"{suite.monitor_url}/api/adjudications")).json())["cases"]
    paths = ["/", "/api/units", "/units.csv", "/api/pipeline", "/api/runs", "/api/operations", "/api/alerts"]
    paths += ["/api/timeline", "/api/runs/trend", "/api/adjudications"]
    paths += [f"/api/runs/{r['run_id']}" for r in run] + [f"/runs/{r['run_id']}.csv" for r in run]
    paths += [f"/runs/{r['run_id']}/breakdowns.csv" for r in run]
    paths += [f"/api/adjudications/{c['kabkota']}/{c['packet_id']}" for c in cases]
    paths += [f"/api/units/{u.upt_id}" for u in suite.installation.units.upts]
    paths += [f"/units/{u.upt_id}" for u in suite.installation.units.upts[:5]]
    paths += [f"/api/units/{u.upt_id}/detail" for u in suite.installation.units.upts]
    for path in paths:
        answer = await page.request.get(suite.monitor_url + path)
        assert answer.status == 200, path
        assert not nik.search(await answer.text()), path
    for view in ("sdp", "ektp", "runs", "ops", "cases"):
        await page.click(f"#tab-{view}")
        assert not nik.search(await page.locator("body").inner_text()), view
    # every other login: whatever it may read (the rest answers 403) holds no NIK either
    others = ("kanwil-32", LIVE_UPT, suite.installation.units.dukcapil[0].unit_id)
    for unit in others:
        page, _ = await login(browser, suite, unit)
        for path in paths:
            answer = await page.request.get(suite.monitor_url + path)
            assert answer.status in (200, 403, 404), (unit, path)
            assert not nik.search(await answer.text()), (unit, path)
        assert not nik.search(await page.locator("body").inner_text()), unit
    # what the live streams carry is the live log's payloads, each frame one of them
    conn = await asyncpg.connect(suite.installation.database_url)
    try:
        payloads = await conn.fetch("SELECT payload::text AS p FROM monitor.live_events")
    finally:
        await conn.close()
    assert payloads
    assert not [r["p"] for r in payloads if nik.search(r["p"])]


async def test_the_pages_switch_to_english_and_back(browser: Browser, suite: Suite) -> None:
    page, _ = await login(browser, suite, "kanwil-32")
    logout = page.locator("form[action='/logout'] button")
    await expect(logout).to_have_text("Keluar", use_inner_text=True)  # Bahasa Indonesia by default
    state = page.locator(f"#units tr[data-unit='{LIVE_UPT}'] td.state")
    indonesian = await state.inner_text()
    await page.click("#lang")
    await expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    await expect(logout).to_have_text("Log out", use_inner_text=True)
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    english = await state.inner_text()
    assert english != indonesian
    assert english in {"Not sent", "Partial", "Complete"}
    await shot(page, "overview-kanwil-en")
    await page.click("#lang")
    await expect(logout).to_have_text("Keluar", use_inner_text=True)


async def test_the_adjudication_desk_sends_the_operators_decision_to_dedup(
    browser: Browser, suite: Suite
) -> None:
    # A grey-zone case as dedup announces it (the desk's side; planting a real grey-zone capture in the shared
    # suite is bench/integration work: tests/integration/test_dedup_ektp.py decides real ones).
    case = AdjudicationCaseChanged(
        message_id="e2e-case-1", produced_at=datetime.now(UTC), kabkota="3273", packet_id="e2e-grey-1",
        state="opened", nik_masked="3273********0001", full_name="Siti Aminah", sex="P",
        candidates=[CaseCandidate(person_id=7, nik_masked="3273********0007", llr=4.2, modalities=3,
                                  iris_hd=[None, None], face_cosine=0.71,
                                  finger_cosines=[None, 0.8125, None, None, None, None, 0.4375, None, None, None],
                                  full_name="Siti Aminah Lubis", sex="P", birth_date=date(1990, 4, 2),
                                  birth_place="Bandung")],
    )  # fmt: skip
    await publish_as(suite.installation, "dedup", case)
    page, requests = await login(browser, suite, "pusat")
    await page.click("#tab-cases")
    row = page.locator("#cases tr[data-case='3273/e2e-grey-1']")
    await expect(row).to_have_count(1, timeout=20_000)
    await row.click()
    await expect(page.locator("#case-title")).to_contain_text("3273********0001")
    candidate = page.locator("#candidates tbody tr")
    await expect(candidate).to_have_count(1)
    # beside the capture: the candidate as the population record knows it, and each finger compared with its score
    await expect(candidate.locator("td.person")).to_have_text("Siti Aminah Lubis, P, Bandung, 1990-04-02")
    await expect(candidate.locator("td.fingers")).to_have_text("2: 0.813 · 7: 0.438")
    await page.check("input[name=decision][value=duplicate]")
    await page.fill("textarea[name=reason]", "the same face; fingers not captured")
    await shot(page, "adjudication-desk")
    await page.click("#decide button[type=submit]")
    await expect(page.locator("#decide-result")).to_contain_text("Dikirim")
    conn = await asyncpg.connect(suite.installation.database_url)
    try:

        async def audited() -> asyncpg.Record | None:
            return await conn.fetchrow(
                "SELECT operator, decision, outcome FROM dedup.adjudication_audit WHERE packet_id = 'e2e-grey-1'"
            )

        found = await eventually(audited, what="the desk's decision at dedup")
        # dedup audits it in the operator's own name (it holds no such capture: the case was announced here only)
        assert (found["operator"], found["decision"], found["outcome"]) == (
            "pusat",
            "duplicate",
            "unknown_capture",
        )
    finally:
        await conn.execute("DELETE FROM monitor.cases WHERE packet_id = 'e2e-grey-1'")
        await conn.close()
    assert all(url.startswith(suite.monitor_url) for url in requests)


async def test_a_upts_own_page_follows_it_live_and_another_kanwils_upt_page_is_refused(
    browser: Browser, suite: Suite
) -> None:
    cred = creds.find(suite.installation.credentials, "upt", LIVE_UPT)

    async def send(snapshot: int, records: int) -> None:
        async with UnitClient(suite.installation.url_for("upt", LIVE_UPT), cred.username, LIVE_UPT) as client:
            part = submission([inmate() for _ in range(records)], upt_id=LIVE_UPT, as_of=OPTIONS.as_of,
                              snapshot=snapshot)  # fmt: skip
            await client.publish_part(part)

    await send(92, 3)
    await wait_staged(suite, LIVE_UPT, snapshot=92)
    page, requests = await login(browser, suite, "kanwil-32")
    await page.locator(f"tr[data-unit='{LIVE_UPT}'] td a").click()  # the UPT's name leads to its page
    await expect(page).to_have_url(re.compile(rf"/units/{LIVE_UPT}\?day="))
    await expect(page.locator("body[data-loaded=true]")).to_have_count(1)
    name = next(u.name for u in suite.installation.units.upts if u.upt_id == LIVE_UPT)
    await expect(page.locator("#unit-name")).to_have_text(name)
    await expect(page.locator("#live.online")).to_have_count(1)
    assert await page.evaluate("Boolean(Chart.getChart('chart-days'))")
    await expect(page.locator("#parts tbody tr:not(.superseded) td").first).to_have_text("92")

    await send(93, 4)  # while the page is open: shown live, snapshot 93 superseding 92
    newest = page.locator("#parts tbody tr:not(.superseded)")
    await expect(newest.locator("td").first).to_have_text("93", timeout=20_000)
    await expect(newest).to_have_count(1)
    await expect(page.locator("#u-accepted")).to_have_text("4")
    await expect(page.locator("#parts tbody tr.superseded", has_text="92")).to_have_count(1)
    await wait_staged(suite, LIVE_UPT, snapshot=93)
    await consolidate(suite, OPTIONS.as_of)  # the run's line for this UPT reaches its page live
    run = page.locator("#unit-runs tbody tr", has_text=OPTIONS.as_of.isoformat()).first
    await expect(run.locator("td").nth(3)).to_have_text("4", timeout=20_000)  # its inmates
    await expect(run.locator("a")).to_have_attribute("href", re.compile(r"^/runs/.+/print$"))
    assert all(url.startswith(suite.monitor_url) for url in requests)
    assert not re.search(r"(?<!\d)\d{16}(?!\d)", await page.locator("body").inner_text())
    await shot(page, "unit-kanwil")

    other = next(u.upt_id for u in suite.installation.units.upts if u.kanwil_id != "kanwil-32")
    refused = await page.goto(f"{suite.monitor_url}/units/{other}")
    assert refused is not None
    assert refused.status == 403
    await expect(page.locator("#forbidden")).to_be_visible()
    await shot(page, "unit-forbidden")

    page, _ = await login(browser, suite, LIVE_UPT)  # a UPT opens its own page alone
    await page.locator(f"tr[data-unit='{LIVE_UPT}'] td a").click()
    await expect(page.locator("#unit-name")).to_have_text(name)
    neighbour = next(u.upt_id for u in suite.installation.units.upts if u.kanwil_id == "kanwil-32" and
                     u.upt_id != LIVE_UPT)  # fmt: skip
    assert (await page.request.get(f"{suite.monitor_url}/units/{neighbour}")).status == 403
    assert (await page.request.get(f"{suite.monitor_url}/api/units/{neighbour}/detail")).status == 403
