"""The staff landing page: the figures a hosting business checks every morning."""
from datetime import date

from flask import redirect, url_for
from flask_appbuilder import IndexView, expose
from flask_login import current_user
from sqlalchemy import select

from app.auth.roles import STAFF_ROLES
from app.billing import stats
from app.extensions import db
from app.models.system import ActivityLog


class DashboardIndexView(IndexView):
    index_template = "admin/dashboard.html"

    @expose("/")
    def index(self):
        if not current_user.is_authenticated:
            return redirect(url_for(f"{self.appbuilder.sm.auth_view.__class__.__name__}.login"))
        if not {role.name for role in current_user.roles} & set(STAFF_ROLES):
            # Client users have no admin screens: their home is the portal.
            return redirect("/portal/")
        today = date.today()
        recent = db.session.scalars(
            select(ActivityLog).order_by(ActivityLog.id.desc()).limit(10)
        )
        return self.render_template(
            self.index_template,
            today=today,
            kpi=stats.dashboard_stats(today),
            overdue=stats.overdue_invoices(today),
            waiting_tickets=stats.tickets_awaiting_reply(),
            recent=list(recent),
        )
