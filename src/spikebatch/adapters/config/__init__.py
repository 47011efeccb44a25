"""Configuration users write or keep on disk: YAML reading with one-line errors,
cluster profiles, job config files and credential resolution."""
