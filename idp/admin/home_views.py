"""The admin home page, ``/admin``: is it working? (idp.admin.dashboard has the figures)."""

from __future__ import annotations

from idp.accounts.roles import Actor
from idp.admin import dashboard
from idp.admin.forms import ActionForm
from idp.admin.views import bp, render
from idp.admin.web_auth import admin_required
from idp.services import services
from idp.store.models import Account


@bp.get("/")
@admin_required
def home(actor: Actor):
    svc = services()
    svc.events.flush()  # the sign-ins of a moment ago (card sign-ins go through the log)
    with svc.db.session() as db:
        me = db.get(Account, actor.account_id)
        school = me.school.name
        board = dashboard.dashboard(db, actor)
    revocation = dashboard.revocation(svc.card, svc.settings.jpki_ocsp_url)
    return render("admin/home.html", actor, school=school, form=ActionForm(), board=board,
                  chart=dashboard.chart_bars(board.by_hour), revocation=revocation,
                  methods=dashboard.METHODS)
