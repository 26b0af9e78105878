"""The `atlas_r2` tensorflow-datasets builder (see atlas_r2_dataset_builder)."""
