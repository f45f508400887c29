"""The SQLite schema, as numbered migrations. Never edit one that has shipped."""

from __future__ import annotations

from typing import Final

from ...migrations import Migration

LEDGER_DDL: Final = """
CREATE TABLE IF NOT EXISTS sp_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""

MIGRATIONS: Final[tuple[Migration[tuple[str, ...]], ...]] = (
    Migration(
        1,
        "items",
        (
            # The table port: one row per item. Index key attributes are copied
            # into real columns so the declared secondary indexes are real indexes.
            """
            CREATE TABLE sp_items (
                pk      TEXT NOT NULL,
                sk      TEXT NOT NULL,
                version INTEGER NOT NULL,
                attrs   TEXT NOT NULL,
                gsi1pk  TEXT, gsi1sk TEXT,
                gsi2pk  TEXT, gsi2sk TEXT,
                gsi3pk  TEXT, gsi3sk TEXT,
                PRIMARY KEY (pk, sk)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX sp_items_gsi1 ON sp_items (gsi1pk, gsi1sk, pk, sk)"
            " WHERE gsi1pk IS NOT NULL",
            "CREATE INDEX sp_items_gsi2 ON sp_items (gsi2pk, gsi2sk, pk, sk)"
            " WHERE gsi2pk IS NOT NULL",
            "CREATE INDEX sp_items_gsi3 ON sp_items (gsi3pk, gsi3sk, pk, sk)"
            " WHERE gsi3pk IS NOT NULL",
        ),
    ),
    Migration(
        2,
        "blobs",
        (
            # A blob is a row here plus its content in chunks. A row whose digest
            # is NULL is an upload in progress (or abandoned by a crash).
            """
            CREATE TABLE sp_blobs (
                blob_id    INTEGER PRIMARY KEY AUTOINCREMENT,
                digest     TEXT UNIQUE,
                size       INTEGER NOT NULL,
                created_at TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE sp_blob_chunks (
                blob_id INTEGER NOT NULL REFERENCES sp_blobs (blob_id) ON DELETE CASCADE,
                seq     INTEGER NOT NULL,
                data    BLOB NOT NULL,
                PRIMARY KEY (blob_id, seq)
            )
            """,
        ),
    ),
)
