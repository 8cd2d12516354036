"""The committed migrations create exactly the schema the models describe."""

from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector

from bot.db import tortoise_config


async def test_models_have_no_changes_missing_a_migration(tmp_path):
    config = tortoise_config(f"sqlite://{tmp_path}/x.db")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
    assert writers == [], "run `.venv/bin/tortoise makemigrations` and commit the new migration"


async def test_migrations_apply_to_the_test_database_and_are_idempotent(db_url):
    from bot.db import database, migrate
    from models import Tenant

    await migrate(db_url.url)  # already migrated template: nothing to do, no error
    async with database(db_url.url):
        assert await Tenant.all().count() == 0
