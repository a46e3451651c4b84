"""`explain`: the chain from each payment back to the submissions, redone by hand to the penny."""

import json
from decimal import ROUND_HALF_UP, Decimal

from tests.support.cli import EXAMPLES

EXPECTED = json.loads((EXAMPLES / "worked-example-expected.json").read_text())
PENNY = Decimal("0.01")


def _closed_example(cli, *years):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    for year in years:
        cli.ok("close-year", "beds-msk", str(year))


def _write(tmp_path, name, records):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _money(value):
    return value.quantize(PENNY, rounding=ROUND_HALF_UP)


# ---- the arithmetic of payment-rules.md §4-§5, redone from what the explanation lists


def _value(measure):
    per_period = {}
    for s in measure["submissions"]:
        acc = per_period.setdefault(s["period"], [Decimal(0), Decimal(0), Decimal(0)])
        if measure["unit"] == "ratio":
            acc[0] += Decimal(s["numerator"])
            acc[1] += Decimal(s["denominator"])
        else:
            acc[2] += Decimal(s["value"])
    periods = sorted(per_period)
    if not periods:
        return None
    ratio = measure["unit"] == "ratio"

    def one(p):
        num, den, val = per_period[p]
        return num / den if ratio else val

    if measure["aggregation"] == "sum":
        if ratio:
            return sum(per_period[p][0] for p in periods) / sum(per_period[p][1] for p in periods)
        return sum((per_period[p][2] for p in periods), Decimal(0))
    if measure["aggregation"] == "mean":
        total = Decimal(0)
        for p in periods:
            total += one(p)
        return total / Decimal(len(periods))
    return one(periods[-1])


def _score(scoring, value):
    if scoring["rule"] == "fixed":
        target = Decimal(scoring["target"])
        met = value >= target if scoring["direction"] == "higher" else value <= target
        return Decimal(1) if met else Decimal(0)
    if scoring["rule"] == "bands":
        best = Decimal(0)
        for band in scoring["bands"]:
            if ("at_least" in band and value >= Decimal(band["at_least"])) or (
                "at_most" in band and value <= Decimal(band["at_most"])
            ):
                best = max(best, Decimal(band["score"]))
        return best
    zero, full = Decimal(scoring["zero_at"]), Decimal(scoring["full_at"])
    return min(Decimal(1), max(Decimal(0), (value - zero) / (full - zero)))


def _check_outcomes(decision):
    out = decision["outcomes"]
    pot, linked = Decimal(out["pot"]), Decimal(out["linked_weight_total"])
    paid = Decimal(0)
    for ind in out["indicators"]:
        combined = Decimal(0)
        for m in ind["measures"]:
            for th in m["thresholds"]:  # relative thresholds: baseline × (1 + change), baseline named
                if isinstance(th["written"], dict):
                    assert m["baseline"]["value"] == th["from_baseline"]
                    expected = Decimal(th["from_baseline"]) * (1 + Decimal(th["written"]["baseline_change"]))
                    assert Decimal(th["resolved"]) == expected
            value = _value(m)
            if value is None:
                assert m["status"] == "missing"
                continue
            assert Decimal(m["value"]) == value, m["id"]
            score = _score(m["scoring"], value)
            assert Decimal(m["score"]) == score, m["id"]
            combined += (Decimal(m["subweight_share"]) if m["subweight_share"] else 1) * score
        assert Decimal(ind["score"]) == combined, ind["id"]
        if ind["status"] == "not_linked":
            assert ind["earned"] == "0.00"
            continue
        norm = Decimal(ind["weight"]) / linked
        assert Decimal(ind["normalised_weight"]) == norm
        earned = _money(pot * norm * combined)
        assert Decimal(ind["earned"]) == earned, ind["id"]
        paid += earned
    assert Decimal(out["payment"]) == paid
    return paid


def _check_risk_share(rs):
    costs = sum(Decimal(c["total_cost"]) for c in rs["cost_reports"])
    assert Decimal(rs["costs"]) == costs
    by_provider = {}
    for c in rs["cost_reports"]:
        by_provider[c["provider_id"]] = by_provider.get(c["provider_id"], Decimal(0)) + Decimal(
            c["total_cost"]
        )
    assert {p: Decimal(v) for p, v in rs["costs_by_provider"].items()} == by_provider
    threshold = Decimal(rs["high_cost_threshold"])
    excess = Decimal(0)
    for case in rs["high_cost_cases"]:
        cost = sum(Decimal(r["cost"]) for r in case["reports"])
        assert Decimal(case["cost"]) == cost
        excess += max(Decimal(0), cost - threshold)
    excess = _money(excess)
    assert Decimal(rs["high_cost_excess"]) == excess
    reference = Decimal(rs["reference"])
    variance = reference - (costs - excess)
    assert Decimal(rs["variance"]) == variance
    size, lower, commissioner = abs(variance), Decimal(0), Decimal(0)
    for tier in rs["tiers"]:
        upper = Decimal(tier["upto_fraction"]) * reference if tier.get("upto_fraction") else None
        part = max((min(size, upper) if upper is not None else size) - lower, Decimal(0))
        assert Decimal(tier["slice"]) == part
        commissioner += part * (1 - Decimal(tier["provider_share"]))
        if upper is None:
            break
        lower = upper
    adjustment = -commissioner if variance > 0 else commissioner
    if rs["cap"] is not None:
        limit = Decimal(rs["cap"]) * reference
        adjustment = max(-limit, min(limit, adjustment))
    adjustment = _money(adjustment)
    assert Decimal(rs["adjustment"]) == adjustment
    return adjustment, excess


def test_every_figure_of_a_closed_year_is_recomputed_by_hand_from_its_explanation(any_cli):
    cli = any_cli  # SQLite, then a real PostgreSQL server
    _closed_example(cli, 1, 2)
    statement = cli.ok("statement", "beds-msk", "--year", "2", "--json").json()
    explanation = cli.ok("explain", "beds-msk", "--year", "2", "--json").json()
    [close] = explanation["decisions"]
    assert close["kind"] == "close" and close["label"] == "original close"

    outcome = _check_outcomes(close)
    adjustment, excess = _check_risk_share(close["risk_share"])
    budget = Decimal(close["budget"]["amount"])
    core = _money(budget * Decimal(close["schedule"]["core"]))
    pot = _money(budget * Decimal(close["schedule"]["outcomes"]))
    reserve = Decimal(close["reserve"]["amount"])
    year_close = outcome + reserve + adjustment + excess
    # every recomputed figure is the statement's, to the penny
    assert str(core) == statement["core"]["annual"] and str(pot) == statement["outcomes"]["pot"]
    assert str(outcome) == statement["outcomes"]["payment"]
    assert str(adjustment) == statement["risk_share"]["adjustment"]
    assert str(excess) == statement["high_cost_reimbursement"]
    assert str(year_close) == statement["year_close_payment"] == "641569.07"
    assert str(core + year_close) == statement["total"] == EXPECTED[1]["total"]
    earned = {i["id"]: i["earned"] for i in close["outcomes"]["indicators"]}
    assert earned == {i["id"]: i["earned"] for i in statement["outcomes"]["indicators"]}
    # the parties' shares: core and reserve by core_split, earned by attribution, A + E to the lead
    by_party = {p: Decimal(v) for p, v in close["core"]["split"].items()}
    for p, v in close["reserve"]["split"].items():
        by_party[p] += Decimal(v)
    for ind in close["outcomes"]["indicators"]:
        for p, v in ind["by_party"].items():
            by_party[p] = by_party.get(p, Decimal(0)) + Decimal(v)
    by_party["circle"] += adjustment + excess
    assert {p: str(v) for p, v in by_party.items()} == statement["by_party"]


def test_a_year_without_risk_share_explains_its_indicators_and_says_so(cli):
    _closed_example(cli, 1)
    explanation = cli.ok("explain", "beds-msk", "--year", "1", "--json").json()
    [close] = explanation["decisions"]
    assert close["risk_share"] is None
    assert close["figures"]["total"] == EXPECTED[0]["total"]
    assert {i["status"] for i in close["outcomes"]["indicators"]} == {"not_linked"}
    _check_outcomes(close)


def test_a_correction_shows_which_version_it_superseded_and_that_the_old_one_was_excluded(cli):
    _closed_example(cli, 2)
    explanation = cli.ok("explain", "beds-msk", "--year", "2", "--indicator", "readmissions", "--json").json()
    [close] = explanation["decisions"]
    [ind] = close["outcomes"]["indicators"]
    [measure] = ind["measures"]
    used = {s["submission_id"]: s for s in measure["submissions"]}
    assert sorted(used) == ["s-0015", "s-0016", "s-0018", "s-0019"]
    assert used["s-0019"]["version"] == 2 and used["s-0019"]["supersedes"] == "s-0017"
    assert used["s-0019"]["superseded_versions"] == [{"submission_id": "s-0017", "excluded": True}]
    assert used["s-0015"]["version"] == 1 and used["s-0015"]["provider_id"] == "circle"
    assert measure["excluded_versions"] == [
        {
            "submission_id": "s-0017",
            "period": "2026-Q4",
            "provider_id": "circle",
            "numerator": None,
            "denominator": None,
            "value": "68",
            "recorded_at": measure["excluded_versions"][0]["recorded_at"],
            "actor": "system",
            "reason": "superseded by s-0019",
        }
    ]
    assert measure["baseline"] == {"key": "readmissions", "value": "310", "source": "contract"}
    [target] = measure["thresholds"]
    assert target["resolved"] == "279.00" and target["written"] == {"baseline_change": "-0.10"}
    assert close["risk_share"] is None and "risk_share_omitted" in close
    text = cli.ok("explain", "beds-msk", "--year", "2", "--indicator", "readmissions").out
    assert "used s-0019 v2 2026-Q4 circle: 66, supersedes s-0017 (excluded)" in text
    assert "target (lower is better): 279.00  (baseline 310 × (1 + -0.10))" in text


def test_a_recorded_baseline_is_named_as_the_source_of_the_threshold(cli):
    cli.ok("contract", "register", EXAMPLES / "worked-example.yaml")
    cli.ok("baseline", "record", "beds-msk", "readmissions", "300", "--note", "audited 2024/25 figure")
    cli.ok("ingest", EXAMPLES / "worked-example-data.jsonl")
    cli.ok("close-year", "beds-msk", "2")
    explanation = cli.ok("explain", "beds-msk", "--year", "2", "--json").json()
    [close] = explanation["decisions"]
    readmissions = next(i for i in close["outcomes"]["indicators"] if i["id"] == "readmissions")
    measure = readmissions["measures"][0]
    assert measure["baseline"]["source"] == "recorded" and measure["baseline"]["value"] == "300"
    assert measure["baseline"]["note"] == "audited 2024/25 figure"
    assert measure["thresholds"][0]["resolved"] == "270.00"  # 300 × (1 − 0.10): 277 misses it
    assert readmissions["score"] == "0" and readmissions["earned"] == "0.00"
    _check_outcomes(close)
    statement = cli.ok("statement", "beds-msk", "--year", "2", "--json").json()
    assert close["figures"]["total"] == statement["total"]


def test_a_true_up_is_explained_after_the_original_close_with_the_difference(cli, tmp_path):
    _closed_example(cli, 2)
    cli.ok(
        "ingest",
        _write(
            tmp_path,
            "late.jsonl",
            [
                {
                    "type": "submission",
                    "submission_id": "s-0419",
                    "contract_id": "beds-msk",
                    "provider_id": "circle",
                    "indicator_id": "readmissions",
                    "period": "2027-Q1",
                    "value": "80",
                },
                {
                    "type": "cost_report",
                    "report_id": "c-0099",
                    "contract_id": "beds-msk",
                    "provider_id": "physio",
                    "period": "2027-Q1",
                    "total_cost": "620000.00",
                    "high_cost_cases": [],
                },
            ],
        ),
    )
    cli.ok("restate", "beds-msk", "2")
    statement = cli.ok("statement", "beds-msk", "--year", "2", "--json").json()
    explanation = cli.ok("explain", "beds-msk", "--year", "2", "--json").json()
    close, true_up = explanation["decisions"]
    assert (close["kind"], true_up["kind"], true_up["label"]) == ("close", "true_up", "true-up 1")
    assert true_up["amount"] == statement["true_ups"][0]["amount"]
    assert true_up["by_party"] == statement["true_ups"][0]["by_party"]
    assert Decimal(true_up["figures"]["total"]) - Decimal(true_up["previous_total"]) == Decimal(
        true_up["amount"]
    )
    assert explanation["net_total"] == str(Decimal(statement["total"]) + Decimal(true_up["amount"]))
    # the original close used s-0018 and c-0008; the late versions arrived after it
    old = next(i for i in close["outcomes"]["indicators"] if i["id"] == "readmissions")["measures"][0]
    assert {"submission_id": "s-0419", "reason": "recorded after this decision"}.items() <= next(
        x for x in old["excluded_versions"] if x["submission_id"] == "s-0419"
    ).items()
    assert (
        next(s for s in old["submissions"] if s["submission_id"] == "s-0018")["later_superseded_by"]
        == "s-0419"
    )
    new = next(i for i in true_up["outcomes"]["indicators"] if i["id"] == "readmissions")["measures"][0]
    assert next(s for s in new["submissions"] if s["submission_id"] == "s-0419")["superseded_versions"] == [
        {"submission_id": "s-0018", "excluded": True}
    ]
    assert {x["report_id"]: x["reason"] for x in true_up["risk_share"]["excluded_versions"]} == {
        "c-0008": "superseded by c-0099"
    }
    # the true-up's own figures add up as well
    _check_outcomes(true_up)
    adjustment, excess = _check_risk_share(true_up["risk_share"])
    assert (
        Decimal(true_up["figures"]["year_close_payment"])
        == Decimal(true_up["outcomes"]["payment"]) + adjustment + excess
    )
    text = cli.ok("explain", "beds-msk", "--year", "2").out
    assert "ORIGINAL CLOSE" in text and "TRUE-UP 1" in text and "Net total (original + true-ups)" in text


def test_an_open_year_is_explained_from_the_data_held_now_as_provisional(cli):
    _closed_example(cli)
    explanation = cli.ok("explain", "beds-msk", "--year", "2", "--json").json()
    assert explanation["closed"] is False and explanation["net_total"] is None
    [provisional] = explanation["decisions"]
    assert provisional["kind"] == "provisional"
    statement = cli.ok("statement", "beds-msk", "--year", "2", "--json").json()
    assert [(i["id"], i["score"]) for i in provisional["outcomes"]["indicators"]] == [
        (i["id"], i["score"]) for i in statement["outcomes"]["indicators"]
    ]
    _check_outcomes(provisional)


def test_explaining_an_unknown_indicator_or_a_year_outside_the_term_is_a_clear_error(cli):
    _closed_example(cli, 2)
    result = cli("explain", "beds-msk", "--year", "2", "--indicator", "nope")
    assert result.code == 1 and "unknown_indicator" in result.err
    result = cli("explain", "beds-msk", "--year", "9")
    assert result.code == 1 and "year_outside_term" in result.err
    sub = cli.ok(
        "explain", "beds-msk", "--year", "2", "--indicator", "shared-decisions.offered", "--json"
    ).json()
    assert [i["id"] for i in sub["decisions"][0]["outcomes"]["indicators"]] == ["shared-decisions"]
