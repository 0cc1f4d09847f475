"""The pool guard (0003_pool_guards) also counts temporary allocations still running.

tokens.pool and tokens.temporary count a temporary allocation against the inference pool
until its end (tokens.models.ACTIVE_SQL); the commit-time guard now sums the same extras
(with the clock at commit, so it never refuses what the services allowed a moment earlier),
and a new or changed temporary allocation triggers the check like an allocation does.
"""

import importlib

from django.db import migrations

from asksage_admin.core.pg import postgres_sql

_ORIGINAL = importlib.import_module("tokens.migrations.0003_pool_guards").GUARDS
_START = "CREATE OR REPLACE FUNCTION asksage_check_pool()"
_END = "-- Checks the row as it is at commit"
ORIGINAL_CHECK = _ORIGINAL[_ORIGINAL.index(_START) : _ORIGINAL.index(_END)]

_BEFORE = """    SELECT coalesce(sum(max_inference_tokens), 0), coalesce(sum(max_embedding_tokens), 0)
      INTO given_inf, given_emb FROM accounts_user WHERE enterprise_id = ent;
"""
_AFTER = (
    _BEFORE
    + """    given_inf := given_inf + (
        SELECT coalesce(sum(x.extra_inference), 0)
          FROM tokens_temporaryallocation x
          JOIN accounts_user v ON v.id = x.user_id AND v.enterprise_id = x.enterprise_id
         WHERE x.enterprise_id = ent AND x.reverted_at IS NULL
           AND x.ends_at > clock_timestamp());
"""
)
assert _BEFORE in ORIGINAL_CHECK
CHECK_WITH_EXTRAS = ORIGINAL_CHECK.replace(_BEFORE, _AFTER)

TRIGGERS = """
CREATE TRIGGER tokens_temporaryallocation_pool_changed BEFORE INSERT OR UPDATE OF
    extra_inference, ends_at, reverted_at, enterprise_id ON tokens_temporaryallocation
    FOR EACH ROW EXECUTE FUNCTION asksage_pool_changed();
-- Ending one (reverted_at set) only ever frees tokens: no check, so expire_allocations
-- never fails on an enterprise that is over its pool for another reason.
CREATE CONSTRAINT TRIGGER tokens_temporaryallocation_pool AFTER INSERT OR UPDATE OF
    extra_inference, ends_at, enterprise_id ON tokens_temporaryallocation
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.reverted_at IS NULL)
    EXECUTE FUNCTION asksage_check_pool();
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS tokens_temporaryallocation_pool_changed ON tokens_temporaryallocation;
DROP TRIGGER IF EXISTS tokens_temporaryallocation_pool ON tokens_temporaryallocation;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tokens", "0005_usage_requests_temporary_allocations"),
    ]

    operations = [
        postgres_sql(CHECK_WITH_EXTRAS, ORIGINAL_CHECK),
        postgres_sql(TRIGGERS, DROP_TRIGGERS),
    ]
