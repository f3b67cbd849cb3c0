"""Demographic linkage of inmates to the population record: tolerant Indonesian names, blocking, and
Fellegi–Sunter scores.

Two uses:
- an inmate WITH a NIK: `check_claimed_nik` compares the inmate with the person the population record holds
  under that NIK and lists the discrepancies (`NIK_NOT_IN_POPULATION`, `NIK_NAME_DIFFERS`, `NIK_SEX_DIFFERS`,
  `NIK_BIRTH_DATE_DIFFERS`); name variants are not discrepancies, any other birth date is;
- an inmate WITHOUT a NIK: `blocking_keys` gives the short keys under which candidates are looked up (the
  service keeps them in a text[] column with a GIN index and asks `WHERE blocks && $keys`), `score` compares
  the inmate with one candidate field by field and `rank` orders the candidates by match weight. Nothing is
  decided here beyond the thresholds: the caller reports the top candidate as a probable link when its weight
  is at least `LINK_THRESHOLD`, and shows the candidates at or above `REVIEW_FLOOR`.

Names. `canonical_tokens` turns a written name into the tokens compared and stored:
- accents, case and punctuation go; "S.H." and "M.Si." are read as titles, "Moch.Rizki" as two tokens;
- titles and honorifics are dropped: academic, religious and noble titles anywhere (Drs., Dra., Dr., Ir.,
  Prof., S.H., S.E., S.Pd., S.Kom., S.T., M.M., M.Si., A.Md., K.H., Kyai, Ustadz, Haji, Hajjah, Hj., Raden,
  Teuku, Tengku, ...), and at the start of the name the honorifics that are also initials or words elsewhere
  (H., R., Rr., T., Cut, Gusti, Ajeng, Bapak/Pak, Ibu/Bu, Sdr.);
- every Muhammad variant (Muhammad, Muhamad, Mohammad, Mohamad, Mohammed, Muhammed, Mochammad, Mokhamad,
  Moch., Moh., Muh., Mhd., Mohd., and M. at the start of the name) becomes the one token "muhamad";
  a leading "St." is Siti;
- "bin"/"binti" (not as the first word) and the father's name after it are dropped: the population record
  does not carry them, so keeping them would only add a token the other side lacks;
- spelling: old (Van Ophuijsen, before the 1972 EYD) and new spellings meet in one key: a word-final y
  becomes i (Rizky = Rizki), then oe->u, ch->kh, y->j, and only then dj->j and tj->c, ph->f, dh->d, th->t,
  q->k. So old "Jusuf" and new "Yusuf" are both "jusuf", old "Djoko" and new "Joko" both "joko", "Tjahjo" and
  "Cahyo" both "cahjo", nj/ny and sj/sy coincide, and the old tj and dj that stood for a modern ty or dy meet
  it too ("Aditja"/"Aditya" -> "adica", "Widjastuti"/"Widyastuti" -> "wijastuti"). Then doubled letters
  collapse (Muhammad, Abdullah/Abdulah). The key is for matching, not a spelling to show anyone;
- Balinese birth-order names (I, Ni, Luh, Gede, Putu, Wayan, Made, Kadek, Nyoman, Komang, Ketut, Nengah) and
  the Buton La/Wa/Ode are weak: kept in the key, but names are compared on their other tokens when both
  have some.
Name comparison is order-free: equal token multisets are "exact"; the same number of tokens each matching a
token of the other within one typo (optimal string alignment distance 1 on tokens of 5+ letters, an adjacent
transposition on 4 letters, Jaro-Winkler >= 0.94 on tokens of 7+ letters) is "high"; every token of the
shorter name matching one of the longer, an initial matching a first letter, with at least one full token in
common, is "subset" (a second name dropped or reduced to an initial, a mononym); some full token in common is
"low"; nothing in common is "disagree". An inmate's aliases are tried too and the best level counts.

Weights. Each field's comparison level has an m probability (of that level among true matches) and a u
probability (among random pairs of different people); its weight is log2(m/u) and the match weight is the
sum (a missing birth place or mother's name weighs 0). The probability of a match is the logistic of the
weight plus the prior log2-odds, which for one inmate and one record is log2(share of inmates who are in the
record / people in the record): `LinkageModel.with_prior` sets it.

Where the m and u values come from, honestly: they were estimated with `python -m bench.linkage --estimate`
on the simulator's truth (sim.linkage, population 200,000, seed 2025): m from the inmates known to be in the
population against their own record, u from 1,000,000 random pairs of an inmate and a population record;
then rounded to two significant figures. The simulator's noise rates
(old spellings, titles, dropped names, typos, swapped dates, missing fields) are assumptions about SDP data,
not measurements, and its name lists are far smaller than Indonesia's; on real data the m values should be
re-estimated (for example by EM on unlabelled pairs) and the u values from the population record itself
(name frequency in particular: an exact "Muhammad Rizki" says less than an exact rare name, and the u used
here is an average over all names).
"""

from __future__ import annotations

import enum
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache

from rapidfuzz.distance import OSA, JaroWinkler

NIK_NOT_IN_POPULATION = "NIK_NOT_IN_POPULATION"
NIK_NAME_DIFFERS = "NIK_NAME_DIFFERS"
NIK_SEX_DIFFERS = "NIK_SEX_DIFFERS"
NIK_BIRTH_DATE_DIFFERS = "NIK_BIRTH_DATE_DIFFERS"
NIK_CODES = (NIK_NOT_IN_POPULATION, NIK_NAME_DIFFERS, NIK_SEX_DIFFERS, NIK_BIRTH_DATE_DIFFERS)
# Why each code is given: (alasan, reason). Documented in docs/error-codes.md.
NIK_CODE_REASONS: dict[str, tuple[str, str]] = {
    NIK_NOT_IN_POPULATION: (
        "NIK tidak ditemukan dalam data kependudukan.",
        "The NIK is not in the population record.",
    ),
    NIK_NAME_DIFFERS: (
        "Nama berbeda dengan pemegang NIK dalam data kependudukan (ejaan lama, gelar dan variasi nama "
        "tidak dihitung).",
        "The name differs from the NIK holder's in the population record (old spellings, titles and name "
        "variants do not count).",
    ),
    NIK_SEX_DIFFERS: ("Jenis kelamin berbeda dengan pemegang NIK.", "The sex differs from the NIK holder's."),
    NIK_BIRTH_DATE_DIFFERS: (
        "Tanggal lahir berbeda dengan pemegang NIK.",
        "The birth date differs from the NIK holder's.",
    ),
}

# Match weights in bits (log2 of the Bayes factor), chosen with bench.linkage on the simulator's truth (see
# the module docstring): at LINK_THRESHOLD the top candidate is reported as a probable link; candidates at
# or above REVIEW_FLOOR are worth a person's look. At 200,000 people and 5,000 inmates (seed 2025) 20 bits
# gave a precision of 99.9 % and a recall of 97.3 % (22 bits: 99.9 % and 94.9 %; 18 bits: 99.8 % and 97.8 %);
# seeds 7 and 11 at 100,000 people gave 99.9-100 % and 96.7-97.6 % at 20 bits. REVIEW_FLOOR keeps the true
# record among the listed candidates for 99.4 % of the inmates in the population. With a population of N
# and a share s of inmates in it the prior is log2(s / N) (about -18 bits at 200,000, so 20 bits is a
# probability of about 0.8; -28 bits at 270 million): the same weight means less in a larger record, and a
# larger record puts more namesakes in each block, so these need re-choosing as the record grows (see
# `LinkageModel.with_prior`).
LINK_THRESHOLD = 20.0
REVIEW_FLOOR = 10.0

MUHAMMAD = "muhamad"
_MUHAMMAD_WRITTEN = re.compile(r"^m[ou]c?k?h?am+[ae]d$")
_MUHAMMAD_SHORT = frozenset({"moch", "mokh", "moh", "muh", "mhd", "mohd", "mochd", "muhd", "mhmd"})
# Dropped wherever they stand: academic, professional and religious titles.
_TITLES = frozenset(
    {
        "drs", "dra", "dr", "ir", "prof", "sh", "se", "spd", "skom", "st", "mm", "msi", "amd", "mh", "mpd",
        "mt", "mkes", "msc", "ssos", "sag", "sip", "ssi", "sked", "skep", "sfarm", "sth", "shi", "sei", "spdi",
        "ma", "mba", "phd", "kh", "kyai", "kiai", "ustadz", "ustad", "ustaz", "haji", "hajjah", "hajah", "hj",
        "raden", "tengku", "tgk", "teuku",
    }
)  # fmt: skip
# Dropped only at the start of a name, where they are honorifics (elsewhere they are initials or words).
_LEADING_HONORIFICS = frozenset(
    {"h", "r", "rr", "ajeng", "t", "cut", "gusti", "bapak", "pak", "ibu", "bu", "sdr", "sdri", "saudara",
     "saudari"}
)  # fmt: skip
_LEADING_MUHAMMAD = frozenset({"m", "md"})
_PATRONYMIC = frozenset({"bin", "binti", "bte", "binte"})


def _spell(token: str) -> str:
    """One lower-case ASCII word in the canonical spelling (see the module docstring)."""
    if len(token) > 1 and token.endswith("y"):
        token = token[:-1] + "i"
    for old, new in (
        ("oe", "u"),
        ("ch", "kh"),
        ("y", "j"),
        ("dj", "j"),
        ("tj", "c"),
        ("ph", "f"),
        ("dh", "d"),
        ("th", "t"),
        ("q", "k"),
    ):
        token = token.replace(old, new)
    return _DOUBLES.sub(r"\1", token)


_DOUBLES = re.compile(r"(.)\1+")
_WORD = re.compile(r"[a-z]+(?:\.[a-z]+)*\.?")
_WEAK = frozenset(
    _spell(w)
    for w in (
        "i", "ni", "luh", "gede", "putu", "wayan", "made", "kadek", "nyoman", "komang", "ketut", "nengah",
        "la", "wa", "ode",
    )
)  # fmt: skip
# Tokens too common to block on when a name has others (they still count in the comparison).
_COMMON = frozenset(_spell(w) for w in ("muhammad", "siti", "nur", "sri", "ahmad", "abdul"))


def _ascii_lower(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return plain.lower().replace("'", "").replace("`", "")


def _words(name: str) -> list[str]:
    """Lower-case words with the dots gone: "S.H." -> "sh", "Moch.Rizki" -> "moch", "rizki"."""
    out: list[str] = []
    for word in _WORD.findall(_ascii_lower(name)):
        plain = word.replace(".", "")
        if "." in word.rstrip(".") and plain not in _TITLES:
            out.extend(part for part in word.split(".") if part)
        else:
            out.append(plain)
    return out


@lru_cache(maxsize=1 << 18)
def canonical_tokens(name: str) -> tuple[str, ...]:
    """The name's tokens in canonical form and written order, titles dropped (see the module docstring)."""
    words = _words(name)
    kept: list[str] = []
    leading = True
    for i, word in enumerate(words):
        if word in _PATRONYMIC and kept:
            break
        last = i + 1 == len(words)
        if leading and word == "st" and not last:
            kept.append(_spell("siti"))
        elif word in _TITLES or (leading and word in _LEADING_HONORIFICS and not last):
            continue
        elif (
            word in _MUHAMMAD_SHORT
            or _MUHAMMAD_WRITTEN.match(word)
            or _MUHAMMAD_WRITTEN.match(spelled := _spell(word))
            or (leading and word in _LEADING_MUHAMMAD and not last)
        ):
            kept.append(MUHAMMAD)
        else:
            kept.append(spelled)
        leading = False
    if not kept:  # nothing but titles: keep what was written
        kept = [_spell(w) for w in words]
    return tuple(t for t in kept if t)


def name_key(name: str) -> str:
    """The canonical form of a name, for storage and blocking: "Drs. H. Moch. Djoko Soesilo, S.H." ->
    "muhamad joko susilo"."""
    return " ".join(canonical_tokens(name))


@dataclass(frozen=True)
class _NameForm:
    tokens: tuple[str, ...]
    significant: tuple[str, ...]  # without weak tokens; all tokens when every one is weak
    has_strong: bool
    sorted_significant: tuple[str, ...]
    joined: str


@lru_cache(maxsize=1 << 18)
def _form(name: str) -> _NameForm:
    tokens = canonical_tokens(name)
    strong = tuple(t for t in tokens if t not in _WEAK)
    significant = strong or tokens
    return _NameForm(tokens, significant, bool(strong), tuple(sorted(significant)), "".join(significant))


@dataclass(frozen=True)
class Person:
    """One person as a record describes them: an inmate as the UPT sent them, or a population record."""

    nik: str | None
    full_name: str
    sex: str  # "L" laki-laki, "P" perempuan
    birth_date: date
    birth_place: str | None
    mother_name: str | None
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.full_name, *self.aliases)


class NameLevel(enum.StrEnum):
    EXACT = "exact"  # the same canonical tokens, in any order
    HIGH = "high"  # the same number of tokens, each within one typo
    SUBSET = "subset"  # one name's tokens all in the other (a dropped second name, an initial, a mononym)
    LOW = "low"  # some full token in common
    DISAGREE = "disagree"
    MISSING = "missing"  # not written on one side (mother's name only)


class DateLevel(enum.StrEnum):
    EXACT = "exact"
    SWAPPED = "swapped"  # day and month exchanged
    NEAR_YEAR = "near_year"  # the same day and month, the year one off
    DISAGREE = "disagree"


class SexLevel(enum.StrEnum):
    AGREE = "agree"
    DISAGREE = "disagree"


class PlaceLevel(enum.StrEnum):
    AGREE = "agree"
    SIMILAR = "similar"  # within two typos, or one place inside the other (Jakarta / Jakarta Selatan)
    DISAGREE = "disagree"
    MISSING = "missing"


_NAME_ORDER = (NameLevel.EXACT, NameLevel.HIGH, NameLevel.SUBSET, NameLevel.LOW, NameLevel.DISAGREE)
_NAME_RANK = {level: i for i, level in enumerate(_NAME_ORDER)}


def _tokens_agree(a: str, b: str, lenient: bool = False) -> int:
    """2: the same full token within one typo; 1: an initial and a token it begins; 0: different.

    `lenient` (checking a claimed NIK, where the holder is one known person) allows one edit from 3 letters.
    """
    if a == b:
        return 2 if len(a) > 1 else 1
    if len(a) == 1 or len(b) == 1:
        return 1 if a[0] == b[0] else 0
    shorter = min(len(a), len(b))
    if lenient and shorter >= 3 and OSA.distance(a, b, score_cutoff=1) <= 1:
        return 2
    if shorter >= 5 and OSA.distance(a, b, score_cutoff=1) <= 1:
        return 2
    if shorter == 4 and len(a) == len(b) and sorted(a) == sorted(b) and OSA.distance(a, b) <= 1:
        return 2  # an adjacent transposition
    if shorter >= 7 and JaroWinkler.normalized_similarity(a, b) >= 0.94:
        return 2
    return 0


def _level(a: _NameForm, b: _NameForm, lenient: bool = False) -> NameLevel:
    if a.has_strong and b.has_strong:
        x, y = a.significant, b.significant
        if a.sorted_significant == b.sorted_significant or a.joined == b.joined:
            return NameLevel.EXACT
    else:  # one side is weak tokens only (e.g. "Made"): compare everything
        x, y = a.tokens, b.tokens
        if sorted(x) == sorted(y):
            return NameLevel.EXACT
    pairs = sorted(
        ((s, i, j) for i, p in enumerate(x) for j, q in enumerate(y) if (s := _tokens_agree(p, q, lenient))),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    used_x: set[int] = set()
    used_y: set[int] = set()
    full = initials = 0
    for s, i, j in pairs:
        if i in used_x or j in used_y:
            continue
        used_x.add(i)
        used_y.add(j)
        if s == 2:
            full += 1
        else:
            initials += 1
    if full == len(x) == len(y):
        return NameLevel.HIGH
    if full and full + initials == min(len(x), len(y)):
        return NameLevel.SUBSET
    return NameLevel.LOW if full else NameLevel.DISAGREE


def compare_names(a: str, b: str, *, lenient: bool = False) -> NameLevel:
    """How two written names agree (see the module docstring)."""
    return _level(_form(a), _form(b), lenient)


def _best_name_level(a: Iterable[str], b: Iterable[str]) -> NameLevel:
    b = tuple(b)
    return min((compare_names(x, y, lenient=True) for x in a for y in b), key=_NAME_RANK.__getitem__)


def compare_dates(a: date, b: date) -> DateLevel:
    if a == b:
        return DateLevel.EXACT
    if a.year == b.year and a.day == b.month and a.month == b.day:
        return DateLevel.SWAPPED
    if a.day == b.day and a.month == b.month and abs(a.year - b.year) == 1:
        return DateLevel.NEAR_YEAR
    return DateLevel.DISAGREE


_PLACE_WORDS = frozenset(
    {"kabupaten", "kab", "kota", "kodya", "kotamadya", "kot", "adm", "administrasi", "kec", "kecamatan",
     "desa", "kel", "kelurahan", "provinsi", "prov"}
)  # fmt: skip


@lru_cache(maxsize=1 << 14)
def place_tokens(place: str) -> tuple[str, ...]:
    """A birth place's canonical tokens: administrative words dropped, spelling as for names."""
    return tuple(
        _spell(w) for w in re.findall(r"[a-z]+", _ascii_lower(place)) if w not in _PLACE_WORDS and _spell(w)
    )


def compare_places(a: str | None, b: str | None) -> PlaceLevel:
    x, y = place_tokens(a or ""), place_tokens(b or "")
    if not x or not y:
        return PlaceLevel.MISSING
    if x == y:
        return PlaceLevel.AGREE
    p, q = "".join(x), "".join(y)
    if (
        set(x) <= set(y)
        or set(y) <= set(x)
        or (min(len(p), len(q)) >= 5 and OSA.distance(p, q, score_cutoff=2) <= 2)
        or JaroWinkler.normalized_similarity(p, q) >= 0.93
    ):
        return PlaceLevel.SIMILAR
    return PlaceLevel.DISAGREE


@dataclass(frozen=True)
class Comparison:
    """The comparison level of every field (the inmate's aliases and the candidate's are tried for the
    name; the best level counts)."""

    name: NameLevel
    birth_date: DateLevel
    sex: SexLevel
    birth_place: PlaceLevel
    mother_name: NameLevel


MU = Mapping[str, tuple[float, float]]  # level -> (m, u)

# (m, u) per level: see the module docstring for where they come from.
NAME_MU: MU = {
    NameLevel.EXACT: (0.84, 0.00027),
    NameLevel.HIGH: (0.042, 0.00003),
    NameLevel.SUBSET: (0.10, 0.0036),
    NameLevel.LOW: (0.0075, 0.028),
    NameLevel.DISAGREE: (0.011, 0.968),
}
DATE_MU: MU = {
    DateLevel.EXACT: (0.93, 0.00006),
    DateLevel.SWAPPED: (0.011, 0.00002),
    DateLevel.NEAR_YEAR: (0.047, 0.00011),
    DateLevel.DISAGREE: (0.012, 0.9998),
}
SEX_MU: MU = {SexLevel.AGREE: (0.996, 0.499), SexLevel.DISAGREE: (0.004, 0.501)}
PLACE_MU: MU = {
    PlaceLevel.AGREE: (0.90, 0.0021),
    PlaceLevel.SIMILAR: (0.057, 0.0015),
    PlaceLevel.DISAGREE: (0.040, 0.9964),
}
MOTHER_MU: MU = {
    NameLevel.EXACT: (0.93, 0.006),
    NameLevel.HIGH: (0.029, 0.00084),
    NameLevel.SUBSET: (0.013, 0.0048),
    NameLevel.LOW: (0.0048, 0.021),
    NameLevel.DISAGREE: (0.021, 0.967),
}


def _weights(mu: MU) -> dict[str, float]:
    return {level: math.log2(m / u) for level, (m, u) in mu.items()}


@dataclass(frozen=True)
class LinkageModel:
    """Fellegi–Sunter m and u probabilities per field and level, and the prior log2-odds of a match for one
    inmate and one record."""

    name: MU = field(default_factory=lambda: NAME_MU)
    birth_date: MU = field(default_factory=lambda: DATE_MU)
    sex: MU = field(default_factory=lambda: SEX_MU)
    birth_place: MU = field(default_factory=lambda: PLACE_MU)
    mother_name: MU = field(default_factory=lambda: MOTHER_MU)
    prior_log2_odds: float = math.log2(0.8 / 200_000)
    _w: dict[str, dict[str, float]] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        w = {
            "name": _weights(self.name),
            "birth_date": _weights(self.birth_date),
            "sex": _weights(self.sex),
            "birth_place": _weights(self.birth_place),
            "mother_name": _weights(self.mother_name),
        }
        object.__setattr__(self, "_w", w)

    def with_prior(self, population: int, share_in_population: float) -> LinkageModel:
        """The same model for a record of `population` people holding `share_in_population` of the inmates
        compared with it."""
        return replace(self, prior_log2_odds=math.log2(share_in_population / population))

    def partial_weights(self, c: Comparison) -> dict[str, float]:
        """Each field's weight in bits; a missing field weighs 0."""
        w = self._w
        return {
            "name": w["name"][c.name],
            "birth_date": w["birth_date"][c.birth_date],
            "sex": w["sex"][c.sex],
            "birth_place": 0.0 if c.birth_place is PlaceLevel.MISSING else w["birth_place"][c.birth_place],
            "mother_name": 0.0 if c.mother_name is NameLevel.MISSING else w["mother_name"][c.mother_name],
        }

    def weight(self, c: Comparison) -> float:
        return sum(self.partial_weights(c).values())

    def probability(self, weight: float) -> float:
        """P(match | comparison) for one inmate and one record, from the weight and the prior."""
        odds = weight + self.prior_log2_odds
        if odds > 60:
            return 1.0
        return 1.0 / (1.0 + math.exp2(-odds))

    def best_name(self, a: Iterable[str], b: Iterable[str]) -> NameLevel:
        """The level, among every pair of names, that weighs most."""
        b = tuple(b)
        return max((compare_names(x, y) for x in a for y in b), key=self._w["name"].__getitem__)


DEFAULT_MODEL = LinkageModel()


@dataclass(frozen=True)
class Scored:
    """A candidate with its comparison, match weight (bits) and match probability."""

    candidate: Person
    comparison: Comparison
    weight: float
    probability: float


def compare(inmate: Person, candidate: Person, model: LinkageModel = DEFAULT_MODEL) -> Comparison:
    if inmate.mother_name and candidate.mother_name:
        mother = compare_names(inmate.mother_name, candidate.mother_name)
    else:
        mother = NameLevel.MISSING
    return Comparison(
        name=model.best_name(inmate.names, candidate.names),
        birth_date=compare_dates(inmate.birth_date, candidate.birth_date),
        sex=SexLevel.AGREE if inmate.sex == candidate.sex else SexLevel.DISAGREE,
        birth_place=compare_places(inmate.birth_place, candidate.birth_place),
        mother_name=mother,
    )


def score(inmate: Person, candidate: Person, model: LinkageModel = DEFAULT_MODEL) -> Scored:
    c = compare(inmate, candidate, model)
    weight = model.weight(c)
    return Scored(candidate, c, weight, model.probability(weight))


def rank(
    inmate: Person,
    candidates: Iterable[Person],
    *,
    floor: float,
    limit: int = 5,
    model: LinkageModel = DEFAULT_MODEL,
) -> list[Scored]:
    """The candidates weighing at least `floor`, best first (ties by NIK), at most `limit`."""
    scored = [s for s in (score(inmate, c, model) for c in candidates) if s.weight >= floor]
    scored.sort(key=lambda s: (-s.weight, s.candidate.nik or "", s.candidate.full_name))
    return scored[:limit]


def probable_link(ranked: list[Scored], threshold: float = LINK_THRESHOLD) -> Scored | None:
    """The top candidate when it weighs at least `threshold` and its name agrees at least a little.

    The name guard keeps twins (the same birth date, birth place and mother, different names) and records
    under a nickname alone from being linked on the other fields; such candidates are still ranked for a
    person to review.
    """
    if ranked and ranked[0].weight >= threshold and ranked[0].comparison.name is not NameLevel.DISAGREE:
        return ranked[0]
    return None


def check_claimed_nik(inmate: Person, holder: Person | None) -> list[str]:
    """Where the inmate disagrees with the population record's holder of the NIK they claim (empty: agrees).

    The name differs only when no pair of names (the inmate's aliases included) agrees better than "low":
    old spellings, titles, Muhammad variants, a dropped second name, an initial or a typo are not
    discrepancies. Any other birth date is one (a swapped day and month included: it is still a different
    date in the two records).
    """
    if holder is None:
        return [NIK_NOT_IN_POPULATION]
    codes: list[str] = []
    if _best_name_level(inmate.names, holder.names) in (NameLevel.LOW, NameLevel.DISAGREE):
        codes.append(NIK_NAME_DIFFERS)
    if inmate.sex != holder.sex:
        codes.append(NIK_SEX_DIFFERS)
    if inmate.birth_date != holder.birth_date:
        codes.append(NIK_BIRTH_DATE_DIFFERS)
    return codes


def _blocking_tokens(name: str) -> list[str]:
    form = _form(name)
    full = [t for t in form.significant if len(t) > 1]
    distinctive = [t for t in full if t not in _COMMON]
    return distinctive or full


def blocking_keys(p: Person) -> frozenset[str]:
    """Short keys under which a person is found; two records are compared when they share one.

    Rules (unioned; none needs the NIK):
    - `d` + birth year + day and month in ascending order: the exact birth date, tolerant of a swapped day and
      month;
    - `t` + a distinctive canonical name token + birth year: tolerant of any error in day and month;
    - `m` + the first three letters of a distinctive token + day and month in ascending order: tolerant of a
      wrong year (one off or more), a swap, and a typo after the third letter;
    - `q` + the canonical name's significant tokens, sorted, + the mother's first distinctive token, and
      `p` + the same + the birth place's first token: tolerant of any birth date error, when the mother's name
      or the birth place is known.
    Distinctive tokens leave out initials, weak tokens and the few very common ones (Muhammad, Siti, Nur, Sri,
    Ahmad, Abdul) unless the name has nothing else; canonical spelling makes old and new spellings,
    titles and Muhammad variants share keys; aliases add their own keys.
    """
    d = p.birth_date
    lo, hi = sorted((d.day, d.month))
    daymonth = f"{lo:02d}{hi:02d}"
    keys = {f"d{d.year}{daymonth}"}
    mother = _blocking_tokens(p.mother_name)[:1] if p.mother_name else []
    place = place_tokens(p.birth_place)[:1] if p.birth_place else ()
    for written in p.names:
        for token in _blocking_tokens(written):
            keys.add(f"t{token}{d.year}")
            keys.add(f"m{token[:3]}{daymonth}")
        whole = "".join(sorted(_form(written).significant))
        if mother:
            keys.add(f"q{whole}.{mother[0]}")
        if place:
            keys.add(f"p{whole}.{place[0]}")
    return frozenset(keys)
