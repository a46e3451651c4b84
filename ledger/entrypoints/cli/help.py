"""The help every command shares: what the common arguments mean, an example per command, and one
line pointing at the global options (documented once, in ``obc-ledger --help``).

:func:`finish` is applied to each command's parser when it is loaded (:mod:`.parser`): an argument
its module left undescribed gets the common description of its name; a command with no
``examples:`` epilog of its own gets the one listed here.
"""

from __future__ import annotations

import argparse

# What an argument means, by its dest, where the command's module does not say more.
ARGUMENTS = {
    "contract_id": "the contract's id (as registered), e.g. beds-msk",
    "contract": "only this contract (its id)",
    "year": "the contract year (1 is the first)",
    "dispute_id": "the dispute's id (as `dispute raise` printed it), e.g. D1-1",
    "note": "a free-text note kept with the event",
    "indicator": "only this indicator (or sub-indicator)",
    "period": "only this period: YYYY-MM or YYYY-Qn",
    "all_versions": "also show superseded versions of each submission",
    "poll": "with --follow: seconds between polls of the event log (default 1.0)",
    "upheld": "uphold the dispute (the year is restated, or --adjust records an adjustment)",
    "rejected": "reject the dispute (nothing is paid)",
}

# (command path, argument dest) -> its meaning in that command.
SPECIFIC = {
    ("contract register", "file"): "the contract's YAML definition (contract-format.md)",
    ("contract vary", "file"): "the variation's YAML document (contract-format.md, variations)",
    ("contract terms", "year"): "the contract year whose terms are shown",
    ("baseline record", "value"): "the baseline value, a decimal (e.g. 0.62)",
    ("ingest", "file"): "the records: JSON lines, CSV or xlsx; '-' reads JSON lines from stdin",
    ("rejected list", "contract"): "only this contract's rejected records",
    ("replay", "contract"): "only this contract (default: every contract the acting party may read)",
    ("dispute raise", "reason"): "why the provider disputes the decision",
    ("dispute raise", "year"): "the contract year whose latest decision is disputed",
    ("dispute resolve", "note"): "the commissioner's reasons, kept with the resolution",
    ("dispute list", "year"): "only this contract year",
    ("keys generate", "out"): "the directory to write the key pair to (created if absent)",
    ("close-year", "year"): "the contract year to close",
    ("restate", "year"): "the closed contract year to recompute",
    (
        "provider key revoke",
        "key_id",
    ): "the key's id, as `provider key add` or `provider key list` printed it",
}

EXAMPLES = {
    "contract register": ["obc-ledger contract register ledger/examples/worked-example.yaml"],
    "contract list": ["obc-ledger contract list", "obc-ledger contract list --json"],
    "contract show": ["obc-ledger contract show beds-msk"],
    "contract extend": ["obc-ledger contract extend oxon-mh"],
    "contract vary": [
        "obc-ledger contract vary oxon-mh variation.yaml",
        "obc-ledger contract vary oxon-mh variation.yaml --restate",
    ],
    "contract terms": [
        "obc-ledger contract terms beds-msk --year 2",
        "obc-ledger contract terms beds-msk --year 2 --json",
    ],
    "contract variations": ["obc-ledger contract variations oxon-mh"],
    "budget show": ["obc-ledger budget show beds-msk"],
    "budget adjust": [
        "obc-ledger budget adjust beds-msk --year 2 --amount 11800000.00 --reason efficiency --note '4% efficiency'"
    ],
    "baseline record": ["obc-ledger baseline record beds-msk proms-improved 0.62 --note '2023/24 audit'"],
    "ingest": [
        "obc-ledger ingest ledger/examples/worked-example-data.jsonl",
        "obc-ledger ingest upload.csv --check",
        "cat records.jsonl | obc-ledger ingest - --source nightly-feed",
    ],
    "rejected list": [
        "obc-ledger rejected list --contract beds-msk",
        "obc-ledger rejected list --code invalid_json --json",
    ],
    "pay": ["obc-ledger pay beds-msk --through 2025-Q3"],
    "close-year": ["obc-ledger close-year beds-msk 1"],
    "template": [
        "obc-ledger template beds-msk --year 2 > submissions.csv",
        "obc-ledger template beds-msk --year 2 --format xlsx --out upload.xlsx",
    ],
    "completeness": ["obc-ledger completeness beds-msk --year 2"],
    "whatif": [
        "obc-ledger whatif oxon-mh variation.yaml --years 1-2",
        "obc-ledger whatif beds-ortho --schedule-of-year 2 --years 1-1",
    ],
    "restate": ["obc-ledger restate beds-msk 1"],
    "statement": [
        "obc-ledger statement beds-msk --year 2",
        "obc-ledger statement beds-msk --year 2 --as-of 2026-05-01 --json",
    ],
    "history": ["obc-ledger history beds-msk --year 2"],
    "submissions": ["obc-ledger submissions beds-msk --indicator proms-improved --all-versions"],
    "decisions": ["obc-ledger decisions beds-msk", "obc-ledger decisions beds-msk --json"],
    "replay": ["obc-ledger replay --as-of 2026-05-01T17:00:00Z --contract beds-msk"],
    "serve": [
        "obc-ledger serve --db sqlite:///demo.db --port 8080",
        "obc-ledger serve --db postgresql://ledger@db/ledger --workers 4 --host 0.0.0.0",
        "obc-ledger serve --oidc-issuer https://sso.example.nhs.uk/realms/obc --oidc-jwks "
        "https://sso.example.nhs.uk/realms/obc/protocol/openid-connect/certs --oidc-client-id obc-ledger "
        "--oidc-redirect-url https://ledger.example.nhs.uk/signin/oidc/callback",
    ],
    "token issue": [
        "obc-ledger token issue --actor commissioner:bccg --name 'Finance manager' --expires 90d",
        "obc-ledger token issue --actor provider:circle --name 'Circle data team' --json",
    ],
    "token list": ["obc-ledger token list", "obc-ledger token list --json"],
    "token revoke": ["obc-ledger token revoke tok_3f9a1c2b7d"],
    "provider key add": [
        "obc-ledger provider key add beds-msk circle circle-key/public.pem --as commissioner:bccg"
    ],
    "provider key list": [
        "obc-ledger provider key list beds-msk",
        "obc-ledger provider key list beds-msk --json",
    ],
    "provider key revoke": [
        "obc-ledger provider key revoke beds-msk KEY_ID --reason 'key lost' --as commissioner:bccg"
    ],
    "provider require-signatures": [
        "obc-ledger provider require-signatures beds-msk --as commissioner:bccg",
        "obc-ledger provider require-signatures beds-msk --off --as commissioner:bccg",
    ],
    "provider sign": [
        "obc-ledger provider sign q1.jsonl --sign-key circle-key/private.pem --out q1-signed.jsonl"
    ],
    "provider signatures": [
        "obc-ledger provider signatures beds-msk --year 1 --as auditor",
        "obc-ledger provider signatures beds-msk --record sub-2026-q1-01 --json",
    ],
    "dispute raise": [
        "obc-ledger dispute raise beds-msk --year 1 --reason 'late PROMs' --as provider:circle"
    ],
    "dispute resolve": [
        "obc-ledger dispute resolve beds-msk D1-1 --year 1 --upheld --note 'data was late'",
        "obc-ledger dispute resolve beds-msk D1-1 --year 1 --upheld --note 'agreed' --adjust 25000.00 --party physio",
        "obc-ledger dispute resolve beds-msk D1-1 --year 1 --rejected --note 'within terms'",
    ],
    "dispute list": ["obc-ledger dispute list beds-msk --year 1"],
    "verify": [
        "obc-ledger verify",
        "obc-ledger verify --against digest.json --public-key keys/ledger.pub --read-models",
        "obc-ledger verify --witness kafka:ledger.digests --bootstrap broker:9092",
    ],
    "digest": [
        "obc-ledger digest --sign-key keys/ledger.key > digest.json",
        "obc-ledger digest --sign-key keys/ledger.key --publish /mnt/witness",
    ],
    "db init": [
        "obc-ledger db init",
        "obc-ledger --db postgresql://admin@db/obc db init --roles --print-sql",
    ],
    "keys generate": ["obc-ledger keys generate --out keys/"],
    "projections run": ["obc-ledger projections run", "obc-ledger projections run --follow --poll 0.5"],
    "projections rebuild": ["obc-ledger projections rebuild"],
    "projections status": ["obc-ledger projections status", "obc-ledger projections status --json"],
    "consume": [
        "obc-ledger consume --bootstrap broker:9092 --until-idle 10",
        "obc-ledger consume --bootstrap broker:9092 --topic ledger.records --group obc-ledger",
    ],
    "produce": [
        "obc-ledger produce records.jsonl --bootstrap broker:9092 --check",
        "obc-ledger produce records.jsonl --bootstrap broker:9092 --registry http://registry:8081",
    ],
    "publish-decisions": ["obc-ledger publish-decisions --bootstrap broker:9092 --until-idle 5"],
    "explain": [
        "obc-ledger explain beds-msk --year 2",
        "obc-ledger explain beds-msk --year 2 --indicator proms-improved",
    ],
    "costs": ["obc-ledger costs beds-msk --year 2"],
    "reconcile": [
        "obc-ledger reconcile beds-msk --year 2",
        "obc-ledger reconcile beds-msk --year 2 --payments register.csv",
    ],
    "demo": ["obc-ledger demo", "obc-ledger demo --out /tmp/demo"],
}

GLOBAL_NOTE = (
    "global options (--db, --projections-db, --json, --as, --log-level) go before or after the "
    "command: see obc-ledger --help"
)


def finish(p: argparse.ArgumentParser, path: str) -> None:
    """Describe what the command's module left undescribed, add its example and the global-options note."""
    for action in p._actions:
        if action.help is None and action.dest != "help":
            action.help = SPECIFIC.get((path, action.dest)) or ARGUMENTS.get(action.dest)
    if not p.epilog and path in EXAMPLES:
        p.epilog = "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[path])
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = (p.epilog + "\n\n" if p.epilog else "") + GLOBAL_NOTE
