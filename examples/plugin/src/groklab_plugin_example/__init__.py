"""An example groklab plugin: an update rule, an intervention, a task and an analysis, one file each."""
