"""The schools page, ``/admin/schools``: list the schools the actor may see, create one."""

from __future__ import annotations

from flask import redirect, request, url_for

from idp.accounts.roles import Actor
from idp.admin import accounts
from idp.admin.forms import SchoolForm
from idp.admin.messages import describe
from idp.admin.views import bp, render
from idp.admin.web_auth import admin_required
from idp.services import services


@bp.route("/schools", methods=["GET", "POST"])
@admin_required
def schools(actor: Actor):
    form = SchoolForm()
    error = None
    with services().db.session() as db:
        if request.method == "POST" and form.validate_on_submit():
            try:
                row = accounts.create_school(db, actor, form.code.data, form.name.data)
            except accounts.AdminInputError as exc:
                db.rollback()
                error = describe(exc.code)
            else:
                db.commit()
                # Said on the next page: a form that only empties itself looks like nothing
                # happened.
                return redirect(url_for("admin.schools", created=row.code), 303)
        rows = accounts.list_schools(db, actor)
    status = 400 if request.method == "POST" else 200
    created = next((s for s in rows if s.code == request.args.get("created")), None)
    return render("admin/schools.html", actor, status, form=form, rows=rows, error=error,
                  created=created)
