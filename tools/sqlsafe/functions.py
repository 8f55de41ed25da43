"""The functions an agent's query may call: an allowlist, never a denylist.

A name is allowed only if it is listed here; it is then always called as ``pg_catalog.<name>``
(the rewriter qualifies it), so a same-named function in ``public`` cannot shadow a built-in.
Everything listed is side-effect free and reads no data beyond its arguments.

Deliberately absent (and why), so nobody "helpfully" adds them:

* ``set_config``, ``current_setting`` with an arbitrary name: they change or read the session's
  settings, including the caller id that row-level security is keyed on, and secrets kept in
  custom settings (Supabase's ``app.settings.*``). ``current_setting`` is handled specially below.
* ``query_to_xml``, ``table_to_xml``, ``database_to_xml`` and friends: they run SQL held in a string,
  which no parser can check.
* ``dblink*``: opens another session that escapes the read-only transaction.
* ``lo_*``, ``pg_read_file``, ``pg_read_binary_file``, ``pg_ls_dir``, ``pg_stat_file``: server files
  and large objects.
* ``pg_sleep*``, advisory locks, ``nextval``/``setval``, ``txid_current``, ``pg_export_snapshot``,
  ``pg_logical_emit_message``, ``pg_notify``, ``pg_cancel_backend``, ``pg_terminate_backend``,
  ``pg_reload_conf``, ``pg_stat_reset*``, ``pg_import_system_collations``, ``gin_clean_pending_list``:
  they wait, lock, write WAL or state that outlives ROLLBACK, or act on other sessions.
* ``setseed``: changes session state.
* catalog helpers (``pg_get_viewdef``, ``has_table_privilege``, ``to_regclass``, ``pg_relation_size``,
  ``pg_typeof`` is fine but ``obj_description`` is not): schema discovery belongs to another tool.
"""

from __future__ import annotations

# Text
_TEXT = {
    "ascii", "bit_length", "btrim", "char_length", "character_length", "chr", "concat", "concat_ws",
    "convert_from", "convert_to", "decode", "encode", "format", "initcap", "left", "length", "lower",
    "lpad", "ltrim", "md5", "normalize", "octet_length", "overlay", "position", "quote_ident",
    "quote_literal", "quote_nullable", "regexp_count", "regexp_instr", "regexp_like", "regexp_match",
    "regexp_matches", "regexp_replace", "regexp_split_to_array", "regexp_split_to_table",
    "regexp_substr", "repeat", "replace", "reverse", "right", "rpad", "rtrim", "sha224", "sha256",
    "sha384", "sha512", "split_part", "starts_with", "string_to_array", "string_to_table", "strpos",
    "substr", "substring", "to_ascii", "to_hex", "translate", "trim", "unistr", "upper", "casefold",
    "is_normalized", "similar_to_escape", "like_escape",
}
# Numbers
_MATH = {
    "abs", "cbrt", "ceil", "ceiling", "degrees", "div", "exp", "factorial", "floor", "gcd", "lcm", "ln",
    "log", "log10", "min_scale", "mod", "pi", "power", "radians", "round", "scale", "sign", "sqrt",
    "trim_scale", "trunc", "width_bucket", "acos", "asin", "atan", "atan2", "cos", "cot", "sin", "tan",
    "random", "random_normal",  # volatile but harmless: no state beyond the PRNG (setseed is not here)
}
# Dates and times. now() and friends read the clock, nothing else.
_TIME = {
    "age", "clock_timestamp", "current_date", "date_add", "date_bin", "date_part", "date_subtract",
    "date_trunc", "extract", "isfinite", "justify_days", "justify_hours", "justify_interval",
    "make_date", "make_interval", "make_time", "make_timestamp", "make_timestamptz", "now",
    "statement_timestamp", "timeofday", "timezone", "to_char", "to_date", "to_number",
    "to_timestamp", "transaction_timestamp",
}
# Aggregates and window functions
_AGG = {
    "any_value", "array_agg", "avg", "bit_and", "bit_or", "bool_and", "bool_or", "count", "corr",
    "covar_pop", "covar_samp", "every", "json_agg", "json_object_agg", "jsonb_agg",
    "jsonb_object_agg", "max", "min", "mode", "percentile_cont", "percentile_disc", "regr_slope",
    "regr_intercept", "regr_count", "regr_r2", "stddev", "stddev_pop", "stddev_samp", "string_agg",
    "sum", "var_pop", "var_samp", "variance", "cume_dist", "dense_rank", "first_value", "lag",
    "last_value", "lead", "nth_value", "ntile", "percent_rank", "rank", "row_number",
}
# Arrays, JSON, ranges
_STRUCT = {
    "array_append", "array_cat", "array_dims", "array_fill", "array_length", "array_lower",
    "array_ndims", "array_position", "array_positions", "array_prepend", "array_remove",
    "array_replace", "array_reverse", "array_sample", "array_shuffle", "array_sort", "array_to_string",
    "array_upper", "cardinality", "trim_array", "unnest", "generate_series", "generate_subscripts",
    "json_array_elements", "json_array_elements_text", "json_array_length", "json_build_array",
    "json_build_object", "json_each", "json_each_text", "json_extract_path", "json_extract_path_text",
    "json_object", "json_object_keys", "json_strip_nulls", "json_typeof", "jsonb_array_elements",
    "jsonb_array_elements_text", "jsonb_array_length", "jsonb_build_array", "jsonb_build_object",
    "jsonb_each", "jsonb_each_text", "jsonb_extract_path", "jsonb_extract_path_text", "jsonb_insert",
    "jsonb_object", "jsonb_object_keys", "jsonb_path_exists", "jsonb_path_match",
    "jsonb_path_query", "jsonb_path_query_array", "jsonb_path_query_first", "jsonb_pretty",
    "jsonb_set", "jsonb_set_lax", "jsonb_strip_nulls", "jsonb_typeof", "row_to_json", "to_json",
    "to_jsonb", "array_to_json", "json_populate_record", "jsonb_populate_record",
    "json_to_record", "jsonb_to_record", "json_to_recordset", "jsonb_to_recordset",
    "lower_inc", "upper_inc", "lower_inf", "upper_inf", "isempty", "range_merge",
    "int4range", "int8range", "numrange", "daterange", "tsrange", "tstzrange",
}
# Full-text search
_FTS = {
    "to_tsvector", "to_tsquery", "plainto_tsquery", "phraseto_tsquery", "websearch_to_tsquery",
    "ts_rank", "ts_rank_cd", "ts_headline", "setweight", "strip", "numnode", "querytree",
    "array_to_tsvector", "tsvector_to_array",
}
# Misc pure helpers
_MISC = {
    "num_nonnulls", "num_nulls", "pg_typeof", "gen_random_uuid", "uuidv4", "uuidv7",
    "uuid_extract_timestamp", "uuid_extract_version", "host", "masklen", "network", "family",
    "bool", "int4", "int8", "numeric", "text", "float8", "date", "bpchar", "varchar",
}

ALLOWED_FUNCTIONS: frozenset[str] = frozenset(_TEXT | _MATH | _TIME | _AGG | _STRUCT | _FTS | _MISC)

# current_setting() is allowed only for these names, spelled as a string literal: the caller's own
# id (the rewriter set it) and harmless formatting settings. Never a custom setting in general:
# secrets live there.
READABLE_SETTINGS: frozenset[str] = frozenset(
    {"timezone", "datestyle", "intervalstyle", "server_version", "server_version_num"}
)


def is_allowed(name: str) -> bool:
    """Exact, case-sensitive match: a quoted ``"LOWER"`` is not ``lower``."""
    return name in ALLOWED_FUNCTIONS
