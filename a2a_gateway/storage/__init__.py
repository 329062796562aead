"""SQLAlchemy 2 async adapter: tables, repositories, migrations."""
