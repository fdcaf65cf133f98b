"""Services every entry point uses; they flush but never commit (callers own transactions)."""
