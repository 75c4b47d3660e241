"""Support for ablate's own tests: named fault points (:mod:`~ablate.testing.faults`, reached
by production code and inert unless ``ABLATE_FAULT`` is set) and stores of runs written
through the real writer (:mod:`~ablate.testing.fixtures`)."""
