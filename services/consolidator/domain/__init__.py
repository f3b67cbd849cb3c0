"""The consolidator's rules: pure functions and dataclasses, no I/O."""
