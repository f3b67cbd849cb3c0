"""Every code the registry answers with: stable, with reasons in Bahasa Indonesia and English."""

from __future__ import annotations

from shared import nik, problems
from shared.problems import Problem, Severity

W = Severity.WARNING


def _p(code: str, reason_id: str, reason_en: str, severity: Severity = Severity.ERROR) -> Problem:
    return Problem(code, reason_id, reason_en, severity)


# --- a submission part as a whole --------------------------------------------------------------------------
PART_OUT_OF_RANGE = _p(
    "PART_OUT_OF_RANGE",
    "Nomor bagian melebihi jumlah bagian.",
    "The part number is beyond the number of parts.",
)
PART_EMPTY = _p(
    "PART_EMPTY",
    "Bagian kiriman tidak berisi data, padahal snapshot terdiri dari beberapa bagian.",
    "The part holds no records although the snapshot has several parts.",
)
PARTS_MISMATCH = _p(
    "PARTS_MISMATCH",
    "Jumlah bagian berbeda dengan bagian lain dari snapshot yang sama.",
    "The number of parts differs from other parts of the same snapshot.",
)
SNAPSHOT_SUPERSEDED = _p(
    "SNAPSHOT_SUPERSEDED",
    "Snapshot yang lebih baru untuk tanggal yang sama sudah lengkap; bagian ini diabaikan.",
    "A later snapshot for the same date is already complete; this part is ignored.",
)
AS_OF_IN_FUTURE = _p(
    "AS_OF_IN_FUTURE", "Tanggal snapshot belum terjadi.", "The snapshot date is in the future."
)
SINGLE_EMPTY_PART = _p(
    "SINGLE_EMPTY_PART",
    "Snapshot kosong: UPT melaporkan tidak ada penghuni.",
    "Empty snapshot: the UPT reports no inmates.",
    W,
)

SENDER_OVER_RATE = _p(
    "SENDER_OVER_RATE",
    "Terlalu banyak data dari pengirim ini dalam waktu singkat; bagian ini belum dibaca. Kirim ulang bagian yang "
    "sama (message_id yang sama) setelah jeda yang disebut.",
    "Too many records from this sender in a short time; this part was not read. Resend the same part (the same "
    "message_id) after the pause given.",
)

# --- one record ---------------------------------------------------------------------------------------------
RECORD_NOT_OBJECT = _p(
    "RECORD_NOT_OBJECT",
    "Data narapidana/tahanan harus berupa objek JSON.",
    "An inmate record must be a JSON object.",
)
FIELD_REQUIRED = _p("FIELD_REQUIRED", "Kolom wajib tidak diisi.", "A required field is missing.")
FIELD_TOO_LONG = _p(
    "FIELD_TOO_LONG", "Isi kolom melebihi panjang maksimum.", "A field is longer than allowed."
)
FIELD_UNKNOWN = _p("FIELD_UNKNOWN", "Kolom tidak dikenal dalam skema.", "A field is not part of the schema.")
FIELD_INVALID = _p(
    "FIELD_INVALID", "Isi kolom tidak sah (jenis atau nilai salah).", "A field has the wrong type or value."
)
FIELD_CONTROL_CHARACTERS = _p(
    "FIELD_CONTROL_CHARACTERS",
    "Kolom berisi karakter kontrol atau pengarah teks yang tidak boleh ada.",
    "A field contains control or text-direction characters.",
)
REGISTER_UNKNOWN = _p(
    "REGISTER_UNKNOWN",
    "Buku register tidak dikenal (A I-A V, B I, B IIa, B IIb, B III).",
    "Unknown register book (A I-A V, B I, B IIa, B IIb, B III).",
)
DUPLICATE_INMATE_ID = _p(
    "DUPLICATE_INMATE_ID",
    "inmate_id yang sama muncul lebih dari sekali dalam snapshot ini.",
    "The same inmate_id appears more than once in this snapshot.",
)
ENTRY_DATE_IN_FUTURE = _p(
    "ENTRY_DATE_IN_FUTURE",
    "Tanggal masuk sesudah tanggal snapshot.",
    "The entry date is after the snapshot date.",
)
BIRTH_DATE_IN_FUTURE = _p(
    "BIRTH_DATE_IN_FUTURE",
    "Tanggal lahir sesudah tanggal snapshot.",
    "The birth date is after the snapshot date.",
)
BIRTH_AFTER_ENTRY = _p(
    "BIRTH_AFTER_ENTRY", "Tanggal lahir sesudah tanggal masuk.", "The birth date is after the entry date."
)
TOO_YOUNG = _p(
    "TOO_YOUNG",
    "Umur saat masuk di bawah 12 tahun (batas pertanggungjawaban pidana anak).",
    "Younger than 12 at entry (the age of criminal responsibility).",
)
BIRTH_DATE_IMPLAUSIBLE = _p("BIRTH_DATE_IMPLAUSIBLE", "Umur lebih dari 120 tahun.", "Older than 120 years.")
DETENTION_EXPIRY_BEFORE_START = _p(
    "DETENTION_EXPIRY_BEFORE_START",
    "Akhir penahanan sebelum awal penahanan.",
    "The detention expiry is before the detention start.",
)
DETENTION_EXTENSION_INVALID = _p(
    "DETENTION_EXTENSION_INVALID",
    "Perpanjangan penahanan berakhir sebelum penahanan dimulai.",
    "A detention extension ends before the detention started.",
)
RELEASE_BEFORE_ENTRY = _p(
    "RELEASE_BEFORE_ENTRY",
    "Perkiraan tanggal bebas sebelum tanggal masuk.",
    "The expected release is before the entry date.",
)
REGISTER_NEEDS_SENTENCE = _p(
    "REGISTER_NEEDS_SENTENCE",
    "Register B (narapidana) tanpa lama pidana.",
    "A B register (convict) without a sentence length.",
)
REGISTER_SENTENCE_MISMATCH = _p(
    "REGISTER_SENTENCE_MISMATCH",
    "Lama pidana tidak sesuai register (B I > 1 tahun, B IIa 3 bulan-1 tahun, "
    "B IIb sampai 3 bulan, B III kurungan).",
    "The sentence length does not fit the register (B I > 1 year, B IIa 3 months-"
    "1 year, B IIb up to 3 months, B III kurungan).",
)
REGISTER_NEEDS_DETENTION = _p(
    "REGISTER_NEEDS_DETENTION",
    "Register A (tahanan) tanpa tanggal awal penahanan.",
    "An A register (detainee) without a detention start.",
)
REGISTER_TAHANAN_WITH_SENTENCE = _p(
    "REGISTER_TAHANAN_WITH_SENTENCE",
    "Tahanan penyidik atau penuntut umum (A I, A II) belum dapat memiliki pidana.",
    "A detainee of investigators or prosecutors (A I, A II) cannot have a sentence.",
)
NIK_ABSENT = _p(
    "NIK_ABSENT", "NIK tidak ada: perlu perekaman e-KTP.", "No NIK: e-KTP recording is needed.", W
)
DETENTION_EXPIRED = _p(
    "DETENTION_EXPIRED",
    "Masa penahanan sudah lewat tetapi masih ditahan: periksa overstaying.",
    "The detention period has passed but the detainee is still held: check for overstay.",
    W,
)
UPDATED_AT_AHEAD = _p(
    "UPDATED_AT_AHEAD",
    "Waktu perubahan data di masa depan: periksa jam komputer SDP.",
    "The record's last-change time is in the future: check the SDP computer's clock.",
    W,
)

SDP_PART_PROBLEMS = (
    PART_OUT_OF_RANGE,
    PART_EMPTY,
    PARTS_MISMATCH,
    SNAPSHOT_SUPERSEDED,
    AS_OF_IN_FUTURE,
    SINGLE_EMPTY_PART,
    SENDER_OVER_RATE,
)
SDP_RECORD_PROBLEMS = (
    RECORD_NOT_OBJECT,
    FIELD_REQUIRED,
    FIELD_TOO_LONG,
    FIELD_UNKNOWN,
    FIELD_INVALID,
    FIELD_CONTROL_CHARACTERS,
    REGISTER_UNKNOWN,
    DUPLICATE_INMATE_ID,
    ENTRY_DATE_IN_FUTURE,
    BIRTH_DATE_IN_FUTURE,
    BIRTH_AFTER_ENTRY,
    TOO_YOUNG,
    BIRTH_DATE_IMPLAUSIBLE,
    DETENTION_EXPIRY_BEFORE_START,
    DETENTION_EXTENSION_INVALID,
    RELEASE_BEFORE_ENTRY,
    REGISTER_NEEDS_SENTENCE,
    REGISTER_SENTENCE_MISMATCH,
    REGISTER_NEEDS_DETENTION,
    REGISTER_TAHANAN_WITH_SENTENCE,
    NIK_ABSENT,
    DETENTION_EXPIRED,
    UPDATED_AT_AHEAD,
)

# --- e-KTP captures -----------------------------------------------------------------------------------------
REGION_NOT_SENDER = _p(
    "REGION_NOT_SENDER",
    "Kode wilayah perekaman berbeda dengan kab/kota pengirim.",
    "The capture's region code is not the sending regency/city.",
)
ADDRESS_REGION_INCONSISTENT = _p(
    "ADDRESS_REGION_INCONSISTENT",
    "Kode wilayah alamat tidak konsisten (kecamatan/desa di luar kab/kota, atau kab/kota di luar provinsi).",
    "The address region codes do not nest (district or village outside the "
    "regency, or regency outside the province).",
)
ADDRESS_REGION_UNKNOWN = _p(
    "ADDRESS_REGION_UNKNOWN",
    "Kode kab/kota pada alamat tidak dikenal.",
    "The regency/city code of the address is unknown.",
)
TEMPLATE_MISSING = _p(
    "TEMPLATE_MISSING",
    "Template biometrik tidak ada dan tidak dinyatakan sebagai pengecualian.",
    "A biometric template is missing and not declared as an exception.",
)
TEMPLATE_UNREADABLE = _p(
    "TEMPLATE_UNREADABLE",
    "Template biometrik tidak terbaca (encoding, panjang, NaN, vektor nol, atau mask kosong).",
    "A biometric template is unreadable (encoding, length, NaN, zero vector or empty mask).",
)
TEMPLATE_LOW_QUALITY = _p(
    "TEMPLATE_LOW_QUALITY",
    "Kualitas template biometrik di bawah batas.",
    "A biometric template's quality is below the threshold.",
)
TEMPLATE_DUPLICATED = _p(
    "TEMPLATE_DUPLICATED",
    "Posisi jari atau mata yang sama dikirim lebih dari sekali.",
    "The same finger position or eye was sent more than once.",
)
EXCEPTION_CONTRADICTED = _p(
    "EXCEPTION_CONTRADICTED",
    "Jari atau mata dinyatakan tidak ada, tetapi templatenya dikirim.",
    "A finger or eye is declared missing, yet its template was sent.",
)
NO_USABLE_MODALITY = _p(
    "NO_USABLE_MODALITY", "Tidak ada modalitas biometrik yang dapat dipakai.", "No usable biometric modality."
)
PACKET_ID_CONFLICT = _p(
    "PACKET_ID_CONFLICT",
    "packet_id sudah dipakai untuk paket dengan isi berbeda.",
    "The packet_id is already used by a packet with different content.",
)
ILLEGAL_STATUS_MOVE = _p(
    "ILLEGAL_STATUS_MOVE",
    "Perubahan status ini tidak sah dari status saat ini.",
    "This status change is not allowed from the current status.",
)
UNKNOWN_PACKET = _p(
    "UNKNOWN_PACKET",
    "packet_id belum pernah dilaporkan atau diterima.",
    "The packet_id has never been reported or received.",
)
RETRIES_EXHAUSTED = _p(
    "RETRIES_EXHAUSTED",
    "Paket gagal diproses berulang kali karena gangguan di pusat.",
    "The packet failed repeatedly because of a fault at the centre.",
)
TRANSIENT_FAULT = _p(
    "TRANSIENT_FAULT",
    "Gangguan sementara di pusat; paket akan dicoba lagi.",
    "A temporary fault at the centre; the packet will be retried.",
    W,
)

EKTP_PROBLEMS = (
    REGION_NOT_SENDER,
    ADDRESS_REGION_INCONSISTENT,
    ADDRESS_REGION_UNKNOWN,
    TEMPLATE_MISSING,
    TEMPLATE_UNREADABLE,
    TEMPLATE_LOW_QUALITY,
    TEMPLATE_DUPLICATED,
    EXCEPTION_CONTRADICTED,
    NO_USABLE_MODALITY,
    PACKET_ID_CONFLICT,
    ILLEGAL_STATUS_MOVE,
    UNKNOWN_PACKET,
    RETRIES_EXHAUSTED,
    TRANSIENT_FAULT,
)

CATALOGUE: dict[str, Problem] = {
    p.code: p
    for p in (
        *problems.MESSAGE_PROBLEMS,
        *SDP_PART_PROBLEMS,
        *SDP_RECORD_PROBLEMS,
        *nik.NIK_PROBLEMS,
        *EKTP_PROBLEMS,
    )
}
MESSAGE_LEVEL = frozenset(p.code for p in (*problems.MESSAGE_PROBLEMS, *SDP_PART_PROBLEMS))


def catalogue_rows() -> list[tuple[str, str, str, str, str]]:
    """(code, scope, severity, reason_id, reason_en) for the documentation."""
    ektp = {p.code for p in EKTP_PROBLEMS}
    rows = []
    for p in CATALOGUE.values():
        scope = "message" if p.code in MESSAGE_LEVEL else ("e-KTP capture" if p.code in ektp else "record")
        rows.append((p.code, scope, p.severity.value, p.reason_id, p.reason_en))
    return rows
