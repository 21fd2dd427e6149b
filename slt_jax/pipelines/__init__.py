"""Pipelines: jobs built from the core and the analyses (sweep, ablate, study, reproduce,
translation), with what they share (designs, claims, tables, page). Nothing below this layer
imports from it; its sub-commands are in `commands`."""
