"""The PostgreSQL schema, as numbered migrations. Never edit one that has shipped.

Every statement names its tables through ``{s}``, the store's schema (quoted),
so several stores live in one database without colliding. Keys are ``text``
with the ``"C"`` collation: byte order of UTF-8, which is code point order, as
the table port requires on every engine. Attributes are kept as the canonical
JSON text the port produced (``attrs::jsonb`` makes them queryable).
"""

from __future__ import annotations

from typing import Final

from ...migrations import Migration

LEDGER_DDL: Final = """
CREATE TABLE IF NOT EXISTS {s}.sp_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at text NOT NULL
)
"""

MIGRATIONS: Final[tuple[Migration[tuple[str, ...]], ...]] = (
    Migration(
        1,
        "items",
        (
            """
            CREATE TABLE {s}.sp_items (
                pk      text COLLATE "C" NOT NULL,
                sk      text COLLATE "C" NOT NULL,
                version bigint NOT NULL,
                attrs   text NOT NULL,
                gsi1pk  text COLLATE "C", gsi1sk text COLLATE "C",
                gsi2pk  text COLLATE "C", gsi2sk text COLLATE "C",
                gsi3pk  text COLLATE "C", gsi3sk text COLLATE "C",
                PRIMARY KEY (pk, sk)
            )
            """,
            "CREATE INDEX sp_items_gsi1 ON {s}.sp_items (gsi1pk, gsi1sk, pk, sk)"
            " WHERE gsi1pk IS NOT NULL",
            "CREATE INDEX sp_items_gsi2 ON {s}.sp_items (gsi2pk, gsi2sk, pk, sk)"
            " WHERE gsi2pk IS NOT NULL",
            "CREATE INDEX sp_items_gsi3 ON {s}.sp_items (gsi3pk, gsi3sk, pk, sk)"
            " WHERE gsi3pk IS NOT NULL",
            # The partitions someone LISTENs to, and on which channel: writes
            # NOTIFY only partitions found here, so unwatched writes skip
            # NOTIFY's commit-time lock. `listener` is the backend pid of the
            # listening connection (rows of dead listeners are swept).
            """
            CREATE TABLE {s}.sp_watches (
                pk       text COLLATE "C" NOT NULL,
                listener integer NOT NULL,
                channel  text NOT NULL,
                PRIMARY KEY (pk, listener)
            )
            """,
        ),
    ),
    Migration(
        2,
        "blobs",
        (
            # A blob is a row here plus its content in chunks. A row whose digest
            # is NULL is an upload in progress (or abandoned by a crash).
            """
            CREATE TABLE {s}.sp_blobs (
                blob_id    bigserial PRIMARY KEY,
                digest     text COLLATE "C" UNIQUE,
                size       bigint NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE {s}.sp_blob_chunks (
                blob_id bigint NOT NULL REFERENCES {s}.sp_blobs (blob_id) ON DELETE CASCADE,
                seq     integer NOT NULL,
                data    bytea NOT NULL,
                PRIMARY KEY (blob_id, seq)
            )
            """,
            "ALTER TABLE {s}.sp_blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL",
        ),
    ),
)
