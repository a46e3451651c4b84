"""Contract variations (payment rules §7): parsed, validated against every year they affect, applied.

A variation never edits the registration. The terms in force for contract year
*y* are the registered document with every variation whose
``effective_from_year`` e ≤ y applied in recording order; within one variation
the changes apply as remove, then add, then amend. The terms are built at the
document level (the contract definition's own shape) and parsed by
:func:`ledger.domain.definition.from_document`, so a year's terms pass exactly the
registration's validation; a problem found there is reported with its path in
the *variation* document (``changes.indicators.amend[0].scoring.full_at``).

:class:`ContractTerms` answers "which terms for year y" for settlement, ingest,
statements and the read models, caching one parsed definition per distinct set
of variations in force.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger.domain.definition import (
    ID_PATTERN,
    KEY_PATTERN,
    ContractDefinition,
    _Reader,
    from_document,
    to_document,
)
from ledger.domain.errors import ValidationFailed

INDICATOR_FIELDS = (
    "name",
    "domain",
    "weight",
    "unit",
    "aggregation",
    "paid_from_year",
    "scoring",
    "subcomponents",
    "attribution",
)


class InvalidVariation(ValidationFailed):
    code = "invalid_variation"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(problems, what="variation")


@dataclass(frozen=True)
class Variation:
    id: str
    contract_id: str
    effective_from_year: int
    reason: str
    agreed: Mapping[str, Any] | None
    changes: Mapping[str, Any]
    document: Mapping[str, Any] = field(compare=False, repr=False, default_factory=dict)

    @property
    def reference(self) -> str | None:
        return (self.agreed or {}).get("reference")

    def changes_budget_factor(self) -> bool:
        budget = self.changes.get("budget") or {}
        return any(k in budget for k in ("efficiency", "uplift", "population_tolerance"))

    def summary(self) -> list[str]:
        """What the variation changes, one line per part (for the CLI and the demo)."""
        c = self.changes
        lines = []
        ind = c.get("indicators") or {}
        for key, verb in (("remove", "removes"), ("add", "adds"), ("amend", "amends")):
            items = ind.get(key) or []
            if items:
                ids = [i if isinstance(i, str) else str(i.get("id")) for i in items]
                lines.append(f"{verb} indicator(s) {', '.join(ids)}")
        if c.get("baselines"):
            lines.append("baselines " + ", ".join(f"{k}={v}" for k, v in c["baselines"].items()))
        pay = c.get("payment") or {}
        if pay.get("schedule"):
            lines.append("schedule from year " + ", ".join(str(e.get("from_year")) for e in pay["schedule"]))
        if pay.get("core_split"):
            lines.append("core split " + ", ".join(f"{k} {v}" for k, v in pay["core_split"].items()))
        if pay.get("risk_share"):
            lines.append("risk-share terms " + ", ".join(pay["risk_share"]))
        subs = c.get("subcontractors") or {}
        if subs.get("remove"):
            lines.append("subcontractor(s) leaving: " + ", ".join(subs["remove"]))
        if subs.get("add"):
            lines.append("subcontractor(s) joining: " + ", ".join(str(p.get("id")) for p in subs["add"]))
        for key in ("efficiency", "uplift", "population_tolerance"):
            if key in (c.get("budget") or {}):
                lines.append(f"budget {key} {c['budget'][key]}")
        return lines


def _is_mapping_list(r: _Reader, raw: Any, path: str) -> list[dict[str, Any]]:
    items = r.listing(raw, path, required=False) or []
    out = []
    for i, item in enumerate(items):
        m = r.mapping(item, f"{path}[{i}]")
        if m is not None:
            out.append(m)
    return out if len(out) == len(items) else []


def parse_variation(document: Any) -> Variation:
    """Check a variation document's own shape (its content is checked against the terms)."""
    r = _Reader()
    doc = r.mapping(document, "(document)")
    if doc is None:
        raise InvalidVariation(r.problems)
    r.unknown_keys(doc, {"variation", "changes"}, "")
    v = r.mapping(doc.get("variation"), "variation") or {}
    r.unknown_keys(v, {"id", "contract_id", "effective_from_year", "reason", "agreed"}, "variation")
    vid = r.text(v.get("id"), "variation.id", pattern=ID_PATTERN)
    contract_id = r.text(v.get("contract_id"), "variation.contract_id", pattern=ID_PATTERN)
    effective = r.integer(v.get("effective_from_year"), "variation.effective_from_year", low=1)
    reason = r.text(v.get("reason"), "variation.reason")
    agreed = r.mapping(v.get("agreed"), "variation.agreed", required=False)
    if agreed is not None:
        r.unknown_keys(agreed, {"date", "reference"}, "variation.agreed")
        r.calendar_date(agreed.get("date"), "variation.agreed.date", required=False)
        if agreed.get("reference") is not None:
            r.text(agreed.get("reference"), "variation.agreed.reference")
    changes = r.mapping(doc.get("changes"), "changes", required=False) or {}
    r.unknown_keys(changes, {"indicators", "baselines", "payment", "subcontractors", "budget"}, "changes")
    ind = r.mapping(changes.get("indicators"), "changes.indicators", required=False) or {}
    r.unknown_keys(ind, {"add", "remove", "amend"}, "changes.indicators")
    _is_mapping_list(r, ind.get("add"), "changes.indicators.add")
    for i, raw in enumerate(r.listing(ind.get("remove"), "changes.indicators.remove", required=False) or []):
        r.text(raw, f"changes.indicators.remove[{i}]", pattern=KEY_PATTERN)
    for i, m in enumerate(_is_mapping_list(r, ind.get("amend"), "changes.indicators.amend")):
        p = f"changes.indicators.amend[{i}]"
        r.unknown_keys(m, {"id", *INDICATOR_FIELDS}, p)
        r.text(m.get("id"), f"{p}.id", pattern=KEY_PATTERN)
        if "scoring" in m and "subcomponents" in m:
            r.problem(p, "give scoring or subcomponents, not both")
        if len(set(m) - {"id"}) == 0:
            r.problem(p, "names no field to amend")
    r.mapping(changes.get("baselines"), "changes.baselines", required=False)
    pay = r.mapping(changes.get("payment"), "changes.payment", required=False) or {}
    r.unknown_keys(pay, {"schedule", "core_split", "risk_share"}, "changes.payment")
    _is_mapping_list(r, pay.get("schedule"), "changes.payment.schedule")
    if isinstance(pay.get("schedule"), list) and not pay["schedule"]:
        r.problem("changes.payment.schedule", "at least one entry is required (omit schedule to keep it)")
    r.mapping(pay.get("core_split"), "changes.payment.core_split", required=False)
    for name, terms in (
        r.mapping(pay.get("risk_share"), "changes.payment.risk_share", required=False) or {}
    ).items():
        r.mapping(terms, f"changes.payment.risk_share.{name}")
    subs = r.mapping(changes.get("subcontractors"), "changes.subcontractors", required=False) or {}
    r.unknown_keys(subs, {"add", "remove"}, "changes.subcontractors")
    _is_mapping_list(r, subs.get("add"), "changes.subcontractors.add")
    for i, raw in enumerate(
        r.listing(subs.get("remove"), "changes.subcontractors.remove", required=False) or []
    ):
        r.text(raw, f"changes.subcontractors.remove[{i}]", pattern=KEY_PATTERN)
    budget = r.mapping(changes.get("budget"), "changes.budget", required=False) or {}
    r.unknown_keys(budget, {"efficiency", "uplift", "population_tolerance"}, "changes.budget")
    if r.problems:
        raise InvalidVariation(r.problems)
    assert vid and contract_id and effective and reason
    canonical = to_document(doc)
    return Variation(
        vid,
        contract_id,
        effective,
        reason,
        canonical["variation"].get("agreed"),
        canonical.get("changes") or {},
        canonical,
    )


def from_stored(document: Mapping[str, Any]) -> Variation:
    return parse_variation(copy.deepcopy(dict(document)))


# ---------------------------------------------------------------------------
# Applying a variation to a terms document


def _declared_ids(indicator: Mapping[str, Any]) -> set[str]:
    iid = str(indicator.get("id"))
    ids = {iid}
    for sub in indicator.get("subcomponents") or []:
        if isinstance(sub, dict) and sub.get("id") is not None:
            ids |= {str(sub["id"]), f"{iid}.{sub['id']}"}
    return ids


def _factors(budget: Mapping[str, Any], key: str, count: int) -> list[Any]:
    """The per-year factors of years 2..count+1 as a list (absent = 0)."""
    raw = budget.get(key)
    if raw is None:
        return ["0"] * count
    if isinstance(raw, list):
        return [raw[min(i, len(raw) - 1)] for i in range(count)] if raw else ["0"] * count
    return [raw] * count


def apply_variation(document: Mapping[str, Any], v: Variation) -> tuple[dict[str, Any], dict[str, str]]:
    """The terms document with ``v`` applied, and where each changed part came from in ``v``
    (result path prefix → variation path prefix)."""
    doc = copy.deepcopy(dict(document))
    e = v.effective_from_year
    c = v.changes
    prov: dict[str, str] = {}

    ind = c.get("indicators") or {}
    indicators = list(doc.get("indicators") or [])
    removed = set(ind.get("remove") or [])
    kept = [i for i in indicators if not (isinstance(i, dict) and i.get("id") in removed)]
    gone: set[str] = set()
    for i in indicators:
        if isinstance(i, dict) and i.get("id") in removed:
            gone |= _declared_ids(i)
    origin: list[str | None] = [None] * len(kept)
    for j, added in enumerate(ind.get("add") or []):
        kept.append(copy.deepcopy(added))
        origin.append(f"changes.indicators.add[{j}]")
    amended: dict[int, tuple[int, list[str]]] = {}
    for j, amend in enumerate(ind.get("amend") or []):
        for k, current in enumerate(kept):
            if isinstance(current, dict) and current.get("id") == amend.get("id"):
                new = dict(current)
                given = [f for f in INDICATOR_FIELDS if f in amend]
                for f in given:
                    new[f] = copy.deepcopy(amend[f])
                if "scoring" in amend:
                    new.pop("subcomponents", None)
                if "subcomponents" in amend:
                    for f in ("scoring", "unit", "aggregation"):
                        new.pop(f, None)
                kept[k] = new
                amended[k] = (j, given)
    for k, src in enumerate(origin):
        if src is not None:
            prov[f"indicators[{k}]"] = src
    for k, (j, given) in amended.items():
        if origin[k] is None:
            prov[f"indicators[{k}]$"] = f"changes.indicators.amend[{j}]"
            prov[f"indicators[{k}].id"] = f"changes.indicators.amend[{j}].id"
        for f in given:
            prov[f"indicators[{k}].{f}"] = f"changes.indicators.amend[{j}].{f}"
    doc["indicators"] = kept

    baselines = dict(doc.get("baselines") or {})
    still = set().union(*[_declared_ids(i) for i in kept if isinstance(i, dict)]) if kept else set()
    for key in list(baselines):
        if key in gone and key not in still:
            del baselines[key]
    for key, value in (c.get("baselines") or {}).items():
        baselines[str(key)] = value
        prov[f"baselines.{key}"] = f"changes.baselines.{key}"
    if baselines or "baselines" in doc:
        doc["baselines"] = baselines

    pay = c.get("payment") or {}
    payment = dict(doc.get("payment") or {})
    if pay.get("schedule"):
        entries = [
            x
            for x in payment.get("schedule") or []
            if not (isinstance(x, dict) and isinstance(x.get("from_year"), int) and x["from_year"] >= e)
        ]
        for j, entry in enumerate(pay["schedule"]):
            prov[f"payment.schedule[{len(entries)}]"] = f"changes.payment.schedule[{j}]"
            entries.append(copy.deepcopy(entry))
        payment["schedule"] = entries
    if "core_split" in pay:
        payment["core_split"] = copy.deepcopy(pay["core_split"])
        prov["payment.core_split"] = "changes.payment.core_split"
    if pay.get("risk_share"):
        shares = dict(payment.get("risk_share") or {})
        for name, terms in pay["risk_share"].items():
            shares[name] = copy.deepcopy(terms)
            prov[f"payment.risk_share.{name}"] = f"changes.payment.risk_share.{name}"
        payment["risk_share"] = shares
    doc["payment"] = payment

    subs = c.get("subcontractors") or {}
    contract = dict(doc.get("contract") or {})
    if subs.get("remove") or subs.get("add"):
        leaving = set(subs.get("remove") or [])
        parties = [
            p
            for p in contract.get("subcontractors") or []
            if not (isinstance(p, dict) and p.get("id") in leaving)
        ]
        for j, party in enumerate(subs.get("add") or []):
            prov[f"contract.subcontractors[{len(parties)}]"] = f"changes.subcontractors.add[{j}]"
            parties.append(copy.deepcopy(party))
        contract["subcontractors"] = parties
        doc["contract"] = contract

    bud = c.get("budget") or {}
    budget = dict(doc.get("budget") or {})
    term = contract.get("years")
    years = term if isinstance(term, int) else 1
    count = years + int(contract.get("extension_years") or 0) - 1
    for key in ("efficiency", "uplift"):
        if key in bud and count > 0:
            values = _factors(budget, key, count)
            new = bud[key]
            for k in range(max(e, 2), count + 2):
                values[k - 2] = new[min(k - e, len(new) - 1)] if isinstance(new, list) else new
            budget[key] = values
            if isinstance(new, list):
                for k in range(max(e, 2), count + 2):
                    prov[f"budget.{key}[{k - 2}]"] = f"changes.budget.{key}[{min(k - e, len(new) - 1)}]"
            prov[f"budget.{key}"] = f"changes.budget.{key}"
    if "population_tolerance" in bud:
        budget["population_tolerance"] = bud["population_tolerance"]
        prov["budget.population_tolerance"] = "changes.budget.population_tolerance"
    doc["budget"] = budget
    return doc, prov


def _mapped(path: str, prov: Mapping[str, str]) -> str | None:
    if path + "$" in prov:
        return prov[path + "$"]
    best = None
    for prefix in prov:
        if prefix.endswith("$"):
            continue
        if (path == prefix or path.startswith((prefix + ".", prefix + "["))) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return None if best is None else prov[best] + path[len(best) :]


_PARTY = re.compile(r"'([A-Za-z0-9_-]+)' is not the lead provider or a subcontractor")


def _prechecks(base: Mapping[str, Any], v: Variation, year: int) -> list[tuple[str, str]]:
    """Problems the parsed terms cannot name in the variation's own words."""
    problems: list[tuple[str, str]] = []
    c = v.changes
    ind = c.get("indicators") or {}
    present = [i.get("id") for i in base.get("indicators") or [] if isinstance(i, dict)]
    removed = list(ind.get("remove") or [])
    for i, iid in enumerate(removed):
        if iid not in present:
            problems.append(
                (f"changes.indicators.remove[{i}]", f"no indicator {iid!r} in the terms of year {year}")
            )
    after_add = [i for i in present if i not in removed] + [a.get("id") for a in ind.get("add") or []]
    for i, amend in enumerate(ind.get("amend") or []):
        if amend.get("id") not in after_add:
            problems.append(
                (
                    f"changes.indicators.amend[{i}].id",
                    f"no indicator {amend.get('id')!r} in the terms of year {year}"
                    + (" (it is removed by this variation)" if amend.get("id") in removed else ""),
                )
            )
    contract = base.get("contract") or {}
    lead = (contract.get("lead_provider") or {}).get("id")
    subs = [p.get("id") for p in contract.get("subcontractors") or [] if isinstance(p, dict)]
    changes_subs = c.get("subcontractors") or {}
    leaving = list(changes_subs.get("remove") or [])
    for i, pid in enumerate(leaving):
        if pid == lead:
            problems.append(
                (
                    f"changes.subcontractors.remove[{i}]",
                    f"{pid!r} is the lead provider, which a variation cannot remove",
                )
            )
        elif pid not in subs:
            problems.append(
                (
                    f"changes.subcontractors.remove[{i}]",
                    f"{pid!r} is not a subcontractor in the terms of year {year}",
                )
            )
    others = {(contract.get("commissioner") or {}).get("id"), lead, *[s for s in subs if s not in leaving]}
    for i, party in enumerate(changes_subs.get("add") or []):
        if party.get("id") in others:
            problems.append(
                (
                    f"changes.subcontractors.add[{i}].id",
                    f"{party.get('id')!r} is already a party to the contract in year {year}",
                )
            )
    e = v.effective_from_year
    for i, entry in enumerate((c.get("payment") or {}).get("schedule") or []):
        fy = entry.get("from_year")
        if isinstance(fy, int) and not isinstance(fy, bool) and fy < e:
            problems.append(
                (
                    f"changes.payment.schedule[{i}].from_year",
                    f"must be at least the effective year {e} (got {fy})",
                )
            )
    years = contract.get("years")
    bud = c.get("budget") or {}
    if e == 1:
        for key in ("efficiency", "uplift"):
            if key in bud:
                problems.append(
                    (
                        f"changes.budget.{key}",
                        "a variation effective from year 1 cannot change the "
                        "budget factors (year 1 has none)",
                    )
                )
    for key in ("efficiency", "uplift"):
        raw = bud.get(key)
        if isinstance(raw, list) and isinstance(years, int) and len(raw) < years - v.effective_from_year + 1:
            problems.append(
                (
                    f"changes.budget.{key}",
                    f"a per-year list from year {v.effective_from_year} needs at least years - e + 1 = "
                    f"{years - v.effective_from_year + 1} entries; got {len(raw)}",
                )
            )
    return problems


def check_against(
    base: Mapping[str, Any], v: Variation, year: int
) -> tuple[list[tuple[str, str]], ContractDefinition | None]:
    """Problems (in the variation's paths) of applying ``v`` to the terms document of ``year``."""
    problems = _prechecks(base, v, year)
    doc, prov = apply_variation(base, v)
    leaving = list((v.changes.get("subcontractors") or {}).get("remove") or [])
    try:
        definition = from_document(doc)
    except ValidationFailed as exc:
        definition = None
        for path, message in exc.problems:
            where = _mapped(path, prov)
            if where is None:
                party = _PARTY.search(message)
                if party and party.group(1) in leaving:
                    i = leaving.index(party.group(1))
                    where, message = (
                        f"changes.subcontractors.remove[{i}]",
                        f"{party.group(1)!r} is still named in {path.rsplit('.', 1)[0]} "
                        f"in the terms of year {year}; vary that too",
                    )
                else:
                    where, message = (
                        "changes",
                        f"the terms of year {year} would be invalid: {path}: {message}",
                    )
            problems.append((where, message))
    return problems, definition


# ---------------------------------------------------------------------------
# Terms per year


class ContractTerms:
    """The registered definition and its variations, in recording order: the terms of any year."""

    def __init__(self, registered: ContractDefinition, variations: Sequence[Variation] = ()) -> None:
        self.registered = registered
        self.variations = tuple(variations)
        self._docs: dict[tuple[str, ...], dict[str, Any]] = {(): dict(registered.document)}
        self._defs: dict[tuple[str, ...], ContractDefinition] = {(): registered}
        self._by_year: dict[int, ContractDefinition] = {}

    def in_force(self, year: int) -> list[Variation]:
        return [v for v in self.variations if v.effective_from_year <= year]

    def variation_ids(self, year: int) -> list[str]:
        return [v.id for v in self.in_force(year)]

    def document_for(self, year: int) -> dict[str, Any]:
        applied = self.in_force(year)
        key = tuple(v.id for v in applied)
        if key not in self._docs:
            doc = dict(self.registered.document)
            for v in applied:
                doc, _ = apply_variation(doc, v)
            self._docs[key] = doc
        return self._docs[key]

    def for_year(self, year: int) -> ContractDefinition:
        cached = self._by_year.get(year)
        if cached is not None:
            return cached
        key = tuple(v.id for v in self.in_force(year))
        definition = self._defs.get(key)
        if definition is None:
            definition = from_document(self.document_for(year))
            self._defs[key] = definition
        self._by_year[year] = definition
        return definition

    def last_year(self) -> int:
        return self.registered.years + self.registered.extension_years

    def not_in_force(self, what: str, present: list[int], year: int) -> str:
        """Why ``what`` is not part of the terms of ``year``, saying from which year (and which variation)."""
        later = [y for y in present if y > year]
        earlier = [y for y in present if y < year]
        if earlier:
            since = max(earlier) + 1
            by = [v.id for v in self.in_force(since) if v.effective_from_year == since]
            return (
                f"{what} is not part of the contract from year {since}"
                + (f" (variation {by[-1]})" if by else "")
                + f"; the record is for year {year}"
            )
        if later:
            by = [v.id for v in self.in_force(min(later)) if v.effective_from_year == min(later)]
            return (
                f"{what} is part of the contract only from year {min(later)}"
                + (f" (variation {by[-1]})" if by else "")
                + f"; the record is for year {year}"
            )
        return f"{what} is not part of the contract in year {year}"

    def providers_ever(self) -> tuple[str, ...]:
        out = list(self.registered.providers)
        for v in self.variations:
            for p in (v.changes.get("subcontractors") or {}).get("add") or []:
                if p.get("id") not in out:
                    out.append(p["id"])
        return tuple(out)

    def measure_years(self, key: str, last_year: int) -> list[int]:
        return [y for y in range(1, last_year + 1) if self.for_year(y).measure(key) is not None]

    def provider_years(self, provider: str, last_year: int) -> list[int]:
        return [y for y in range(1, last_year + 1) if provider in self.for_year(y).providers]

    def baselines(self, year: int, recorded: Iterable[tuple[str, Any, int]]) -> dict[str, Any]:
        """The year's baselines: its terms', overlaid by each ``baseline record`` (key, value, number of
        variations recorded before it) unless a later-recorded variation in force sets that key."""
        out = dict(self.for_year(year).baselines)
        for key, value, seen in recorded:
            overridden = any(
                key in (v.changes.get("baselines") or {})
                for v in self.variations[seen:]
                if v.effective_from_year <= year
            )
            if not overridden:
                out[key] = value
        return out

    def validate(self, new: Variation, last_year: int) -> list[ContractDefinition]:
        """Raise InvalidVariation listing every problem of recording ``new`` after the variations held;
        return the new terms of each distinct year from its effective year."""
        problems: list[tuple[str, str]] = []
        if new.contract_id != self.registered.id:
            problems.append(
                (
                    "variation.contract_id",
                    f"{new.contract_id!r} is not this contract ({self.registered.id!r})",
                )
            )
        e = new.effective_from_year
        if e > last_year:
            problems.append(
                ("variation.effective_from_year", f"year {e} is outside the contract term (1..{last_year})")
            )
        years = sorted(
            {e, *(v.effective_from_year for v in self.variations if e < v.effective_from_year <= last_year)}
        )
        definitions = []
        if e <= last_year:
            for year in years:
                found, definition = check_against(self.document_for(year), new, year)
                for p in found:
                    if p not in problems:
                        problems.append(p)
                if definition is not None:
                    definitions.append(definition)
        if problems:
            raise InvalidVariation(problems)
        return definitions


def attach(definition: ContractDefinition, terms: ContractTerms) -> ContractDefinition:
    """Let code that holds only the registered definition reach the terms of each year."""
    object.__setattr__(definition, "_terms", terms)
    object.__setattr__(definition, "_providers_ever", terms.providers_ever())
    return definition


def terms_of(definition: ContractDefinition) -> ContractTerms | None:
    return definition.__dict__.get("_terms")


def year_terms(definition: ContractDefinition, year: int) -> ContractDefinition:
    """The terms in force for ``year`` (the definition itself when it has no variations)."""
    terms = terms_of(definition)
    if terms is None or not terms.variations:
        return definition
    return terms.for_year(year)
