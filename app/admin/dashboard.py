from flask_appbuilder import IndexView


class DashboardIndexView(IndexView):
    index_template = "admin/dashboard.html"
