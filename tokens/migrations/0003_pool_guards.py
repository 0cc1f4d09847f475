"""The pool's invariants as PostgreSQL constraint triggers, and an append-only purchase ledger.

tokens.pool, tokens.membership and tokens.provisioning check these rules first and name the
rows at fault; the triggers are the last word for anything that gets past them (a race, a
raw UPDATE, a future code path):

- an enterprise never has more inference (embedding) tokens assigned to its users than it
  purchased (inference / training pools), after any transaction;
- in an ACTIVE enterprise every Paid user holds at least 200,000 Max Inference Tokens
  (pending and suspended enterprises may hold users at 0 until activation grants the
  minimum; Banned users may be at 0 anywhere).

The triggers are DEFERRABLE INITIALLY DEFERRED: a multi-row Save Changes is checked once,
at commit, on its final state. The pool is summed once per enterprise per transaction (the
`asksage.pool_checked` transaction-local setting remembers which were checked; any later
change to allocations or purchases clears it, so SET CONSTRAINTS ... IMMEDIATE mid-way
cannot let a later change through unchecked). The same
messages as the services' reach the user (asksage_admin.core.errors.guard_refusal).
On SQLite nothing is installed; the service rules still hold there.
"""

from django.db import migrations

from asksage_admin.core.pg import (
    PAID_USER_MINIMUM,
    POOL_WITHIN_PURCHASE,
    append_only_sql,
    postgres_sql,
)

PURCHASE_CREATE, PURCHASE_DROP = append_only_sql("tokens_tokenpurchase", truncate=False)

GUARDS = f"""
CREATE OR REPLACE FUNCTION asksage_fmt(n numeric) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT trim(to_char(n, 'FM999,999,999,999,999,999,990')) $$;

CREATE OR REPLACE FUNCTION asksage_check_pool() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ent bigint := NEW.enterprise_id;
    checked text := coalesce(current_setting('asksage.pool_checked', true), '');
    bought_inf numeric; bought_tr numeric; given_inf numeric; given_emb numeric;
BEGIN
    IF ent IS NULL OR position(',' || ent || ',' IN checked) > 0 THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('asksage.pool_checked', checked || ',' || ent || ',', true);
    SELECT coalesce(sum(inference_tokens), 0), coalesce(sum(training_tokens), 0)
      INTO bought_inf, bought_tr FROM tokens_tokenpurchase WHERE enterprise_id = ent;
    SELECT coalesce(sum(max_inference_tokens), 0), coalesce(sum(max_embedding_tokens), 0)
      INTO given_inf, given_emb FROM accounts_user WHERE enterprise_id = ent;
    IF given_inf > bought_inf THEN
        IF TG_TABLE_NAME = 'tokens_tokenpurchase' THEN
            RAISE EXCEPTION 'This correction would leave % purchased inference tokens, below the % already assigned. Lower allocations first.',
                asksage_fmt(bought_inf), asksage_fmt(given_inf)
                USING ERRCODE = 'check_violation', CONSTRAINT = '{POOL_WITHIN_PURCHASE}',
                      DETAIL = 'inference_tokens';
        END IF;
        RAISE EXCEPTION 'Max Inference Tokens: these changes would assign % tokens, % more than the % purchased. Nothing was saved.',
            asksage_fmt(given_inf), asksage_fmt(given_inf - bought_inf), asksage_fmt(bought_inf)
            USING ERRCODE = 'check_violation', CONSTRAINT = '{POOL_WITHIN_PURCHASE}',
                  DETAIL = 'inference';
    END IF;
    IF given_emb > bought_tr THEN
        IF TG_TABLE_NAME = 'tokens_tokenpurchase' THEN
            RAISE EXCEPTION 'This correction would leave % purchased training tokens, below the % already assigned. Lower allocations first.',
                asksage_fmt(bought_tr), asksage_fmt(given_emb)
                USING ERRCODE = 'check_violation', CONSTRAINT = '{POOL_WITHIN_PURCHASE}',
                      DETAIL = 'training_tokens';
        END IF;
        RAISE EXCEPTION 'Max Embedding Tokens: these changes would assign % tokens, % more than the % purchased. Nothing was saved.',
            asksage_fmt(given_emb), asksage_fmt(given_emb - bought_tr), asksage_fmt(bought_tr)
            USING ERRCODE = 'check_violation', CONSTRAINT = '{POOL_WITHIN_PURCHASE}',
                  DETAIL = 'embedding';
    END IF;
    RETURN NULL;
END;
$$;

-- Checks the row as it is at commit, not as the queued statement left it.
CREATE OR REPLACE FUNCTION asksage_check_user_minimum() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who text;
BEGIN
    SELECT u.email INTO who
      FROM accounts_user u JOIN accounts_enterprise e ON e.id = u.enterprise_id
     WHERE u.id = NEW.id AND u.status = 'paid' AND e.status = 'active'
       AND u.max_inference_tokens < 200000;
    IF FOUND THEN
        RAISE EXCEPTION 'Nothing was saved: % is a Paid user and needs at least 200,000 Max Inference Tokens; disable the user first to go lower.', who
            USING ERRCODE = 'check_violation', CONSTRAINT = '{PAID_USER_MINIMUM}',
                  DETAIL = 'user:' || NEW.id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION asksage_check_activation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who text; short integer;
BEGIN
    SELECT min(u.email), count(*) INTO who, short
      FROM accounts_user u JOIN accounts_enterprise e ON e.id = u.enterprise_id
     WHERE e.id = NEW.id AND e.status = 'active' AND u.status = 'paid'
       AND u.max_inference_tokens < 200000;
    IF short > 0 THEN
        RAISE EXCEPTION 'Nothing was saved: % Paid user(s) of this active enterprise (first: %) hold fewer than 200,000 Max Inference Tokens.', short, who
            USING ERRCODE = 'check_violation', CONSTRAINT = '{PAID_USER_MINIMUM}',
                  DETAIL = 'enterprise:' || NEW.id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION asksage_pool_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('asksage.pool_checked', true), '') <> '' THEN
        PERFORM set_config('asksage.pool_checked', '', true);
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER accounts_user_pool_changed BEFORE INSERT OR UPDATE OF
    max_inference_tokens, max_embedding_tokens, enterprise_id ON accounts_user
    FOR EACH ROW EXECUTE FUNCTION asksage_pool_changed();
CREATE TRIGGER tokens_tokenpurchase_pool_changed BEFORE INSERT ON tokens_tokenpurchase
    FOR EACH ROW EXECUTE FUNCTION asksage_pool_changed();

CREATE CONSTRAINT TRIGGER accounts_user_pool_insert AFTER INSERT ON accounts_user
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.enterprise_id IS NOT NULL)
    EXECUTE FUNCTION asksage_check_pool();
CREATE CONSTRAINT TRIGGER accounts_user_pool_update AFTER UPDATE ON accounts_user
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.enterprise_id IS NOT NULL AND (
          OLD.max_inference_tokens IS DISTINCT FROM NEW.max_inference_tokens
       OR OLD.max_embedding_tokens IS DISTINCT FROM NEW.max_embedding_tokens
       OR OLD.enterprise_id IS DISTINCT FROM NEW.enterprise_id))
    EXECUTE FUNCTION asksage_check_pool();
CREATE CONSTRAINT TRIGGER tokens_tokenpurchase_pool AFTER INSERT ON tokens_tokenpurchase
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    EXECUTE FUNCTION asksage_check_pool();

CREATE CONSTRAINT TRIGGER accounts_user_minimum_insert AFTER INSERT ON accounts_user
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.enterprise_id IS NOT NULL AND NEW.status = 'paid'
          AND NEW.max_inference_tokens < 200000)
    EXECUTE FUNCTION asksage_check_user_minimum();
CREATE CONSTRAINT TRIGGER accounts_user_minimum_update AFTER UPDATE ON accounts_user
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.enterprise_id IS NOT NULL AND NEW.status = 'paid'
          AND NEW.max_inference_tokens < 200000 AND (
          OLD.max_inference_tokens IS DISTINCT FROM NEW.max_inference_tokens
       OR OLD.status IS DISTINCT FROM NEW.status
       OR OLD.enterprise_id IS DISTINCT FROM NEW.enterprise_id))
    EXECUTE FUNCTION asksage_check_user_minimum();
CREATE CONSTRAINT TRIGGER accounts_enterprise_activation AFTER UPDATE ON accounts_enterprise
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.status = 'active' AND OLD.status IS DISTINCT FROM 'active')
    EXECUTE FUNCTION asksage_check_activation();
"""

DROP_GUARDS = """
DROP TRIGGER IF EXISTS accounts_user_pool_changed ON accounts_user;
DROP TRIGGER IF EXISTS tokens_tokenpurchase_pool_changed ON tokens_tokenpurchase;
DROP TRIGGER IF EXISTS accounts_user_pool_insert ON accounts_user;
DROP TRIGGER IF EXISTS accounts_user_pool_update ON accounts_user;
DROP TRIGGER IF EXISTS tokens_tokenpurchase_pool ON tokens_tokenpurchase;
DROP TRIGGER IF EXISTS accounts_user_minimum_insert ON accounts_user;
DROP TRIGGER IF EXISTS accounts_user_minimum_update ON accounts_user;
DROP TRIGGER IF EXISTS accounts_enterprise_activation ON accounts_enterprise;
DROP FUNCTION IF EXISTS asksage_check_pool();
DROP FUNCTION IF EXISTS asksage_pool_changed();
DROP FUNCTION IF EXISTS asksage_check_user_minimum();
DROP FUNCTION IF EXISTS asksage_check_activation();
DROP FUNCTION IF EXISTS asksage_fmt(numeric);
"""


class Migration(migrations.Migration):

    dependencies = [
        ("tokens", "0002_sales_group"),
        ("accounts", "0004_single_line_names"),
        ("core", "0003_activity_chain"),
    ]

    operations = [
        postgres_sql(PURCHASE_CREATE, PURCHASE_DROP),
        postgres_sql(GUARDS, DROP_GUARDS),
    ]
