"""metrics_py_json(jsonb): JSON text as Python's json.dumps(value, sort_keys=True) writes it.

The COPY exports (metrics/copy_export.py) write the activity log's old/new values with it so
their bytes match the Python writer: ", " and ": " separators, keys in code-point order, and
every character outside printable ASCII as \\uXXXX (surrogate pairs above U+FFFF). jsonb::text
orders keys by length and keeps non-ASCII as is, hence a function. PostgreSQL only.
"""

from django.db import migrations

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION metrics_py_json_str(s text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN s !~ '[^\x01-\x7e]' THEN to_json(s)::text ELSE
    '"' || (
      SELECT string_agg(
        CASE
          WHEN ascii(c) < 127 THEN substr(to_json(c)::text, 2, length(to_json(c)::text) - 2)
          WHEN ascii(c) < 65536 THEN '\u' || lpad(to_hex(ascii(c)), 4, '0')
          ELSE '\u' || to_hex(55296 + ((ascii(c) - 65536) >> 10))
            || '\u' || to_hex(56320 + ((ascii(c) - 65536) & 1023))
        END, '' ORDER BY n)
      FROM regexp_split_to_table(s, '') WITH ORDINALITY AS t(c, n)
    ) || '"' END
$$;

CREATE OR REPLACE FUNCTION metrics_py_json(j jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  CASE jsonb_typeof(j)
    WHEN 'object' THEN
      RETURN '{' || coalesce((
        SELECT string_agg(metrics_py_json_str(key) || ': ' || metrics_py_json(value), ', '
                          ORDER BY key COLLATE "C")
        FROM jsonb_each(j)), '') || '}';
    WHEN 'array' THEN
      RETURN '[' || coalesce((
        SELECT string_agg(metrics_py_json(value), ', ' ORDER BY n)
        FROM jsonb_array_elements(j) WITH ORDINALITY AS e(value, n)), '') || ']';
    WHEN 'string' THEN
      RETURN metrics_py_json_str(j #>> '{}');
    ELSE
      RETURN j::text;  -- numbers, true, false, null
  END CASE;
END
$$;
"""

DROP = "DROP FUNCTION IF EXISTS metrics_py_json(jsonb); DROP FUNCTION IF EXISTS metrics_py_json_str(text);"


def create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS)


def drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("metrics", "0003_usage_ledger_append_only")]

    operations = [migrations.RunPython(create, drop)]
