"""Tables (CSV, Parquet, JSON, ORC, catalog tables) → dataset folders with column statistics."""
