"""Pair files in and out: TSV, CSV, JSONL and Parquet readers and writers."""
