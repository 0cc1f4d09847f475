"""English date formats of the whole site, the staff admin included: "1 Dec 2026, 14:05 UTC".

Django's own "Dec. 1, 2026, 2:05 p.m." differed from the console's pages; these match
asksage_admin.core.formats.
"""

DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i T"
TIME_FORMAT = "H:i"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i T"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
