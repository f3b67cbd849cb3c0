"""Every code the consolidator answers with: stable, with reasons in Bahasa Indonesia and English."""

from __future__ import annotations

from shared.problems import Problem, Severity

W = Severity.WARNING

RUN_DAY_IN_FUTURE = Problem(
    "RUN_DAY_IN_FUTURE",
    "Konsolidasi tidak dapat dijalankan untuk hari yang belum terjadi.",
    "A consolidation cannot run for a day that has not happened yet.",
)
RUN_DAY_TOO_OLD = Problem(
    "RUN_DAY_TOO_OLD",
    "Hari yang diminta lebih lama dari masa simpan data snapshot.",
    "The day asked for is older than the staged snapshots are kept.",
)
RUN_NOT_CENTRE = Problem(
    "RUN_NOT_CENTRE",
    "Hanya pusat yang boleh menjalankan konsolidasi.",
    "Only the centre may run the consolidation.",
)
RUN_FAILED = Problem(
    "RUN_FAILED",
    "Konsolidasi gagal dan akan dilanjutkan dari langkah terakhir yang selesai.",
    "The consolidation failed and will resume from its last finished step.",
)
SNAPSHOT_SHRUNK = Problem(
    "SNAPSHOT_SHRUNK",
    "Snapshot kehilangan terlalu banyak penghuni dibanding snapshot sebelumnya; ditahan sampai diterima pusat.",
    "The snapshot lost too many inmates since the previous one; held until the centre accepts it.",
    W,
)
CAPTURE_UNKNOWN = Problem(
    "CAPTURE_UNKNOWN",
    "Status untuk perekaman yang belum pernah diterima pusat; riwayatnya dimulai dari status ini.",
    "A status for a capture the centre never saw arrive; its history starts here.",
    W,
)
STATUS_OUT_OF_ORDER = Problem(
    "STATUS_OUT_OF_ORDER",
    "Perubahan status tiba lebih lambat dari perubahan sesudahnya; dicatat dalam urutan waktunya.",
    "A status change arrived after a later one; it is kept in time order.",
    W,
)
STATUS_GAP = Problem(
    "STATUS_GAP",
    "Perubahan status tidak berlanjut dari status terakhir yang diketahui; ada perubahan yang tidak diterima.",
    "A status change does not follow the last known status: a change in between was not received.",
    W,
)

CODES: tuple[Problem, ...] = (
    RUN_DAY_IN_FUTURE,
    RUN_DAY_TOO_OLD,
    RUN_NOT_CENTRE,
    RUN_FAILED,
    SNAPSHOT_SHRUNK,
    CAPTURE_UNKNOWN,
    STATUS_OUT_OF_ORDER,
    STATUS_GAP,
)

LINK_NOT_CENTRE = Problem(
    "LINK_NOT_CENTRE",
    "Hanya pusat yang boleh menautkan orang dengan NIK.",
    "Only the centre may link a person to a NIK.",
)
PERSON_UNKNOWN = Problem("PERSON_UNKNOWN", "ID pusat tidak dikenal.", "The central id is not known.")
PERSON_MERGED = Problem(
    "PERSON_MERGED",
    "Orang ini sudah digabung ke rekaman lain; tautkan rekaman tujuan.",
    "This person was merged into another record; link that record instead.",
)
PERSON_HAS_NIK = Problem(
    "PERSON_HAS_NIK",
    "Orang ini sudah memiliki NIK lain; tautan tidak diterapkan.",
    "This person already holds another NIK; the link was not applied.",
)

CODES += (LINK_NOT_CENTRE, PERSON_UNKNOWN, PERSON_MERGED, PERSON_HAS_NIK)
