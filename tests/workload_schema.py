"""The todo schema explain_indexes' workload advice is tested and benched on (tests/test_index_workload.py,
bench/bench_index_advice.py): users, tasks, tags, task_tags with only the primary keys and the owner and
foreign-key indexes the house rules require, so every other index is the advice's to find."""

WORKLOAD_SCHEMA = """
CREATE TABLE users (id text PRIMARY KEY, email text NOT NULL);
CREATE TABLE tasks (id bigserial PRIMARY KEY, user_id text NOT NULL REFERENCES users ON DELETE CASCADE,
                    title text NOT NULL, completed boolean NOT NULL DEFAULT false, priority text NOT NULL,
                    due_at timestamptz, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ix_tasks_user_id ON tasks (user_id);
CREATE TABLE tags (id bigserial PRIMARY KEY, user_id text NOT NULL REFERENCES users ON DELETE CASCADE,
                   name text NOT NULL);
CREATE INDEX ix_tags_user_id ON tags (user_id);
CREATE TABLE task_tags (task_id bigint NOT NULL REFERENCES tasks ON DELETE CASCADE,
                        tag_id bigint NOT NULL REFERENCES tags ON DELETE CASCADE, PRIMARY KEY (task_id, tag_id));
CREATE INDEX ix_task_tags_tag_id ON task_tags (tag_id);
"""
