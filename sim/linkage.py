"""A population record and inmates with ground truth, for demographic linkage (deterministic for a seed).

The population: N people with a well-formed NIK (regency, district, birth date with +40 on the day for women,
serial), sex, birth date, birth place, mother's name. Names follow Indonesian patterns: a Zipf-like spread of
given names (so common names repeat), Muhammad/Ahmad/Abdul or Siti/Nur/Sri before many names, mononyms,
three-part names, Balinese birth-order names, a few very common full names ("Muhammad Rizki", "Siti Aminah"),
old (pre-1972) spellings kept by some older people, and placeholder birth dates (1 January, 31 December).

The inmates, at the shares of `Options`:
- CORRECT_NIK: a population person with their own NIK, written with noise; expected codes: none, except a
  birth date or sex the noise changed;
- WRONG_NIK: a population person claiming another person's NIK, sometimes a namesake's (same name); expected
  codes against the holder;
- UNKNOWN_NIK: a population person with a well-formed NIK nobody holds;
- LINKABLE: a population person without a NIK, written with noise (see `Noise`): the linkage must find them;
- STRANGER: without a NIK and not in the population; half are hard negatives, with the name, sex and birth
  year of somebody in the population (sometimes the birth place or the mother's name too, not both).
The noise on names is what the linkage is meant to tolerate: old spelling (u->oe, j->dj, c->tj, y->j, ny->nj,
sy->sj, kh->ch) or the modern spelling of an old record, titles, Muhammad variants, a dropped name, an
initial, one typo, the token order, "bin"/"binti" and the father's name, aliases.
"""

from __future__ import annotations

import csv
import enum
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from itertools import accumulate

from services.dedup.domain.linkage import (
    NIK_BIRTH_DATE_DIFFERS,
    NIK_CODES,
    NIK_NAME_DIFFERS,
    NIK_NOT_IN_POPULATION,
    NIK_SEX_DIFFERS,
    Person,
)
from shared.nik import load_regions

from . import names
from .population import make_nik

EXTRA_MALE = (
    "Abdul", "Adi", "Aditya", "Agung", "Ahmad", "Akbar", "Alfian", "Ali", "Amir", "Anton", "Ari", "Arifin",
    "Aris", "Bagus", "Bayu", "Beni", "Cahyo", "Candra", "Darmawan", "Darto", "Dodi", "Edi", "Endang", "Erwin",
    "Fahmi", "Faisal", "Fauzi", "Gilang", "Guntur", "Hamdan", "Hasan", "Hendro", "Herman", "Husein", "Ikhsan",
    "Iqbal", "Jaka", "Jamal", "Junaidi", "Khairul", "Koko", "Kusnadi", "Lutfi", "Mahmud", "Mansur", "Maulana",
    "Mulyadi", "Mustofa", "Nanang", "Nasrul", "Nugraha", "Oki", "Paijo", "Parman", "Prasetyo", "Priyo",
    "Rahmad", "Ramli", "Rendra", "Ridwan", "Rizal", "Robert", "Roni", "Rosyid", "Rusdi", "Saiful", "Salim",
    "Sapto", "Sarwono", "Sholeh", "Sigit", "Sofyan", "Sudirman", "Sugiarto", "Suharto", "Sukarno", "Sulaiman",
    "Sumarno", "Sunarto", "Suparman", "Surya", "Susilo", "Sutrisno", "Syaiful", "Tarno", "Cipto", "Tono",
    "Topan", "Udin", "Umar", "Usman", "Wawan", "Widodo", "Yahya", "Yanto", "Yoga", "Yudi", "Yulianto", "Zaenal",
    "Zulkifli", "Joko", "Bonar", "Togar", "Marulak", "Daud", "Yakobus", "Markus", "Stefanus", "Heri",
)  # fmt: skip
EXTRA_FEMALE = (
    "Aisyah", "Aminah", "Anggi", "Anisa", "Ayu", "Bunga", "Citra", "Desi", "Diah", "Dina", "Elsa", "Endah",
    "Erna", "Evi", "Fatimah", "Fitriani", "Hana", "Hesti", "Ika", "Ina", "Irma", "Juwita", "Khadijah",
    "Kurniasih", "Lina", "Lia", "Lilis", "Maya", "Melati", "Mira", "Nabila", "Nia", "Novi", "Nuraini",
    "Nurhayati", "Oktaviani", "Puji", "Rahayu", "Rani", "Ratih", "Rika", "Rini", "Rosmawati", "Sinta", "Sumiati",
    "Suryani", "Susanti", "Tari", "Titin", "Umi", "Vina", "Wahyuningsih", "Widya", "Yati", "Yeni", "Yuni",
    "Zahra", "Zubaidah", "Cucu", "Euis", "Neneng", "Imas", "Sutinah", "Juminten", "Tumini", "Martha",
)  # fmt: skip
EXTRA_SECOND = (
    "Abdullah", "Ali", "Amin", "Andriani", "Anwar", "Aritonang", "Azhari", "Batubara", "Budiman", "Damanik",
    "Effendi", "Fadillah", "Fauzan", "Hasibuan", "Hermawan", "Husni", "Iskandar", "Jayadi", "Kurniawan",
    "Lesmana", "Mahendra", "Matondang", "Munthe", "Mustika", "Nainggolan", "Napitupulu", "Nurdin", "Panjaitan",
    "Pardede", "Pohan", "Prabowo", "Prasetya", "Purba", "Putra", "Rangkuti", "Riyadi", "Rusli",
    "Saragih", "Sari", "Silalahi", "Simatupang", "Sinaga", "Sitompul", "Subagyo", "Sudrajat", "Suhendra",
    "Sulistyo", "Sumarno", "Suryadi", "Sutanto", "Syahrial", "Tampubolon", "Tarigan", "Wibowo", "Wicaksono",
    "Yulianti", "Zulkarnain", "Rosyadi", "Maulida", "Haryanto", "Tanoto", "Kartika", "Oktavia", "Pangaribuan",
    "Sihombing", "Simbolon", "Sianturi", "Harianja", "Marpaung", "Lumbantobing", "Malik", "Basri", "Latif",
    "Mubarok", "Hamzah", "Ismail", "Yunus", "Daulay", "Ritonga",
)  # fmt: skip
EXTRA_MOTHERS = (
    "Sumiyati", "Ngadiyem", "Painem", "Sainah", "Rukmini", "Jumiati", "Warsini", "Sukarti", "Mariam",
    "Salmah", "Halimah", "Rosmiati", "Zaenab", "Asiah", "Masitah", "Nursiah", "Tiurma", "Rugun", "Maimunah",
)  # fmt: skip
BALI_ORDER_MALE = ("Wayan", "Made", "Nyoman", "Ketut", "Putu", "Gede", "Kadek", "Komang")
BALI_ORDER_FEMALE = ("Luh", "Made", "Nyoman", "Ketut", "Putu", "Kadek", "Komang", "Ayu")
BALI_GIVEN = (
    "Sudarsana", "Artawan", "Suardana", "Widiana", "Mahendra", "Astawa", "Sudiarta", "Darmayasa", "Wirawan",
    "Sukarta", "Suastika", "Merta", "Budiasa", "Adnyana", "Sutama", "Ariani", "Sriasih", "Yuliantari",
    "Suartini", "Widiastuti", "Mahayani", "Sumerti",
)  # fmt: skip
BALI_ORDER = frozenset(BALI_ORDER_MALE + BALI_ORDER_FEMALE)
COMMON_MALE = (
    "Muhammad Rizki", "Agus Salim", "Budi Santoso", "Eko Prasetyo", "Ahmad Fauzi", "Muhammad Ilham",
)  # fmt: skip
COMMON_FEMALE = (
    "Siti Aminah", "Sri Wahyuni", "Dewi Lestari", "Siti Nurhaliza", "Nur Hidayah", "Siti Fatimah",
)  # fmt: skip
NICKNAMES = (
    "Udin", "Ucok", "Gondrong", "Kribo", "Botak", "Item", "Cebol", "Jack", "Bejo", "Gendut", "Kumis",
    "Codet", "Tato", "Bule", "Acong", "Kacung", "Doyok", "Unyil", "Pesek", "Jabrik",
)  # fmt: skip
MUHAMMAD_VARIANTS = (
    "Muhamad", "Mohammad", "Mohamad", "Mohammed", "Muhammed", "Mochammad", "Mokhamad", "Moch.", "Moh.", "Muh.",
    "Mhd.", "M.",
)  # fmt: skip
PREFIX_TITLES_MALE = (
    "H.", "Drs.", "Ir.", "Dr.", "Raden", "R.", "Teuku", "Kyai", "Ustadz", "Bapak", "Haji", "K.H.",
)  # fmt: skip
PREFIX_TITLES_FEMALE = ("Hj.", "Dra.", "Ir.", "Rr.", "Cut", "Ibu", "Hajjah", "Dr.")
SUFFIX_TITLES = (", S.H.", ", S.E.", ", S.Pd.", ", S.Kom.", ", M.M.", ", M.Si.", ", A.Md.", " S.H.", ", S.T.")
NAME_PREFIXES = {"Muhammad", "Ahmad", "Abdul", "Siti", "Nur", "Sri", "I", "Ni"}


class Kind(enum.StrEnum):
    CORRECT_NIK = "correct_nik"
    WRONG_NIK = "wrong_nik"
    UNKNOWN_NIK = "unknown_nik"
    LINKABLE = "linkable"
    STRANGER = "stranger"


@dataclass(frozen=True)
class Noise:
    """How often each variant appears when an inmate's data is written from the population record."""

    old_spelling: float = 0.12  # of modern names (0.3 for people born before 1972)
    title: float = 0.10
    muhammad_variant: float = 0.6  # of names beginning with Muhammad
    drop_name: float = 0.08
    initial: float = 0.05
    typo: float = 0.06
    swap_order: float = 0.04
    patronymic: float = 0.05  # "bin"/"binti" and the father's name
    alias: float = 0.10  # a nickname among the aliases
    alias_as_name: float = 0.02  # the nickname as the name, the real name among the aliases
    name_replaced: float = 0.01  # only a nickname, no alias: the name says nothing
    date_swap: float = 0.03  # of dates whose day could be a month
    year_off: float = 0.03
    date_wrong: float = 0.01
    sex_wrong: float = 0.003
    place_missing: float = 0.2
    place_variant: float = 0.2
    place_other: float = 0.04  # another place of the same province (where the family lived, say)
    mother_missing: float = 0.25
    mother_variant: float = 0.15
    mother_other: float = 0.02  # another name altogether (a stepmother, a register error)


@dataclass(frozen=True)
class Options:
    population: int = 200_000
    inmates: int = 5_000
    seed: int = 2025
    as_of: date = date(2025, 6, 30)
    # Shares of the inmates; the rest are LINKABLE.
    correct_nik: float = 0.45
    wrong_nik: float = 0.05
    unknown_nik: float = 0.03
    strangers: float = 0.12
    hard_negatives: float = 0.5  # of strangers
    namesake_wrong_nik: float = 0.3  # of wrong NIKs: a namesake's
    male_inmates: float = 0.9
    noise: Noise = field(default_factory=Noise)


@dataclass(frozen=True)
class Resident:
    """A population record with the truth behind it: the name in modern spelling."""

    person: Person
    modern_name: str
    modern_mother: str | None


@dataclass(frozen=True)
class SimInmate:
    """An inmate as the UPT sends them, with the truth: the NIK of the population record that is this person
    (None: not in the population) and, for an inmate with a NIK, the codes its check must give."""

    person: Person
    kind: Kind
    truth_nik: str | None
    expected_codes: tuple[str, ...] = ()
    hard_negative: bool = False


@dataclass(frozen=True)
class World:
    residents: list[Resident]
    inmates: list[SimInmate]
    population: list[Person]  # the residents' records, in the same order


def regency_places() -> dict[str, str]:
    """Regency code -> its name as a birth place ("Kota Administrasi Jakarta Selatan" -> "Jakarta Selatan")."""
    text = resources.files("shared.data").joinpath("wilayah_kabkota.csv").read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for row in csv.DictReader(text.splitlines()):
        place = row["nama"]
        for prefix in ("Kabupaten Administrasi ", "Kota Administrasi ", "Kabupaten ", "Kota "):
            place = place.removeprefix(prefix)
        out[row["kode"]] = place
    return out


def to_old_spelling(text: str) -> str:
    """The pre-1972 spelling of a modern name: u->oe, j->dj, c->tj, y->j (not word-final), ny->nj, sy->sj,
    kh->ch."""
    words = []
    for word in text.split(" "):
        low, out, i = word.lower(), "", 0
        while i < len(low):
            two = low[i : i + 2]
            if two in ("ny", "sy"):
                out, i = out + two[0] + "j", i + 2
                continue
            if two == "kh":
                out, i = out + "ch", i + 2
                continue
            ch = low[i]
            out += {"j": "dj", "c": "tj", "u": "oe"}.get(ch, "j" if ch == "y" and i < len(low) - 1 else ch)
            i += 1
        words.append(out.upper() if word.isupper() else out.capitalize() if word[:1].isupper() else out)
    return " ".join(words)


def _weights(n: int, exponent: float = 0.9) -> list[float]:
    return list(accumulate(1.0 / (rank + 3) ** exponent for rank in range(n)))


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word
    i = rng.randint(1, len(word) - 2)
    if rng.random() < 0.5:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    letters = "aiueobdgkmnrst"
    new = rng.choice([c for c in letters if c != word[i].lower()])
    return word[:i] + new + word[i + 1 :]


class _Generator:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.rng = random.Random(options.seed)
        places = regency_places()
        self.regencies = sorted(c for c in load_regions().regencies if c in places)
        self.bali = [c for c in self.regencies if c.startswith("51")]
        self.places = places
        self.used_niks: set[str] = set()
        # Which names are common is drawn once (from the seed): the pools are shuffled, then weighted by rank.
        self.male = self.shuffled(names.MALE + EXTRA_MALE)
        self.female = self.shuffled(names.FEMALE + EXTRA_FEMALE)
        self.second = self.shuffled(names.SECOND + EXTRA_SECOND)
        self.mothers = self.shuffled(names.MOTHERS + EXTRA_MOTHERS)
        self.w_male, self.w_female = _weights(len(self.male)), _weights(len(self.female))
        self.w_second, self.w_mothers = _weights(len(self.second), 0.6), _weights(len(self.mothers), 0.6)

    def shuffled(self, pool: Sequence[str]) -> list[str]:
        out = list(dict.fromkeys(pool))
        self.rng.shuffle(out)
        return out

    def pick(self, pool: Sequence[str], cum: list[float]) -> str:
        return self.rng.choices(pool, cum_weights=cum)[0]

    def given(self, female: bool) -> str:
        return self.pick(self.female, self.w_female) if female else self.pick(self.male, self.w_male)

    def name(self, female: bool, bali: bool) -> str:
        rng = self.rng
        if rng.random() < 0.02:
            return rng.choice(COMMON_FEMALE if female else COMMON_MALE)
        if bali:
            order = rng.choice(BALI_ORDER_FEMALE if female else BALI_ORDER_MALE)
            tokens = ["Ni" if female else "I", order, rng.choice(BALI_GIVEN)]
            if rng.random() < 0.4:
                tokens.append(rng.choice(BALI_GIVEN))
            return " ".join(dict.fromkeys(tokens))
        r = rng.random()
        tokens = []
        if not female and r < 0.15:
            tokens.append("Muhammad")
        elif not female and r < 0.20:
            tokens.append(rng.choice(("Ahmad", "Abdul")))
        elif female and r < 0.10:
            tokens.append("Siti")
        elif female and r < 0.16:
            tokens.append(rng.choice(("Nur", "Sri")))
        tokens.append(self.given(female))
        shape = rng.random()
        if shape >= 0.15:
            if shape >= 0.8:
                tokens.append(self.given(female))
            tokens.append(self.pick(self.second, self.w_second))
        return " ".join(dict.fromkeys(tokens))

    def mother(self) -> str:
        if self.rng.random() < 0.4:
            return self.pick(self.mothers, self.w_mothers)
        return self.name(True, False)

    def birth(self) -> date:
        rng, as_of = self.rng, self.o.as_of
        years = rng.triangular(17, 85, 30)
        born = as_of - timedelta(days=int(years * 365.25))
        if rng.random() < 0.02:  # a placeholder date from a register that did not know the day
            return date(born.year, 1, 1) if rng.random() < 0.6 else date(born.year, 12, 31)
        return born

    def resident(self, female: bool | None = None) -> Resident:
        rng = self.rng
        female = rng.random() < 0.5 if female is None else female
        bali = rng.random() < 0.04
        birth = self.birth()
        regency = rng.choice(self.bali if bali else self.regencies)
        modern = self.name(female, bali)
        mother = self.mother() if rng.random() < 0.95 else None
        place_regency = regency if rng.random() < 0.75 else rng.choice(self.regencies)
        place = self.places[place_regency]
        old = birth.year < 1972 and rng.random() < 0.3
        stored = to_old_spelling(modern) if old else modern
        stored_mother = to_old_spelling(mother) if old and mother else mother
        person = Person(
            nik=make_nik(rng, regency, birth, female, self.used_niks),
            full_name=stored.upper(),
            sex="P" if female else "L",
            birth_date=birth,
            birth_place=(to_old_spelling(place) if old else place).upper(),
            mother_name=stored_mother.upper() if stored_mother else None,
        )
        return Resident(person, modern, mother)

    # --- writing a person down at a UPT -------------------------------------------------------------
    def written_name(self, resident: Resident, female: bool) -> tuple[str, tuple[str, ...], bool]:
        """The name, the aliases, and whether the name was replaced by a nickname."""
        rng, n = self.rng, self.o.noise
        if rng.random() < n.name_replaced:
            return rng.choice(NICKNAMES), (), True
        stored = resident.person.full_name.title()
        if stored != resident.modern_name and rng.random() < 0.5:
            text = resident.modern_name  # an old record written in the modern spelling
        else:
            text = stored
            born_old = resident.person.birth_date.year < 1972
            if text == resident.modern_name and rng.random() < (0.3 if born_old else n.old_spelling):
                text = to_old_spelling(text)
        tokens = text.split(" ")
        core = [t for t in tokens if t not in NAME_PREFIXES and t not in BALI_ORDER]
        if len(core) >= 2 and rng.random() < n.drop_name:
            tokens.remove(core[-1] if rng.random() < 0.7 else core[-2])
        elif len(core) >= 2 and rng.random() < n.initial:
            tokens[tokens.index(core[-1])] = core[-1][0] + "."
        if rng.random() < n.typo:
            long = [i for i, t in enumerate(tokens) if len(t) >= 4]
            if long:
                i = rng.choice(long)
                tokens[i] = _typo(rng, tokens[i])
        if len(tokens) >= 2 and rng.random() < n.swap_order:
            tokens = [tokens[-1], *tokens[:-1]]
        if tokens[0] == "Muhammad" and rng.random() < n.muhammad_variant:
            tokens[0] = rng.choice(MUHAMMAD_VARIANTS)
        text = " ".join(tokens)
        if rng.random() < n.title:
            if rng.random() < 0.6:
                text = f"{rng.choice(PREFIX_TITLES_FEMALE if female else PREFIX_TITLES_MALE)} {text}"
            else:
                text += rng.choice(SUFFIX_TITLES)
        if rng.random() < n.patronymic:
            text += f" {'binti' if female else 'bin'} {self.given(False)}"
        aliases: tuple[str, ...] = ()
        if rng.random() < n.alias_as_name:
            return rng.choice(NICKNAMES), (text,), False
        if rng.random() < n.alias:
            aliases = (rng.choice(NICKNAMES),)
        return text, aliases, False

    def written_date(self, born: date) -> date:
        rng, n = self.rng, self.o.noise
        r = rng.random()
        if r < n.date_swap and born.day <= 12 and born.day != born.month:
            return date(born.year, born.day, born.month)
        r -= n.date_swap
        if r < n.year_off:
            try:
                return born.replace(year=born.year + rng.choice((-1, 1)))
            except ValueError:  # 29 February
                return born + timedelta(days=365)
        r -= n.year_off
        if r < n.date_wrong:
            return born + timedelta(days=rng.choice((-1, 1)) * rng.randint(30, 2_000))
        return born

    def written_place(self, place: str | None, province: str) -> str | None:
        rng, n = self.rng, self.o.noise
        if place is None or rng.random() < n.place_missing:
            return None
        text = place.title()
        if rng.random() < n.place_other:
            nearby = [c for c in self.regencies if c.startswith(province)] or self.regencies
            text = self.places[rng.choice(nearby)]
        if rng.random() < n.place_variant:
            r = rng.random()
            if r < 0.4:
                text = f"{rng.choice(('Kab.', 'Kabupaten', 'Kota', 'KAB.'))} {text}"
            elif r < 0.7:
                text = _typo(rng, text)
            elif r < 0.85:
                text = to_old_spelling(text)
            else:
                text = text.lower()
        return text

    def written_mother(self, resident: Resident) -> str | None:
        rng, n = self.rng, self.o.noise
        stored = resident.person.mother_name
        if stored is None or rng.random() < n.mother_missing:
            return None
        text = stored.title()
        if rng.random() < n.mother_other:
            return self.mother()
        if rng.random() < n.mother_variant:
            r = rng.random()
            modern = resident.modern_mother or text
            if r < 0.3:
                text = to_old_spelling(modern) if text == modern else modern
            elif r < 0.6:
                text = _typo(rng, text)
            elif r < 0.8 and " " in text:
                text = text.rsplit(" ", 1)[0]
            else:
                text = f"Hj. {text}"
        return text

    def written(self, resident: Resident, nik: str | None) -> tuple[Person, set[str]]:
        """The person as a UPT writes them, and the NIK check codes that what was written calls for."""
        p, n = resident.person, self.o.noise
        female = p.sex == "P"
        full_name, aliases, replaced = self.written_name(resident, female)
        born = self.written_date(p.birth_date)
        sex = p.sex
        if self.rng.random() < n.sex_wrong:
            sex = "L" if female else "P"
        person = Person(
            nik=nik,
            full_name=full_name,
            sex=sex,
            birth_date=born,
            birth_place=self.written_place(p.birth_place, (p.nik or "")[:2]),
            mother_name=self.written_mother(resident),
            aliases=aliases,
        )
        codes = {NIK_NAME_DIFFERS} if replaced else set()
        if born != p.birth_date:
            codes.add(NIK_BIRTH_DATE_DIFFERS)
        if sex != p.sex:
            codes.add(NIK_SEX_DIFFERS)
        return person, codes

    def stranger(self, residents: list[Resident], common: list[int]) -> tuple[Resident, bool]:
        """Somebody not in the population: a hard negative takes a namesake's name, sex and birth year."""
        rng = self.rng
        if rng.random() >= self.o.hard_negatives or not common:
            return self.resident(female=rng.random() >= self.o.male_inmates), False
        twin = residents[rng.choice(common)]
        t = twin.person
        while True:
            born = date(t.birth_date.year, 1, 1) + timedelta(days=rng.randint(0, 364))
            if born != t.birth_date and (born.day, born.month) != (t.birth_date.month, t.birth_date.day):
                break
        # A namesake may share the mother's name or the birth place, not both (that would be a sibling with
        # the same name, or the same person with a wrong date).
        r = rng.random()
        mother = twin.modern_mother if r < 0.2 else self.mother()
        place = t.birth_place if 0.2 <= r < 0.5 else self.places[rng.choice(self.regencies)].upper()
        person = Person(
            nik=None,
            full_name=t.full_name,
            sex=t.sex,
            birth_date=born,
            birth_place=place,
            mother_name=mother.upper() if mother else None,
        )
        return Resident(person, twin.modern_name, mother), True


def _nested(a: str, b: str) -> bool:
    x, y = set(a.lower().split()), set(b.lower().split())
    return x <= y or y <= x


def _claim_codes(inmate: Person, holder: Person, same_name: bool) -> tuple[str, ...]:
    codes = [] if same_name else [NIK_NAME_DIFFERS]
    if inmate.sex != holder.sex:
        codes.append(NIK_SEX_DIFFERS)
    if inmate.birth_date != holder.birth_date:
        codes.append(NIK_BIRTH_DATE_DIFFERS)
    return tuple(codes)


def _ordered(codes: set[str]) -> tuple[str, ...]:
    return tuple(c for c in NIK_CODES if c in codes)


def generate(options: Options) -> World:
    """The population and the inmates, deterministic for the seed."""
    gen = _Generator(options)
    rng = gen.rng
    residents = [gen.resident() for _ in range(options.population)]
    by_name: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(residents):
        by_name[r.modern_name].append(i)
    counts = Counter(r.modern_name for r in residents)
    common = [i for i, r in enumerate(residents) if counts[r.modern_name] >= 3]

    n = options.inmates
    sizes = {
        Kind.CORRECT_NIK: round(n * options.correct_nik),
        Kind.WRONG_NIK: round(n * options.wrong_nik),
        Kind.UNKNOWN_NIK: round(n * options.unknown_nik),
        Kind.STRANGER: round(n * options.strangers),
    }
    sizes[Kind.LINKABLE] = n - sum(sizes.values())
    in_population = n - sizes[Kind.STRANGER]
    men = [i for i, r in enumerate(residents) if r.person.sex == "L"]
    women = [i for i, r in enumerate(residents) if r.person.sex == "P"]
    n_men = min(len(men), round(in_population * options.male_inmates))
    chosen = rng.sample(men, n_men) + rng.sample(women, in_population - n_men)
    rng.shuffle(chosen)

    kinds = [k for k, size in sizes.items() for _ in range(size)]
    rng.shuffle(kinds)
    inmates: list[SimInmate] = []
    people = iter(chosen)
    for kind in kinds:
        if kind is Kind.STRANGER:
            someone, hard = gen.stranger(residents, common)
            person, _ = gen.written(someone, None)
            inmates.append(SimInmate(person, kind, None, hard_negative=hard))
            continue
        resident = residents[next(people)]
        truth = resident.person.nik
        if kind is Kind.LINKABLE:
            person, _ = gen.written(resident, None)
            inmates.append(SimInmate(person, kind, truth))
        elif kind is Kind.CORRECT_NIK:
            person, codes = gen.written(resident, truth)
            inmates.append(SimInmate(person, kind, truth, _ordered(codes)))
        elif kind is Kind.UNKNOWN_NIK:
            p = resident.person
            nik = make_nik(rng, rng.choice(gen.regencies), p.birth_date, p.sex == "P", gen.used_niks)
            person, _ = gen.written(resident, nik)
            inmates.append(SimInmate(person, kind, truth, (NIK_NOT_IN_POPULATION,)))
        else:
            namesakes = [i for i in by_name[resident.modern_name] if residents[i] is not resident]
            if namesakes and rng.random() < options.namesake_wrong_nik:
                holder, same = residents[rng.choice(namesakes)], True
            else:
                while True:
                    holder = residents[rng.randrange(len(residents))]
                    if not _nested(holder.modern_name, resident.modern_name):
                        break
                same = False
            person, written = gen.written(resident, holder.person.nik)
            claim = _claim_codes(person, holder.person, same and NIK_NAME_DIFFERS not in written)
            inmates.append(SimInmate(person, kind, truth, claim))
    return World(residents, inmates, [r.person for r in residents])
