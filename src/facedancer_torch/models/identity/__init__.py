"""Identity encoders: one interface, one file per encoder, each with its input contract."""
