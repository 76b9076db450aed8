"""Strings of the Retention and Deletions screens, legal holds and erasure on request."""

STRINGS: dict[str, tuple[str, str]] = {
    # --- navigation ---------------------------------------------------------------------------
    "nav.retention": ("Bewaartermijn", "Retention"),
    "nav.deletions": ("Verwijderingen", "Deletions"),
    # --- the Retention screen ----------------------------------------------------------------
    "retention.title.now": (
        "Nu te verwijderen (volgens de bewaarregels)",
        "Due for deletion now (by the retention rules)",
    ),
    "retention.title.within": (
        "Nu te verwijderen en binnen {days} dagen",
        "Due for deletion now and within {days} days",
    ),
    "retention.summary": (
        "Nu te verwijderen: {due} (scholen: {organisations}) · geblokkeerd: {held} · "
        "in de lijst: {listed}",
        "Due now: {due} (schools: {organisations}) · on hold: {held} · listed: {listed}",
    ),
    "retention.loading": ("Laden…", "Loading…"),
    "retention.empty": ("Niets te verwijderen.", "Nothing is due for deletion."),
    "retention.sweep": ("Opruimen", "Sweep"),
    "retention.toggle_window": ("Ook {days} dagen", "Also {days} days"),
    "retention.cancel": ("Stop", "Stop"),
    "retention.col.brin": ("BRIN", "BRIN"),
    "retention.col.school": ("School", "School"),
    "retention.col.rule": ("Regel", "Rule"),
    "retention.col.deadline": ("Bewaren tot", "Keep until"),
    "retention.col.state": ("Status", "State"),
    "retention.col.providers": ("Verwerkers", "Providers"),
    "retention.kind.administrator": ("beheerder #{id}", "administrator #{id}"),
    "retention.kind.restricted_record": ("betaalgegevens #{id}", "payment record #{id}"),
    "retention.rule.general": ("algemeen", "general"),
    "retention.rule.administrator_left": ("vertrokken", "left school"),
    "retention.rule.payment_records_expired": ("fiscaal verlopen", "fiscal, expired"),
    "retention.state.due": ("te verwijderen", "due"),
    "retention.state.upcoming": ("binnenkort", "upcoming"),
    "retention.state.hold": ("⏸ blokkade ({who})", "⏸ on hold ({who})"),
    "retention.none": ("—", "—"),
    "retention.nothing_due": ("Er is nu niets te verwijderen.", "Nothing is due for deletion."),
    "retention.confirm.title": ("Opruimen bevestigen", "Confirm the sweep"),
    "retention.confirm.question": (
        "{due} onderdelen zijn te verwijderen, waarvan {organisations} scholen. Dit kan niet "
        "ongedaan worden gemaakt. Typ het aantal {what} ({expected}) om ze te verwijderen.",
        "{due} subjects are due, {organisations} of them schools. This cannot be undone. "
        "Type the number of {what} ({expected}) to delete them.",
    ),
    "retention.confirm.what.organisations": ("scholen", "schools"),
    "retention.confirm.what.subjects": ("onderdelen", "subjects"),
    "retention.confirm.placeholder": ("Aantal", "Number"),
    "retention.confirm.wrong": (
        "Dat is niet {expected}: er is niets verwijderd.",
        "That is not {expected}: nothing was deleted.",
    ),
    "retention.confirm.delete": ("Verwijderen", "Delete"),
    "retention.confirm.cancel": ("Annuleren", "Cancel"),
    "retention.not_confirmed": (
        "Niet bevestigd: er is niets verwijderd.",
        "Not confirmed: nothing was deleted.",
    ),
    "retention.progress.sweep": ("Verwijderen: {done}/{total}", "Deleting: {done}/{total}"),
    "retention.progress.deliver": (
        "Doorgeven aan verwerkers: {done}/{total}",
        "Telling the providers: {done}/{total}",
    ),
    "retention.swept": (
        "{erased} verwijderd, {skipped} overgeslagen, {failed} mislukt; {tasks} "
        "verwijdertaken voor verwerkers",
        "{erased} erased, {skipped} skipped, {failed} failed; {tasks} deletion tasks for providers",
    ),
    "retention.stopping": (
        "Stopt na het huidige onderdeel; de rest blijft staan.",
        "Stopping after the current subject; the rest stays.",
    ),
    # --- delivery to the providers (Retention, Deletions, record, background) ---------------
    "deletions.delivered": (
        "Verwerkers: {done} bevestigd, {failed} mislukt (wordt herhaald), {waiting} wacht",
        "Providers: {done} confirmed, {failed} failed (will be retried), {waiting} waiting",
    ),
    "deletions.delivered.nothing": (
        "Verwerkers: niets door te geven.",
        "Providers: nothing to deliver.",
    ),
    "deletions.delivery_failed": (
        "Doorgeven aan verwerkers lukte niet: {reason}",
        "Delivery to the providers failed: {reason}",
    ),
    # --- the Deletions screen ----------------------------------------------------------------
    "deletions.title": (
        "Verwijderingen bij verwerkers (wachtrij)",
        "Deletions at providers (outbox)",
    ),
    "deletions.summary": (
        "{pending} open · {failed} mislukt (wordt herhaald) · {shown} getoond",
        "{pending} pending · {failed} failed (will be retried) · {shown} shown",
    ),
    "deletions.empty": ("Geen openstaande verwijderingen.", "No pending deletions."),
    "deletions.retry": ("Opnieuw", "Retry"),
    "deletions.deliver": ("Nu doorgeven", "Deliver now"),
    "deletions.toggle_done": ("Afgehandeld", "Done too"),
    "deletions.cancel": ("Stop", "Stop"),
    "deletions.retried": (
        "Taak {id} wordt bij de volgende ronde opnieuw geprobeerd.",
        "Task {id} will be tried again in the next round.",
    ),
    "deletions.stopping": (
        "Stopt na de lopende verzoeken.",
        "Stopping after the requests under way.",
    ),
    "deletions.col.id": ("Taak", "Task"),
    "deletions.col.provider": ("Verwerker", "Provider"),
    "deletions.col.subject": ("Wat", "What"),
    "deletions.col.state": ("Status", "State"),
    "deletions.col.attempts": ("Pog.", "Tries"),
    "deletions.col.next": ("Volgende", "Next"),
    "deletions.col.reason": ("Laatste fout", "Last error"),
    "deletions.state.pending": ("open", "pending"),
    "deletions.state.failed": ("mislukt", "failed"),
    "deletions.state.busy": ("bezig", "in progress"),
    "deletions.state.done": ("afgehandeld", "done"),
    "deletions.detail": ("Taak {id} · {provider}: {reason}", "Task {id} · {provider}: {reason}"),
    "deletions.subject.organisation": ("school #{id}", "school #{id}"),
    "deletions.subject.administrator": ("beheerder #{id}", "administrator #{id}"),
    "deletions.now": ("nu", "now"),
    # --- dashboard tiles ----------------------------------------------------------------------
    "dashboard.deletions.pending": ("Open", "Pending"),
    "dashboard.deletions.failed": ("Mislukt, wordt herhaald", "Failed, will be retried"),
    # --- organisation list --------------------------------------------------------------------
    "lists.deadline.hold": ("⏸ blokkade", "⏸ on hold"),
    # --- the record: legal hold and erasure on request ---------------------------------------
    "record.retention.hold": ("Blokkade", "Legal hold"),
    "record.hold.none": ("geen", "none"),
    "record.hold.by": (
        "⏸ verwijderen gepauzeerd — gezet door {who} op {when}",
        "⏸ deletion paused — set by {who} on {when}",
    ),
    "record.hold.reason": ("Reden: {reason}", "Reason: {reason}"),
    "record.set_hold": ("Blokkeren", "Hold"),
    "record.lift_hold": ("Blokkade opheffen", "Lift hold"),
    "record.erase": ("Wissen", "Erase"),
    "record.hold.title": ("Juridische blokkade zetten", "Set a legal hold"),
    "record.hold.explain": (
        "Zolang de blokkade staat, wordt {name} niet verwijderd, ook niet op verzoek. "
        "Alleen beheerders zien de reden.",
        "While the hold stands, {name} is not deleted, not even on request. Only "
        "administrators see the reason.",
    ),
    "record.hold.placeholder": ("Reden (verplicht)", "Reason (required)"),
    "record.hold.required": (
        "Vul een reden in: zeg waarom verwijderen moet wachten.",
        "Give a reason: say why deletion must wait.",
    ),
    "record.hold.too_long": (
        "De reden mag hoogstens {max} tekens zijn.",
        "The reason may be at most {max} characters.",
    ),
    "record.hold.save": ("Blokkeren", "Set hold"),
    "record.hold.cancel": ("Annuleren", "Cancel"),
    "record.hold.set": ("Blokkade gezet.", "Legal hold set."),
    "record.hold.lift_question": (
        "De blokkade op {name} opheffen? Daarna geldt de bewaartermijn weer.",
        "Lift the legal hold on {name}? Its retention deadline applies again.",
    ),
    "record.hold.lifted": ("Blokkade opgeheven.", "Legal hold lifted."),
    "record.erase.title": ("Wissen op verzoek (AVG art. 17)", "Erase on request (GDPR art. 17)"),
    "record.erase.explain": (
        "{name} en alle beheerders worden hier gewist en bij elke verwerker die een kopie "
        "heeft. Kies de grond van het verzoek.",
        "{name} and all its administrators are erased here and at every provider that holds "
        "a copy. Choose the ground of the request.",
    ),
    "record.erase.confirm": (
        "Typ de BRIN ({brin}) om te bevestigen. Dit kan niet ongedaan worden gemaakt.",
        "Type the BRIN ({brin}) to confirm. This cannot be undone.",
    ),
    "record.erase.placeholder": ("BRIN", "BRIN"),
    "record.erase.no_reason": ("Kies een grond.", "Choose a ground."),
    "record.erase.wrong_brin": (
        "Dat is niet de BRIN {brin}: er is niets gewist.",
        "That is not the BRIN {brin}: nothing was erased.",
    ),
    "record.erase.go": ("Wissen", "Erase"),
    "record.erase.cancel": ("Annuleren", "Cancel"),
    "record.erase.done": (
        "Gewist; {tasks} verwijdertaken voor verwerkers.",
        "Erased; {tasks} deletion tasks for providers.",
    ),
    "record.erase.reason.no_longer_needed": (
        "art. 17(1)(a): niet meer nodig voor het doel",
        "art. 17(1)(a): no longer needed for its purpose",
    ),
    "record.erase.reason.consent_withdrawn": (
        "art. 17(1)(b): toestemming ingetrokken",
        "art. 17(1)(b): consent withdrawn",
    ),
    "record.erase.reason.objection": (
        "art. 17(1)(c): bezwaar tegen de verwerking",
        "art. 17(1)(c): objection to the processing",
    ),
    "record.erase.reason.unlawful": (
        "art. 17(1)(d): onrechtmatig verwerkt",
        "art. 17(1)(d): processed unlawfully",
    ),
    "record.erase.reason.legal_obligation": (
        "art. 17(1)(e): wettelijke plicht tot wissen",
        "art. 17(1)(e): erasure required by law",
    ),
    "record.erase.reason.child": (
        "art. 17(1)(f): gegevens van een kind",
        "art. 17(1)(f): collected from a child",
    ),
}
