"""The register of processing (GDPR art. 30): its content, its processors, its self-check.

The self-check runs on both engines against a real migrated database; the processors come from
real plugins found through the ``register_providers`` hook (the bundled ones, and a test plugin
registered beside them the way a third-party plugin would be).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import textwrap
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from plusjeklas_tui import db
from plusjeklas_tui.cli import main
from plusjeklas_tui.config import Settings, load_file, parse_settings
from plusjeklas_tui.context import AppContext
from plusjeklas_tui.data_categories import (
    COLUMNS,
    DataCategory,
    stale_entries,
    unclassified_columns,
)
from plusjeklas_tui.db import session_scope
from plusjeklas_tui.errors import ConfigError
from plusjeklas_tui.hookspecs import hookimpl
from plusjeklas_tui.models import (
    Administrator,
    ConsentEvent,
    ErasureReceipt,
    Organisation,
    ProviderLink,
    RestrictedRecord,
    Subscription,
    metadata,
)
from plusjeklas_tui.plugins import discover
from plusjeklas_tui.providers import (
    Change,
    ChangeOutcome,
    ErasureOutcome,
    ErasureStatus,
    Health,
    ProcessorDetails,
    Provider,
    ProviderInfo,
    ProviderKind,
    Subject,
    SyncPage,
)
from plusjeklas_tui.services.register import (
    Register,
    build_register,
    check_register,
    provider_infos_of,
    render_markdown,
    stored_categories,
)

STATEMENT = Path("/work/shared/seed/privacy-statement-plusjeklas.nl.txt")
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


# --- a test plugin, registered through the hook like any third-party plugin -------------------


class _TestProvider(Provider):
    info = ProviderInfo(
        name="surveys",
        kind=ProviderKind.NEWSLETTER,
        title="Surveyo",
        processor=ProcessorDetails(
            company="Surveyo Inc.",
            country="CA",
            data_categories=("e-mail address", "survey answers"),
            agreement="Surveyo DPA v3 (kept in the contracts folder)",
            transfer_safeguard="EU adequacy decision for Canada (2002/2/EC)",
        ),
        purposes=("newsletter",),
    )

    def health(self) -> Health:
        return Health(True)

    def sync(self, checkpoint: str | None) -> Iterator[SyncPage]:
        return iter(())

    def push(self, changes: Sequence[Change]) -> list[ChangeOutcome]:
        return [ChangeOutcome(change, True) for change in changes]

    def erase(self, subject: Subject) -> ErasureOutcome:
        return ErasureOutcome(ErasureStatus.ERASED)

    def verify_erased(self, subject: Subject) -> bool | None:
        return True

    def export(self, subject: Subject) -> dict[str, Any]:
        return {}


class _NoSafeguard(_TestProvider):
    info = ProviderInfo(
        name="cheapmail",
        kind=ProviderKind.NEWSLETTER,
        title="CheapMail",
        processor=ProcessorDetails("CheapMail LLC", "US", ("e-mail address",), "terms of use"),
    )


def _plugin_module() -> types.ModuleType:
    module = types.ModuleType("register_test_plugin")

    @hookimpl
    def register_providers(register: Callable[[type[Provider]], None]) -> None:
        register(_TestProvider)
        register(_NoSafeguard)

    module.register_providers = register_providers  # type: ignore[attr-defined]
    return module


@pytest.fixture(scope="module")
def infos() -> list[ProviderInfo]:
    """Every installed provider (the bundled three) plus the test plugin's two."""
    plugin_set = discover(extra=[("register-test", _plugin_module())])
    assert not plugin_set.failures
    found = provider_infos_of(plugin_set)
    assert {"mailchimp", "mollie", "matomo", "surveys", "cheapmail"} <= {i.name for i in found}
    return found


def settings_from(text: str, tmp_path: Path) -> Settings:
    return parse_settings(textwrap.dedent(text), tmp_path / "plusjeklas.toml")


# --- helpers for the database -------------------------------------------------------------------


def add_school(ctx: AppContext) -> int:
    with session_scope(ctx.engine) as session:
        school = Organisation(
            name="OBS De Regenboog",
            street="Schoolstraat 1",
            postcode="1234 AB",
            city="Utrecht",
            brin="05KO",
            phone="+31201234567",
            email="info@regenboog.example",
            iban="NL91ABNA0417164300",
        )
        session.add(school)
        session.flush()
        assert school.id is not None
        admin = Administrator(
            organisation_id=school.id, name="Anna Jansen", email="anna@regenboog.example"
        )
        session.add(admin)
        session.add(
            Subscription(
                organisation_id=school.id,
                plan="basis",
                start_date=dt.date(2025, 8, 1),
                status="active",
            )
        )
        session.flush()
        assert admin.id is not None
        session.add(
            ConsentEvent(
                administrator_id=admin.id,
                purpose="newsletter",
                action="granted",
                occurred_at=NOW,
                source="web-form",
            )
        )
        return admin.id


def register_for(ctx: AppContext, infos: list[ProviderInfo], **updates: Any) -> Register:
    settings = ctx.settings.model_copy(update=updates) if updates else ctx.settings
    return build_register(settings, infos, engine=ctx.engine, now=NOW)


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), "register", *args])


def migrated(path: Path) -> Path:
    engine = db.make_engine(load_file(path).database_url)
    db.upgrade(engine)
    engine.dispose()
    return path


# --- the classification of columns ------------------------------------------------------------


def test_every_column_of_the_models_is_classified() -> None:
    assert unclassified_columns(metadata) == []
    assert stale_entries(metadata) == []
    # the values the privacy statement names are personal, bookkeeping is not
    assert COLUMNS["organisation"]["iban"] == DataCategory.IBAN
    assert COLUMNS["administrator"]["email_index"] == DataCategory.ADMINISTRATOR_EMAIL
    assert COLUMNS["organisation"]["id"] is None


def test_a_new_unclassified_column_is_an_error(ctx: AppContext, infos: list[ProviderInfo]) -> None:
    grown = MetaData()
    for table in metadata.tables.values():
        table.to_metadata(grown)
    pupil = Table(
        "pupil_note",
        grown,
        Column("id", Integer, primary_key=True),
        Column("note", String(200)),
    )
    pupil.create(ctx.engine)
    register = register_for(ctx, infos)

    problems = check_register(ctx.engine, register, metadata=grown)
    assert [(p.code, p.message.split()[1]) for p in problems] == [
        ("unclassified_column", "pupil_note.id"),
        ("unclassified_column", "pupil_note.note"),
    ]

    # classified, with a category no activity names, it is an error once it holds data
    columns = {
        **COLUMNS,
        "pupil_note": {"id": None, "note": DataCategory.FREE_TEXT_NOTES},
    }
    assert check_register(ctx.engine, register, metadata=grown, columns=columns) == []
    with ctx.engine.begin() as conn:
        conn.execute(insert(pupil).values(note="struggles with reading"))
    without_notes = dataclasses.replace(
        register,
        activities=tuple(
            a for a in register.activities if DataCategory.FREE_TEXT_NOTES not in a.categories
        ),
    )
    problems = check_register(ctx.engine, without_notes, metadata=grown, columns=columns)
    assert [p.code for p in problems] == ["category_not_in_register"]
    assert "free_text_notes" in problems[0].message
    assert "pupil_note.note" in problems[0].message
    assert "struggles" not in problems[0].message  # names columns, never values


def test_a_classification_of_a_vanished_column_is_reported(
    ctx: AppContext, infos: list[ProviderInfo]
) -> None:
    columns = {**COLUMNS, "organisation": {**COLUMNS["organisation"], "fax": None}}
    problems = check_register(ctx.engine, register_for(ctx, infos), columns=columns)
    assert [(p.code, "organisation.fax" in p.message) for p in problems] == [
        ("stale_classification", True)
    ]


# --- the self-check against the database (both engines) --------------------------------------


def test_clean_database_passes(ctx: AppContext, infos: list[ProviderInfo]) -> None:
    add_school(ctx)
    with ctx.engine.connect() as conn:
        held = stored_categories(conn, metadata)
    # the check really counted what is stored, and only that
    assert DataCategory.SCHOOL_NAME_ADDRESS in held
    assert DataCategory.ADMINISTRATOR_NAME in held
    assert DataCategory.CONSENT in held
    assert DataCategory.PAYMENT_RECORDS not in held
    assert "organisation.iban" in held[DataCategory.IBAN]
    assert check_register(ctx.engine, register_for(ctx, infos)) == []


def test_payment_records_kept_while_the_register_does_not_name_them(
    ctx: AppContext, infos: list[ProviderInfo]
) -> None:
    """Restricted payment records in the database, but the configuration says none are kept
    here (``keep_local_iban_as_payment_record = false``): the register is wrong."""
    add_school(ctx)
    with session_scope(ctx.engine) as session:
        receipt = ErasureReceipt(
            subject_type="organisation",
            subject_id=99,
            erased_at=NOW,
            basis="request",
            rule="erasure request",
            actor="sascha",
        )
        session.add(receipt)
        session.flush()
        assert receipt.id is not None
        session.add(
            RestrictedRecord(
                receipt_id=receipt.id,
                category="payment record",
                legal_basis="art. 52 AWR",
                keep_until=dt.date(2033, 12, 31),
                payload='{"iban": "NL91ABNA0417164300"}',
            )
        )
    assert ctx.settings.retention.keep_local_iban_as_payment_record is False
    problems = check_register(ctx.engine, register_for(ctx, infos))
    assert [p.code for p in problems] == ["category_not_in_register"]
    assert "payment_records" in problems[0].message
    assert "restricted_record.payload" in problems[0].message
    assert "NL91" not in problems[0].message

    keeping = ctx.settings.retention.model_copy(update={"keep_local_iban_as_payment_record": True})
    register = register_for(ctx, infos, retention=keeping)
    assert DataCategory.PAYMENT_RECORDS in register.categories_named()
    assert check_register(ctx.engine, register) == []

    # the command prints the register, then the problem, and exits 1
    result = run(ctx.settings.source or Path())
    assert result.exit_code == 1
    assert "# Register of processing activities" in result.stdout
    assert "Problem: the database holds 'payment_records'" in result.stderr
    check = run(ctx.settings.source or Path(), "--check")
    assert check.exit_code == 1
    assert check.stdout == ""


def test_a_provider_holding_identifiers_must_be_a_recipient_in_use(
    ctx: AppContext, infos: list[ProviderInfo]
) -> None:
    admin_id = add_school(ctx)
    with session_scope(ctx.engine) as session:
        session.add(
            ProviderLink(
                provider="mailchimp",
                subject_type="administrator",
                subject_id=admin_id,
                external_id="a1b2c3",
            )
        )
    problems = check_register(ctx.engine, register_for(ctx, infos))
    assert [p.code for p in problems] == ["recipient_not_in_register"]
    assert "'mailchimp'" in problems[0].message

    assert "mailchimp" not in ctx.settings.plugins
    enabled = settings_from('[plugins.mailchimp]\nenabled = true\nlist_id = "x"\n', Path())
    register = register_for(ctx, infos, plugins=enabled.plugins)
    assert register.processor_names() == {"mailchimp"}
    assert check_register(ctx.engine, register) == []


def test_clean_database_exits_0_from_the_command(ctx: AppContext) -> None:
    add_school(ctx)
    config = ctx.settings.source
    assert config is not None
    result = run(config)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Register of processing activities (GDPR art. 30(1))")
    check = run(config, "--check")
    assert check.exit_code == 0
    assert check.stdout == ""
    assert "names every category" in check.stderr
    dutch = run(config, "--language", "nl")
    assert dutch.stdout.startswith("# Register van verwerkingsactiviteiten")
    as_json = json.loads(run(config, "--json").stdout)
    assert as_json["problems"] == []
    assert as_json["register"]["controller"]["name"] == "Jongleren.biz"
    assert as_json["register"]["recipients"] == []  # no plugin enabled in this config


def test_security_measures_are_read_from_the_live_system(
    ctx: AppContext, engine_name: str, infos: list[ProviderInfo]
) -> None:
    register = register_for(ctx, infos)
    checked = [m.text[1] for m in register.security if m.checked]
    assert f"Key file {ctx.settings.key_file} with mode 0600 (not readable by others)" in checked
    if engine_name == "sqlite":
        assert "SQLite secure_delete on: erased data is overwritten in the file" in checked
    else:
        assert "This database connection uses TLS: no" in checked  # the test server is local
        assert any("PostgreSQL on this machine" in m.text[1] for m in register.security)
    assert any("WARNING: allow_user_override = true" in m.text[1] for m in register.security)
    assert not any(
        "WARNING" in m.text[1] for m in register_for(ctx, infos, allow_user_override=False).security
    )


# --- content (no database) ----------------------------------------------------------------------

FULL = """\
language = "nl"
purposes = ["workshops"]

[controller]
name = "Jongleren.biz"
address = "Hoofdstraat 12, 3512 AB Utrecht"
contact_email = "sascha@jongleren.biz"
phone = "030 123 4567"
chamber_of_commerce = "1234 5678"
dpo = "geen FG; privacy: Sascha"

[retention]
general_after_end_months = 30
analytics_months = 14

[processing]
organisational_measures = ["Laptops hebben volledige schijfversleuteling"]

[[processing.activities]]
name = "Workshopaanmeldingen op papier"
purpose = "Deelnemers van workshops registreren"
legal_basis = ["contract"]
data_subjects = ["deelnemers"]
data_categories = ["naam", "telefoonnummer"]
retention = "1 jaar na de workshop"

[plugins.mailchimp]
enabled = true
list_id = "abc"

[plugins.surveys]
enabled = true
"""


def section(markdown: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}.*?$(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    assert match, heading
    return match.group(1)


def test_markdown_holds_every_field_of_article_30(
    tmp_path: Path, infos: list[ProviderInfo]
) -> None:
    settings = settings_from(FULL, tmp_path)
    markdown = render_markdown(build_register(settings, infos, now=NOW), "nl")
    headings = re.findall(r"^## ([a-g])", markdown, re.M)
    assert headings == ["a", "b", "d", "e", "f", "g"]  # b-c share one section

    controller = section(markdown, "a.")
    for value in (
        "Jongleren.biz",
        "Hoofdstraat 12, 3512 AB Utrecht",
        "sascha@jongleren.biz",
        "+31301234567",
        "12345678",
        "geen FG; privacy: Sascha",
    ):
        assert value in controller

    activities = section(markdown, "b-c.")
    # the privacy statement's purposes, in its own words
    for purpose in (
        "Het afhandelen van betalingen",
        "Verzenden van onze nieuwsbrief",
        "Je te kunnen bellen indien dit nodig is om onze dienstverlening uit te kunnen voeren",
        "wijzigingen van onze diensten en producten",
        "Je te kunnen bereiken bij vragen voor feedback",
    ):
        assert purpose in activities, purpose
    statement_purposes = re.findall(r"^- (.+?)[;.]$", STATEMENT.read_text(), re.M)
    assert len(statement_purposes) == 5
    for statement_purpose in statement_purposes:
        assert statement_purpose in activities, statement_purpose
    for field in (
        "Doel:",
        "Grondslag:",
        "Categorieën betrokkenen:",
        "Categorieën persoonsgegevens:",
        "Ontvangers:",
        "Doorgifte buiten de EER:",
        "Bewaartermijn:",
    ):
        assert activities.count(field) == len(re.findall(r"^### ", activities, re.M))

    blocks = {b.split("\n", 1)[0]: b for b in re.split(r"^### \d+\. ", activities, flags=re.M)[1:]}
    newsletter = blocks["Nieuwsbrief"]
    announcements = blocks["Dienstberichten"]
    assert "toestemming (art. 6 lid 1 sub a AVG)" in newsletter
    assert "11.7" in newsletter
    assert "overeenkomst (art. 6 lid 1 sub b AVG)" in announcements
    assert "toestemming" not in announcements.split("Grondslag:")[1].split("\n")[0]
    assert "Mailchimp" in newsletter and "Mailchimp (US)" in newsletter
    assert "wettelijke verplichting" in blocks["Het afhandelen van betalingen"]
    assert "Toestemmingsdoel 'workshops'" in blocks  # an extra consent purpose
    assert "Workshopaanmeldingen op papier" in blocks  # from [[processing.activities]]
    assert "naam, telefoonnummer" in blocks["Workshopaanmeldingen op papier"]

    recipients = section(markdown, "d.")
    assert "The Rocket Science Group LLC" in recipients
    assert "| US |" in recipients
    assert "Surveyo Inc." in recipients and "| CA |" in recipients

    transfers = section(markdown, "e.")
    assert "EU-US Data Privacy Framework" in transfers
    assert "EU adequacy decision for Canada" in transfers

    retention = section(markdown, "f.")
    assert "30 maanden" in retention  # from [retention], not a fixed text
    assert "24 maanden" not in markdown
    assert "14 maanden" in activities

    security = section(markdown, "g.")
    assert "AES-256-GCM" in security
    assert "Laptops hebben volledige schijfversleuteling" in security


def test_the_english_register_has_the_same_fields(
    tmp_path: Path, infos: list[ProviderInfo]
) -> None:
    settings = settings_from(FULL, tmp_path)
    markdown = render_markdown(build_register(settings, infos, now=NOW), "en")
    assert re.findall(r"^## ([a-g])", markdown, re.M) == ["a", "b", "d", "e", "f", "g"]
    assert "Sending our newsletter" in markdown
    assert "Service announcements" in markdown
    assert "30 months after the school's last subscription ended" in markdown


def test_processors_are_those_of_enabled_plugins_only(
    tmp_path: Path, infos: list[ProviderInfo]
) -> None:
    enabled = build_register(settings_from(FULL, tmp_path), infos, now=NOW)
    assert enabled.processor_names() == {"mailchimp", "surveys"}
    newsletter = next(a for a in enabled.activities if a.key == "newsletter")
    assert set(newsletter.recipients) == {"mailchimp", "surveys"}
    assert {r.name for r in enabled.transfers} == {"mailchimp", "surveys"}
    assert enabled.problems == ()

    disabled = build_register(
        settings_from(FULL.replace("enabled = true", "enabled = false"), tmp_path), infos, now=NOW
    )
    assert disabled.processor_names() == set()
    assert all(a.recipients == () for a in disabled.activities)
    assert "mailchimp" in disabled.not_in_use and "surveys" in disabled.not_in_use
    markdown = render_markdown(disabled, "en")
    assert "The Rocket Science Group" not in markdown
    assert "Surveyo Inc." not in markdown
    assert "No processors in use" in section(markdown, "d.")
    assert "No transfers outside the EEA." in section(markdown, "e.")


def test_a_transfer_without_safeguard_and_a_missing_plugin_are_problems(
    tmp_path: Path, infos: list[ProviderInfo]
) -> None:
    settings = settings_from(
        "[plugins.cheapmail]\nenabled = true\n[plugins.ghost]\nenabled = true\n", tmp_path
    )
    register = build_register(settings, infos, now=NOW)
    assert sorted(p.code for p in register.problems) == [
        "missing_plugin",
        "transfer_without_safeguard",
    ]
    assert "| US | MISSING |" in render_markdown(register, "en")


# --- the [controller] and [processing] configuration ----------------------------------------


def test_controller_defaults_come_from_the_privacy_statement() -> None:
    controller = Settings().controller
    assert controller.name == "Jongleren.biz"
    assert controller.contact_email == "sascha@jongleren.biz"
    assert "sascha@jongleren.biz" in STATEMENT.read_text()
    assert controller.phone is None and controller.address is None


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[controller]\ncontact_email = "sascha"\n', "line 2: controller.contact_email: must be"),
        ('[controller]\nphone = "06-1234abcd"\n', "line 2: controller.phone: must be a phone"),
        ('[controller]\nchamber_of_commerce = "1234"\n', "line 2: controller.chamber_of_commerce"),
        ('[controller]\nnaam = "x"\n', "line 2: controller.naam: unknown key (did you mean 'name'"),
        (
            '[[processing.activities]]\nname = "x"\npurpose = "y"\nlegal_basis = ["whim"]\n'
            'data_subjects = ["a"]\ndata_categories = ["b"]\nretention = "c"\n',
            "processing.activities.0.legal_basis.0: Input should be 'consent'",
        ),
    ],
)
def test_bad_controller_and_processing_keys_name_file_line_and_rule(
    tmp_path: Path, toml: str, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_a_viewer_may_read_the_register(config_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(config_path), "--user", "vera", "register"])
    assert result.exit_code == 0, result.output
    assert "## a. Controller and contact details" in result.stdout


def test_an_enabled_plugin_shows_up_through_the_command(
    write_config: Callable[..., Path],
) -> None:
    config = migrated(write_config(extra="[plugins.mollie]\nenabled = true\n"))
    result = run(config, "--language", "en")
    assert result.exit_code == 0, result.output
    recipients = section(result.stdout, "d.")
    assert "Mollie B.V." in recipients and "| NL |" in recipients
    assert "payment records" in recipients  # what Mollie keeps after an erasure
    assert "Mailchimp" not in recipients


def test_a_hosted_matomo_is_named_with_its_own_company_and_transfer(tmp_path: Path) -> None:
    """The Matomo plugin takes its processor details from its table: the register uses the
    instance's details, built without reading any secret."""
    hosted = """\
    [plugins.matomo]
    enabled = true
    api_key_env = "REGISTER_TEST_UNSET_TOKEN"
    base_url = "https://analytics.example.nz"
    site_id = 1
    company = "Kiwi Analytics Ltd"
    country = "nz"
    agreement = "Kiwi DPA 2026"
    transfer_safeguard = "EU adequacy decision for New Zealand (2013/65/EU)"
    """
    settings = settings_from(hosted, tmp_path)
    plugin_set = discover()
    register = build_register(settings, provider_infos_of(plugin_set, settings), now=NOW)
    (matomo,) = register.recipients
    assert (matomo.company, matomo.country) == ("Kiwi Analytics Ltd", "NZ")
    assert [r.name for r in register.transfers] == ["matomo"]
    assert "EU adequacy decision for New Zealand" in section(render_markdown(register, "en"), "e.")
    # without the settings, the class's own (self-hosted, NL) details
    (plain,) = build_register(settings, provider_infos_of(plugin_set), now=NOW).recipients
    assert (plain.company, plain.country) == ("Jongleren.biz (self-hosted Matomo)", "NL")
