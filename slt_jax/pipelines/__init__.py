"""Pipelines: jobs built from the core and the analyses (sweep, ablate, study, reproduce,
translate). Nothing below this layer imports from it."""
