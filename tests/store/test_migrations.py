"""The hand-written migrations build exactly the schema that models.py declares."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import openledger
from openledger.store import Database
from openledger.store.db import MIGRATIONS_DIR
from openledger.store.models import Base

REPO = Path(__file__).resolve().parents[2]


def test_migrated_schema_equals_models(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_constraint_and_index_names_match_models(db: Database) -> None:
    insp = inspect(db.engine)
    for table in Base.metadata.sorted_tables:
        assert insp.get_pk_constraint(table.name)["name"] in (table.primary_key.name, None)
        declared_uq = {
            c.name for c in table.constraints if c.__class__.__name__ == "UniqueConstraint"
        }
        assert {u["name"] for u in insp.get_unique_constraints(table.name)} == declared_uq
        assert {i["name"] for i in insp.get_indexes(table.name) if not i.get("unique")} == {
            i.name for i in table.indexes
        }
        declared_ck = {
            c.name for c in table.constraints if c.__class__.__name__ == "CheckConstraint"
        }
        assert {c["name"] for c in insp.get_check_constraints(table.name)} == declared_ck


def test_one_linear_history_starting_at_0001() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert revisions[-1].revision == "0001" and revisions[-1].down_revision is None
    assert Database.head_revision() == script.get_current_head()
    # the start-up check reads the same head from the scripts' headers, without Alembic
    from openledger.store.db import _script_heads

    assert _script_heads() == frozenset(script.get_heads())


def test_open_skips_alembic_at_head_and_migrates_behind_it(db: Database) -> None:
    assert db.at_head()
    db.downgrade("0008")
    assert not db.at_head() and db.current_revision() == "0008"
    reopened = Database.open(db.engine.url)
    try:
        assert reopened.at_head() and reopened.current_revision() == Database.head_revision()
    finally:
        reopened.dispose()


def test_migrations_ship_inside_the_package() -> None:
    package_dir = Path(openledger.__file__).resolve().parent
    assert MIGRATIONS_DIR.is_relative_to(package_dir)
    assert (MIGRATIONS_DIR / "env.py").is_file()
    # Every file the migrations need at run time is matched by the package-data globs.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["openledger"]
    needed = [
        p.relative_to(package_dir).as_posix()
        for p in MIGRATIONS_DIR.rglob("*.py")
        if "__pycache__" not in p.parts
    ]
    assert needed
    for rel in needed:
        assert any(fnmatch.fnmatch(rel, g) for g in globs), f"{rel} is not in package-data"
