import psycopg


def test_fresh_database_is_empty_and_writable(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("select count(*) from pg_tables where schemaname = 'public'").fetchone() == (0,)
        conn.execute("create table t (id int)")
        assert conn.execute("select current_database()").fetchone()[0].startswith("test_smoke_db_")
