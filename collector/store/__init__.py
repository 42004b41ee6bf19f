"""ClickHouse storage: engine adapters, schema migrations, writers and readers."""
