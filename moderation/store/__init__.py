"""Everything kept in the database, through SQLAlchemy: the tables (`schema`) and their migrations, the
engine and SQLite write lock (`db`), the check's precompiled statements (`precompiled`), the history
rules' counts (`history`), labels, sites, users, the model registry, and privacy (purge, export). It may
import `core`, `policy`, `moderation.comment`, `moderation.errors` and `moderation.settings`; never
`checking`, `learning`, `web` or `cli`.
"""
