from django.contrib.admin.apps import AdminConfig


class StaffAdminConfig(AdminConfig):
    default_site = "asksage_admin.admin_site.StaffAdminSite"
