"""Pure domain code: job types, the state machine, validation and MRS rendering."""
