"""`plusjeklas sync` prints every count of a run on its plain-text line, ``no_basis`` included:
a newsletter change held back because the person has no basis is visible to whoever runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from plusjeklas_tui.cli import main
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.services import records
from plusjeklas_tui.services.consent_proof import record_with_proof
from plusjeklas_tui.testing.mailchimp import DEFAULT_LIST_ID, MailchimpImitation


@pytest.fixture
def imitation() -> Iterator[MailchimpImitation]:
    with MailchimpImitation() as running:
        yield running  # type: ignore[misc]


def people_with_grants(ctx: AppContext, proofs: list[str | None]) -> None:
    with session_scope(ctx.engine) as session:
        org = records.create_organisation(
            session,
            ctx.staff,
            records.validate_organisation(
                {
                    "name": "Basisschool De Wilg",
                    "street": "Kerkstraat 1",
                    "postcode": "1234ab",
                    "city": "Utrecht",
                    "brin": "77EF",
                    "phone": "030 123 4567",
                }
            ),
        )
        for n, proof in enumerate(proofs):
            person = records.add_administrator(
                session,
                ctx.staff,
                org.id,
                records.validate_administrator(
                    {"name": f"Anna {n}", "email": f"anna{n}@wilg.example", "phones": "0612345678"}
                ),
            )
            record_with_proof(
                session,
                ctx.staff,
                person.id,
                "newsletter",
                "granted",
                proof,
                "web-form" if proof else "import",
                text_version=None,
                purposes=ctx.settings.consent_purposes,
            )


def test_sync_line_shows_the_changes_held_back_for_want_of_a_basis(
    ctx: AppContext,
    imitation: MailchimpImitation,
    write_config,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # one proven grant is pushed; two grants nobody can prove are held back
    people_with_grants(ctx, ["web form v2", None, None])
    monkeypatch.setenv("PJ_TEST_MAILCHIMP_KEY", imitation.api_key)
    config: Path = write_config(
        name="mailchimp.toml",
        extra=(
            "\n[plugins.mailchimp]\nenabled = true\n"
            f'base_url = "{imitation.url}"\napi_key_env = "PJ_TEST_MAILCHIMP_KEY"\n'
            f'list_id = "{DEFAULT_LIST_ID}"\n'
        ),
    )
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(config), "sync", "--json"])
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    assert report["pushed"] == 1 and report["no_basis"] == 2
    line = next(x for x in result.stderr.splitlines() if x.startswith("mailchimp: succeeded"))
    assert line == (
        "mailchimp: succeeded — 0 fetched, 0 applied, 0 unknown, 1 pushed, "
        "0 push failures, 2 not pushed (no basis)"
    )
    assert "@" not in result.stderr

    again = runner.invoke(main, ["--config", str(config), "sync"])
    assert again.exit_code == 0, again.output
    assert "1 fetched, 0 applied, 0 unknown, 0 pushed, 0 push failures, 0 not pushed" in (
        again.stderr
    )
