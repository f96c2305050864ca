"""The clinician's forms that add to and edit a patient record.

Each form builds history-format data from its fields (:mod:`trdnav.web.forms`) and stores it with
:func:`trdnav.storage.records.change` at the record version the form was opened at (its hidden
``version`` field): the core validates it exactly as it validates a history file, and its problems
are shown next to the fields (422), a concurrent save is reported (409), nothing is stored on
either. Success redirects (303) to the patient page, where any new alert comes first.

A choice that changes the rest of a form (treatment type, instrument, lab test, gene) is a GET of
the same page with a query parameter: htmx requests it (``HX-Request``) and swaps in the part it
returns; without JavaScript the whole page comes back with that choice made.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from trdnav.core.history import TREATMENT_TYPES
from trdnav.errors import InputError
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Instrument
from trdnav.storage import records, repository
from trdnav.storage.repository import StaleRecordError
from trdnav.web import forms
from trdnav.web.deps import CurrentUser, KnowledgeDep, SessionDep, TodayDep, Writer, client_ip
from trdnav.web.pages import render

router = APIRouter(include_in_schema=False)

Index = Annotated[int, Path(ge=0, le=100000)]
Choice = Annotated[str, Query(max_length=64)]
HistoryData = dict[str, Any]


class Outcome(StrEnum):
    STORED = "stored"
    INVALID = "invalid"
    STALE = "stale"


class _EntryGone(Exception):
    """The entry a form edits is no longer at its index: the record changed meanwhile."""


def patient_url(patient_id: str) -> str:
    return "/patients/" + quote(patient_id, safe="")


async def submitted(request: Request) -> dict[str, str]:
    """The form's text fields, stripped (read here, on the event loop, before the handler)."""
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str)}


# Form handlers are plain functions taking the parsed form from this dependency: FastAPI runs
# them in its thread pool, so their database work and assessment never block the event loop
# (an ``async`` handler waiting for a pooled connection on the loop could deadlock the server).
Submitted = Annotated[dict[str, str], Depends(submitted)]


def version_of(values: forms.Values) -> int | None:
    text = values.get("version", "")
    return int(text) if text.isdigit() else None


def wants_part(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def opened(request: Request, db: Session, patient_id: str, user: CurrentUser) -> tuple[Any, int]:
    """The stored history as data, and its version (an audited read)."""
    history, version = repository.load_record(db, patient_id, user.who, client_ip(request))
    return records.history_data(history), version


def store(
    request: Request,
    db: Session,
    kb: Knowledge,
    today: date,
    user: CurrentUser,
    patient_id: str,
    version: int | None,
    entry: forms.Entry,
    edit: Callable[[HistoryData], str],
) -> Outcome:
    """Apply ``edit`` (which returns the path of the entry it changed) and store the record.

    When the form refused fields itself, the edited record is still validated, so that every
    problem is shown at once, but nothing is stored.
    """
    ip = client_ip(request)
    prefix = ""

    def apply(data: HistoryData) -> None:
        nonlocal prefix
        prefix = edit(data)

    if version is None:
        return Outcome.STALE
    try:
        if entry.errors:
            data, _ = opened(request, db, patient_id, user)
            data.pop("assessed_on", None)
            apply(data)
            records.validate(data, kb, today)
            return Outcome.INVALID
        records.change(db, patient_id, apply, kb, today, user.who, version, ip)
    except InputError as exc:
        entry.place(exc.problems, prefix)
        return Outcome.INVALID
    except (StaleRecordError, _EntryGone):
        return Outcome.STALE
    return Outcome.STORED


def append(key: str, item: dict[str, Any]) -> Callable[[HistoryData], str]:
    def edit(data: HistoryData) -> str:
        entries = data.setdefault(key, [])
        entries.append(item)
        return f"{key}[{len(entries) - 1}]"

    return edit


def form_page(
    request: Request,
    template: str,
    today: date,
    kb: Knowledge,
    *,
    patient_id: str,
    version: int,
    values: forms.Values,
    entry: forms.Entry | None = None,
    outcome: Outcome | None = None,
    adds: bool = True,
    **context: Any,
) -> Response:
    """A form page; after a refused save, with the entered values, the problems and a status."""
    status = {Outcome.INVALID: 422, Outcome.STALE: 409}.get(outcome, 200) if outcome else 200
    page = {
        "patient_id": patient_id,
        "base": patient_url(patient_id) if patient_id else "",
        "version": version,
        "values": values,
        "errors": entry.errors if entry else {},
        "top": entry.top if entry else [],
        "stale": outcome is Outcome.STALE,
        "adds": adds,
        "label_of": lambda name: forms.field_label(name, kb),
        **context,
    }
    return render(request, template, page, status_code=status, today=today)


def refused(db: Session, patient_id: str, outcome: Outcome, version: int | None, adds: bool) -> int:
    """The version a refused form is shown with again.

    After a conflict an *add* form carries the current version (saving again adds the entry to
    the record as it is now); an *edit* form keeps the old one, so the clinician reopens it and
    sees the other change before overwriting anything.
    """
    if outcome is Outcome.STALE and adds:
        current = repository.patient_version(db, patient_id)
        return current if current is not None else 0
    return version or 0


def done(patient_id: str) -> Response:
    return RedirectResponse(patient_url(patient_id), status_code=303)


# --- patient and episode -------------------------------------------------------------------------


def _patient_page(
    request: Request,
    today: date,
    kb: Knowledge,
    patient_id: str,
    version: int,
    values: forms.Values,
    entry: forms.Entry | None = None,
    outcome: Outcome | None = None,
) -> Response:
    return form_page(
        request,
        "records/patient_form.html",
        today,
        kb,
        patient_id=patient_id,
        version=version,
        values=values,
        entry=entry,
        outcome=outcome,
        adds=False,
        options=forms.patient_options(),
        conditions=[
            (t, [(s, s.replace("_", " ")) for s in t.statuses]) for t in kb.conditions.values()
        ],
        staging_open=any(
            k.startswith("staging_inputs.") and v
            for k, v in [*values.items(), *(entry.errors.items() if entry else [])]
        ),
        title="Edit patient and episode" if patient_id else "New patient",
        action=patient_url(patient_id) + "/edit" if patient_id else "/patients/new",
    )


@router.get("/patients/new")
def new_patient_form(kb: KnowledgeDep, today: TodayDep, user: Writer, request: Request) -> Response:
    return _patient_page(request, today, kb, "", 0, {})


@router.post("/patients/new")
def new_patient(
    request: Request,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    values: Submitted,
) -> Response:
    entry = forms.patient_entry(values, kb)
    patient_id = entry.data["patient"]["id"]
    taken = "a patient with this identifier already exists: open their record instead"
    if "patient.id" not in entry.errors and repository.patient_version(db, patient_id) is not None:
        entry.errors["patient.id"] = taken
    data: HistoryData = {}
    forms.apply_patient(data, entry)
    try:
        history = records.validate(data, kb, today)
    except InputError as exc:
        entry.place(exc.problems)
    if not (entry.errors or entry.top):
        try:
            records.save(db, history, kb, today, user.who, 0, client_ip(request))
            return done(patient_id)
        except StaleRecordError:  # created by someone else since the check above
            entry.errors["patient.id"] = taken
    return _patient_page(request, today, kb, "", 0, values, entry, Outcome.INVALID)


@router.get("/patients/{patient_id}/edit")
def edit_patient_form(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
) -> Response:
    data, version = opened(request, db, patient_id, user)
    return _patient_page(request, today, kb, patient_id, version, forms.patient_values(data))


@router.post("/patients/{patient_id}/edit")
def edit_patient(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    values: Submitted,
) -> Response:
    version = version_of(values)
    entry = forms.patient_entry(values, kb, patient_id)

    def edit(data: HistoryData) -> str:
        forms.apply_patient(data, entry)
        return ""

    outcome = store(request, db, kb, today, user, patient_id, version, entry, edit)
    if outcome is Outcome.STORED:
        return done(patient_id)
    shown = refused(db, patient_id, outcome, version, adds=False)
    return _patient_page(request, today, kb, patient_id, shown, values, entry, outcome)


# --- treatments ----------------------------------------------------------------------------------


def _treatment_context(
    kb: Knowledge, kind: str, values: forms.Values, extra_rows: int, row_added: bool = False
) -> Any:
    return {
        "kind": kind,
        "kinds": [(t, forms.TREATMENT_LABELS[t]) for t in TREATMENT_TYPES],
        "options": forms.treatment_options(kind),
        "defaults": forms.treatment_defaults(kind),
        "drugs": forms.drug_names(kb) if kind == "medication" else [],
        "rows": forms.dose_rows(values, extra_rows),
        "max_rows": forms.MAX_DOSE_ROWS,
        "row_added": row_added,
    }


def _treatment_page(
    request: Request,
    today: date,
    kb: Knowledge,
    patient_id: str,
    version: int,
    values: forms.Values,
    kind: str,
    index: int | None = None,
    entry: forms.Entry | None = None,
    outcome: Outcome | None = None,
    extra_rows: int = 0,
    row_added: bool = False,
) -> Response:
    base = patient_url(patient_id)
    action = f"{base}/treatments/new" if index is None else f"{base}/treatments/{index}/edit"
    return form_page(
        request,
        "records/treatment_form.html",
        today,
        kb,
        patient_id=patient_id,
        version=version,
        values=values,
        entry=entry,
        outcome=outcome,
        adds=index is None,
        index=index,
        action=action,
        title="Add a treatment" if index is None else "Edit treatment",
        **_treatment_context(kb, kind, values, extra_rows, row_added),
    )


def _kind(value: str) -> str:
    return value if value in TREATMENT_TYPES else "medication"


@router.get("/patients/{patient_id}/treatments/new")
def new_treatment_form(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    chosen: Annotated[str, Query(alias="type", max_length=64)] = "medication",
) -> Response:
    kind = _kind(chosen)
    if wants_part(request):
        context: dict[str, Any] = {"values": {}, "errors": {}, "label_of": forms.field_label}
        context |= _treatment_context(kb, kind, {}, 2)
        context["action"] = f"{patient_url(patient_id)}/treatments/new"
        return render(request, "records/_treatment_fields.html", context, today=today)
    _, version = opened(request, db, patient_id, user)
    return _treatment_page(request, today, kb, patient_id, version, {}, kind, extra_rows=2)


@router.post("/patients/{patient_id}/treatments/new")
def new_treatment(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    values: Submitted,
) -> Response:
    version = version_of(values)
    kind = _kind(values.get("type", ""))
    if "add_row" in values:
        return _treatment_page(
            request, today, kb, patient_id, version or 0, values, kind, None, extra_rows=1,
            row_added=True,
        )  # fmt: skip
    entry = forms.treatment_entry(values, kind)
    outcome = store(
        request, db, kb, today, user, patient_id, version, entry, append("treatments", entry.data)
    )
    if outcome is Outcome.STORED:
        return done(patient_id)
    shown = refused(db, patient_id, outcome, version, adds=True)
    return _treatment_page(
        request, today, kb, patient_id, shown, values, kind, None, entry, outcome
    )


def _stored_treatment(data: HistoryData, index: int) -> dict[str, Any]:
    treatments = data.get("treatments", [])
    if index >= len(treatments):
        raise HTTPException(404, "No such treatment in this record.")
    treatment: dict[str, Any] = treatments[index]
    return treatment


@router.get("/patients/{patient_id}/treatments/{index}/edit")
def edit_treatment_form(
    request: Request,
    patient_id: str,
    index: Index,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
) -> Response:
    data, version = opened(request, db, patient_id, user)
    values = forms.treatment_values(_stored_treatment(data, index))
    return _treatment_page(
        request, today, kb, patient_id, version, values, values["type"], index, extra_rows=1
    )


def _replace(index: int, kind: str, item: dict[str, Any]) -> Callable[[HistoryData], str]:
    def edit(data: HistoryData) -> str:
        treatments = data.get("treatments", [])
        if index >= len(treatments) or treatments[index].get("type") != kind:
            raise _EntryGone
        treatments[index] = item
        return f"treatments[{index}]"

    return edit


@router.post("/patients/{patient_id}/treatments/{index}/edit")
def edit_treatment(
    request: Request,
    patient_id: str,
    index: Index,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    values: Submitted,
) -> Response:
    version = version_of(values)
    data, _ = opened(request, db, patient_id, user)
    kind = str(_stored_treatment(data, index)["type"])  # an edit keeps the treatment's type
    values["type"] = kind
    if "add_row" in values:
        return _treatment_page(
            request, today, kb, patient_id, version or 0, values, kind, index, extra_rows=1,
            row_added=True,
        )  # fmt: skip
    entry = forms.treatment_entry(values, kind)
    edit = _replace(index, kind, entry.data)
    outcome = store(request, db, kb, today, user, patient_id, version, entry, edit)
    if outcome is Outcome.STORED:
        return done(patient_id)
    shown = refused(db, patient_id, outcome, version, adds=False)
    return _treatment_page(
        request, today, kb, patient_id, shown, values, kind, index, entry, outcome
    )


@router.post("/patients/{patient_id}/treatments/{index}/delete")
def delete_treatment(
    request: Request,
    patient_id: str,
    index: Index,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    values: Submitted,
) -> Response:
    """Without ``confirm=yes``: the confirmation page; with it, the treatment is deleted."""
    version = version_of(values)
    data, _ = opened(request, db, patient_id, user)
    treatment = _stored_treatment(data, index)
    entry = forms.Entry({}, set())
    outcome: Outcome | None = None
    if values.get("confirm") == "yes":

        def edit(data: HistoryData) -> str:
            treatments = data.get("treatments", [])
            if index >= len(treatments) or treatments[index] != treatment:
                raise _EntryGone
            treatments.pop(index)
            return ""

        outcome = store(request, db, kb, today, user, patient_id, version, entry, edit)
        if outcome is Outcome.STORED:
            return done(patient_id)
    return form_page(
        request,
        "records/treatment_delete.html",
        today,
        kb,
        patient_id=patient_id,
        version=version or 0,
        values=values,
        entry=entry,
        outcome=outcome,
        adds=False,
        index=index,
        treatment=treatment,
        kind_label=forms.TREATMENT_LABELS.get(str(treatment["type"]), str(treatment["type"])),
        title="Delete treatment",
    )


# --- measurements and screens --------------------------------------------------------------------

KINDS = {
    "measurements": ("Add a measurement", "Rating scales and the suicide-risk screener"),
    "screens": ("Add a screening questionnaire", "Screens of the pseudo-resistance workup"),
}


def instruments_of(kb: Knowledge, kind: str) -> list[Instrument]:
    """Screens are the instruments the workup checklist asks for; measurements are the rest."""
    screens = {i for item in kb.workup.checklist for i in item.instruments}
    chosen = [i for i in kb.instruments.values() if (i.id in screens) == (kind == "screens")]
    return sorted(chosen, key=lambda i: (i.id != "phq9", i.name.lower()))


def _chosen(kb: Knowledge, kind: str, value: str) -> Instrument | None:
    inst = kb.resolve_instrument(value) if value else None
    return inst if inst is not None and inst in instruments_of(kb, kind) else None


def _measurement_page(
    request: Request,
    today: date,
    kb: Knowledge,
    kind: str,
    patient_id: str,
    version: int,
    values: forms.Values,
    inst: Instrument | None,
    entry: forms.Entry | None = None,
    outcome: Outcome | None = None,
) -> Response:
    title, subtitle = KINDS[kind]
    return form_page(
        request,
        "records/measurement_form.html",
        today,
        kb,
        patient_id=patient_id,
        version=version,
        values=values,
        entry=entry,
        outcome=outcome,
        kind=kind,
        inst=inst,
        instruments=instruments_of(kb, kind),
        item_label=forms.item_label,
        answers=forms.answers,
        title=title,
        subtitle=subtitle,
        action=f"{patient_url(patient_id)}/{kind}/new",
    )


def _measurement_form(
    request: Request,
    patient_id: str,
    kind: str,
    instrument: str,
    db: Session,
    kb: Knowledge,
    today: date,
    user: CurrentUser,
) -> Response:
    default = "phq9" if kind == "measurements" else ""
    inst = _chosen(kb, kind, instrument or default)
    if wants_part(request):
        context: dict[str, Any] = {
            "inst": inst,
            "values": {},
            "errors": {},
            "item_label": forms.item_label,
            "answers": forms.answers,
            "label_of": forms.field_label,
        }
        return render(request, "records/_instrument_items.html", context, today=today)
    _, version = opened(request, db, patient_id, user)
    values = {"date": today.isoformat(), "instrument": inst.id if inst else ""}
    return _measurement_page(request, today, kb, kind, patient_id, version, values, inst)


def _add_measurement(
    request: Request,
    patient_id: str,
    kind: str,
    db: Session,
    kb: Knowledge,
    today: date,
    user: CurrentUser,
    values: dict[str, str],
) -> Response:
    version = version_of(values)
    inst = _chosen(kb, kind, values.get("instrument", ""))
    if inst is None:
        entry = forms.Entry({}, {"instrument"}, {"instrument": "choose an instrument"})
        return _measurement_page(
            request, today, kb, kind, patient_id, version or 0, values, None, entry,
            Outcome.INVALID,
        )  # fmt: skip
    entry = forms.measurement_entry(values, inst)
    edit = append("measurements", entry.data)
    outcome = store(request, db, kb, today, user, patient_id, version, entry, edit)
    if outcome is Outcome.STORED:
        return done(patient_id)
    forms.mark_unanswered(entry, inst)
    shown = refused(db, patient_id, outcome, version, adds=True)
    return _measurement_page(
        request, today, kb, kind, patient_id, shown, values, inst, entry, outcome
    )


@router.get("/patients/{patient_id}/measurements/new")
def new_measurement_form(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    instrument: Choice = "",
) -> Response:
    return _measurement_form(request, patient_id, "measurements", instrument, db, kb, today, user)


@router.post("/patients/{patient_id}/measurements/new")
def new_measurement(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    values: Submitted,
) -> Response:
    return _add_measurement(request, patient_id, "measurements", db, kb, today, user, values)


@router.get("/patients/{patient_id}/screens/new")
def new_screen_form(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    instrument: Choice = "",
) -> Response:
    return _measurement_form(request, patient_id, "screens", instrument, db, kb, today, user)


@router.post("/patients/{patient_id}/screens/new")
def new_screen(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    values: Submitted,
) -> Response:
    return _add_measurement(request, patient_id, "screens", db, kb, today, user, values)


# --- labs, pharmacogenomics, current medications -------------------------------------------------


def _lab_context(kb: Knowledge, values: forms.Values) -> dict[str, Any]:
    labs = list(kb.workup.labs.values())
    test = kb.workup.resolve_lab(values.get("test", ""))
    return {"labs": labs, "test": test, "lab_options": [(t.name, t.name) for t in labs]}


def _pgx_context(kb: Knowledge, values: forms.Values) -> dict[str, Any]:
    genes = list(kb.workup.genes.values())
    gene = kb.workup.resolve_gene(values.get("gene", ""))
    return {"genes": genes, "gene": gene, "gene_options": [(g.id, g.id) for g in genes]}


def _medication_context(kb: Knowledge, values: forms.Values) -> dict[str, Any]:
    return {"drugs": forms.drug_names(kb)}


ADDS: dict[str, tuple[str, str, Callable[[forms.Values], forms.Entry], Any]] = {
    # history key: (title, template, entry builder, context)
    "labs": ("Add a lab result", "records/lab_form.html", forms.lab_entry, _lab_context),
    "pgx": ("Add a pharmacogenomic result", "records/pgx_form.html", forms.pgx_entry, _pgx_context),
    "current_medications": (
        "Add a current medication",
        "records/medication_form.html",
        forms.current_medication_entry,
        _medication_context,
    ),
}
PARTS = {"labs": "records/_lab_units.html", "pgx": "records/_pgx_phenotypes.html"}


def _add_page(
    request: Request,
    today: date,
    kb: Knowledge,
    key: str,
    patient_id: str,
    version: int,
    values: forms.Values,
    data: HistoryData | None = None,
    entry: forms.Entry | None = None,
    outcome: Outcome | None = None,
) -> Response:
    title, template, _, context = ADDS[key]
    path = "medications" if key == "current_medications" else key
    return form_page(
        request,
        template,
        today,
        kb,
        patient_id=patient_id,
        version=version,
        values=values,
        entry=entry,
        outcome=outcome,
        title=title,
        action=f"{patient_url(patient_id)}/{path}/new",
        recorded=(data or {}).get(key, []),
        **context(kb, values),
    )


def _add_form(
    request: Request, key: str, patient_id: str, db: Session, kb: Knowledge, today: date,
    user: CurrentUser,
) -> Response:  # fmt: skip
    values = {k: v.strip() for k, v in request.query_params.items() if k in ("test", "gene")}
    if wants_part(request) and key in PARTS:
        context: dict[str, Any] = {"values": values, "errors": {}, "label_of": forms.field_label}
        context |= ADDS[key][3](kb, values)
        return render(request, PARTS[key], context, today=today)
    data, version = opened(request, db, patient_id, user)
    if key == "labs":
        values.setdefault("date", today.isoformat())
    return _add_page(request, today, kb, key, patient_id, version, values, data)


def _add(
    request: Request, key: str, patient_id: str, db: Session, kb: Knowledge, today: date,
    user: CurrentUser,
    values: dict[str, str],
) -> Response:  # fmt: skip
    version = version_of(values)
    entry = ADDS[key][2](values)
    outcome = store(
        request, db, kb, today, user, patient_id, version, entry, append(key, entry.data)
    )
    if outcome is Outcome.STORED:
        return done(patient_id)
    data, _ = opened(request, db, patient_id, user)
    shown = refused(db, patient_id, outcome, version, adds=True)
    return _add_page(request, today, kb, key, patient_id, shown, values, data, entry, outcome)


@router.get("/patients/{patient_id}/labs/new")
def new_lab_form(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
) -> Response:
    return _add_form(request, "labs", patient_id, db, kb, today, user)


@router.post("/patients/{patient_id}/labs/new")
def new_lab(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    values: Submitted,
) -> Response:
    return _add(request, "labs", patient_id, db, kb, today, user, values)


@router.get("/patients/{patient_id}/pgx/new")
def new_pgx_form(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
) -> Response:
    return _add_form(request, "pgx", patient_id, db, kb, today, user)


@router.post("/patients/{patient_id}/pgx/new")
def new_pgx(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    values: Submitted,
) -> Response:
    return _add(request, "pgx", patient_id, db, kb, today, user, values)


@router.get("/patients/{patient_id}/medications/new")
def new_current_medication_form(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
) -> Response:
    return _add_form(request, "current_medications", patient_id, db, kb, today, user)


@router.post("/patients/{patient_id}/medications/new")
def new_current_medication(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    today: TodayDep,
    user: Writer,
    values: Submitted,
) -> Response:
    return _add(request, "current_medications", patient_id, db, kb, today, user, values)
