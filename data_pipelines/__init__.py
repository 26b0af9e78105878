"""NIfTI/BIDS discovery, loading, preprocessing and TFRecord writing for tff_stroke."""
